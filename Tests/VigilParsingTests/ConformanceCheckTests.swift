import Foundation
import Testing
import VigilCore
import VigilParsing

/// Runs Elastic's integration pipeline fixtures (../shared/testdata) through `Normalizer`.
struct ConformanceCheckTests {
    static let receivedAt: EpochMillis = Timestamp.parseRFC3339("2026-09-01T00:00:00Z") ?? 0

    @Test func elasticIntegrationFixturesAgreeWithSharedTestdata() throws {
        guard let root = TestData.root else {
            print("SKIP elasticIntegrationFixturesAgreeWithSharedTestdata: ../shared/testdata not found (set VIGIL_TESTDATA)")
            return
        }
        let vendorsDir = root.appendingPathComponent("vendors")
        let vendors = (try? FileManager.default.contentsOfDirectory(atPath: vendorsDir.path).sorted()) ?? []
        let normalizer = Normalizer()
        var table: [(String, Int, Int)] = []
        for vendor in vendors {
            let dir = vendorsDir.appendingPathComponent("\(vendor)/elastic-integrations")
            let files = (try? FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()) ?? []
            var compared = 0, agreeing = 0
            for file in files where file.hasSuffix("-expected.json") {
                let inputURL = dir.appendingPathComponent(String(file.dropLast("-expected.json".count)))
                let expectedData = try Data(contentsOf: dir.appendingPathComponent(file))
                guard case .object(let expectedRoot) = try JSONParser.parse(Array(expectedData)),
                      case .array(let expected)? = expectedRoot["expected"] else { continue }
                var events: [NormalizedEvent?] = []
                if inputURL.pathExtension == "json" {
                    let data = try Data(contentsOf: inputURL)
                    if case .object(let o) = try JSONParser.parse(Array(data)), case .array(let docs)? = o["events"] {
                        events = docs.map { d in d.objectValue.flatMap { normalizer.normalize(document: $0, receivedAt: Self.receivedAt) } }
                    }
                } else {
                    events = TestData.lines(inputURL).map { normalizer.normalize(line: $0, receivedAt: Self.receivedAt) }
                }
                for (i, want) in expected.enumerated() {
                    guard case .object(let wantDoc) = want else { continue }
                    var event = i < events.count ? events[i] : nil
                    // README: zeek test-dns line 6 and expected[5] come from different versions.
                    if vendor == "zeek", file.hasPrefix("test-dns"), i == 5,
                       let original = JSONValue.object(wantDoc).value(atPath: "event.original")?.stringValue {
                        event = normalizer.normalize(line: original, receivedAt: Self.receivedAt)
                    }
                    guard let event else {
                        print("  \(vendor) \(file)#\(i): no event")
                        compared += 1
                        continue
                    }
                    let outcome = ConformanceCheck.compare(expected: wantDoc, actual: event)
                    compared += outcome.compared
                    agreeing += outcome.agreeing
                    for d in outcome.differences { print("  \(vendor) \(file)#\(i) [\(event.dataset)] \(d)") }
                }
            }
            if compared > 0 { table.append((vendor, compared, agreeing)) }
        }
        print("vendor          compared  agreeing      %")
        for (vendor, compared, agreeing) in table {
            let pct = Double(agreeing) * 100 / Double(compared)
            print("\(vendor.padding(toLength: 14, withPad: " ", startingAt: 0))  \(String(compared).leftPad(8))  \(String(agreeing).leftPad(8))  \(String(format: "%5.1f", pct))")
        }
        for (vendor, compared, agreeing) in table {
            #expect(Double(agreeing) / Double(compared) >= 0.95, "\(vendor): \(agreeing)/\(compared)")
        }
    }
}

extension String {
    func leftPad(_ n: Int) -> String { String(repeating: " ", count: max(0, n - count)) + self }
}
