import ArgumentParser
import Foundation
import Logging
import VigilAlerts
import VigilCore
import VigilQuery
import VigilStorage
import VigilStorageSQLite

/// `vigil rules`: test rule files offline, import them into a server, and show where every
/// rule's scheduled evaluation stands.
struct Rules: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Detection rules: test, import, status.", subcommands: [Test.self, Import.self, Status.self])

    /// The `.yml`/`.yaml` files under a path (a file is itself).
    static func ruleFiles(_ path: String) throws -> [URL] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw ValidationError("\(path) does not exist") }
        guard isDirectory.boolValue else { return [URL(fileURLWithPath: path)] }
        var files: [URL] = []
        if let enumerator = FileManager.default.enumerator(at: URL(fileURLWithPath: path), includingPropertiesForKeys: nil) {
            for case let url as URL in enumerator where ["yml", "yaml"].contains(url.pathExtension) { files.append(url) }
        }
        return files.sorted { $0.path < $1.path }
    }

    struct Test: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Run the tests embedded in native rules (events in, expected alerts out) on a temporary store.")
        @Argument(help: "A rule file or a directory of them.") var path: String

        func run() async throws {
            var failures = 0, passed = 0
            for file in try Rules.ruleFiles(path) {
                let source = try String(contentsOf: file, encoding: .utf8)
                let rule: NativeRule
                do {
                    rule = try NativeRule.parse(source)
                } catch {
                    print("\(file.lastPathComponent): REFUSED \(error)")
                    failures += 1
                    continue
                }
                for (index, test) in rule.tests.enumerated() {
                    let alerts = try await Self.run(rule, events: test.events)
                    if alerts == test.expectedAlerts {
                        passed += 1
                        print("\(rule.id) test \(index + 1): PASS (\(alerts) alerts)")
                    } else {
                        failures += 1
                        print("\(rule.id) test \(index + 1): FAIL expected \(test.expectedAlerts) alerts, got \(alerts)")
                    }
                }
            }
            print("\(passed) passed, \(failures) failed")
            if failures > 0 { throw ExitCode(1) }
        }

        /// Stores the events in a temporary SQLite store (one second apart, in one bucket)
        /// and evaluates the rule over them the way the scheduler does.
        static func run(_ rule: NativeRule, events: [JSONObject]) async throws -> Int {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-rule-test-\(UUID().uuidString.prefix(8))", isDirectory: true)
            defer { try? FileManager.default.removeItem(at: dir) }
            let store = try SQLiteEventStore(dataDirectory: dir, logger: Logger(label: "rules-test"))
            let tenant = TenantName("test")!
            let bucket = rule.bucketMillis ?? 3_600_000
            let start = WindowPlanner.floor(Int64(Date().timeIntervalSince1970 * 1000), 86_400_000)
            let stored = events.enumerated().map { index, fields in
                let time = start + Int64(index) * min(1000, max(1, bucket / Int64(max(1, events.count + 1))))
                return StoredEvent(Event(tenant: tenant, key: EventKey(high: 1, low: UInt64(index + 1)), timestamp: time, ingested: time, fields: fields))
            }
            _ = try await store.write(events: stored, quarantined: [])
            let window = start..<(start + bucket)
            let matching = try await store.eventsIngested(tenant: tenant, query: rule.prefilter, from: window.lowerBound, to: window.upperBound, after: nil, limit: 100_000)
            return rule.evaluate(matching, window: window).count
        }
    }

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Load rule files into a server (or, with --dry-run, only check them) and print a coverage report: imported, refused by reason.")
        @Argument(help: "A rule file or a directory of them.") var path: String
        @Option(help: "Tenant to import into (admin keys).") var tenant: String?
        @Flag(help: "Only validate, import nothing.") var dryRun = false
        @OptionGroup var server: ServerOptions

        func run() async throws {
            let files = try Rules.ruleFiles(path)
            var imported = 0
            var refused: [String: [String]] = [:]
            let client = VigilHTTPClient(baseURL: server.baseURL, connections: 1)
            for file in files {
                guard let source = try? String(contentsOf: file, encoding: .utf8) else {
                    refused["unreadable", default: []].append(file.lastPathComponent)
                    continue
                }
                if dryRun {
                    do {
                        _ = try RuleCompiler(others: ["sigma": SigmaDetectionRule.compile]).compile(RuleRecord(tenant: .defaultTenant, id: "", format: DetectionRuntime.format(of: source), source: source, created: 0, watermark: 0))
                        imported += 1
                    } catch let error as RuleError {
                        refused[error.code, default: []].append(file.lastPathComponent)
                    }
                    continue
                }
                guard let token = server.resolvedToken else { throw ValidationError("--token is required (or --dry-run)") }
                let path = "/api/v1/rules" + (tenant.map { "?tenant=\($0)" } ?? "")
                let reply = try await client.send("POST", path, headers: ["Authorization": "Bearer \(token)", "Content-Type": "application/yaml"], body: Data(source.utf8))
                if reply.status == 200 || reply.status == 201 {
                    imported += 1
                } else {
                    let code = (((reply.json as? [String: Any])?["error"] as? [String: Any])?["code"] as? String) ?? "http_\(reply.status)"
                    refused[code, default: []].append(file.lastPathComponent)
                }
            }
            print("imported: \(imported) of \(files.count)")
            for (reason, names) in refused.sorted(by: { $0.value.count > $1.value.count }) {
                print("refused \(reason): \(names.count)  (e.g. \(names.prefix(3).joined(separator: ", ")))")
            }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every rule's watermark, lag and coverage gaps.")
        @Option(help: "Tenant (admin keys).") var tenant: String?
        @OptionGroup var server: ServerOptions

        func run() async throws {
            guard let token = server.resolvedToken else { throw ValidationError("--token is required") }
            let client = VigilHTTPClient(baseURL: server.baseURL, connections: 1)
            let suffix = tenant.map { "?tenant=\($0)" } ?? ""
            let reply = try await client.send("GET", "/api/v1/rules" + suffix, headers: ["Authorization": "Bearer \(token)"])
            guard reply.status == 200, let rules = (reply.json as? [String: Any])?["rules"] as? [[String: Any]] else {
                throw ValidationError("listing rules answered HTTP \(reply.status): \(reply.text)")
            }
            print("RULE".padding(toLength: 40, withPad: " ", startingAt: 0) + "WATERMARK                 LAG_S  COVERED  GAPS")
            for rule in rules {
                guard let id = rule["id"] as? String else { continue }
                let coverage = try await client.send("GET", "/api/v1/rules/\(id)/coverage" + suffix, headers: ["Authorization": "Bearer \(token)"])
                let object = coverage.json as? [String: Any] ?? [:]
                let lag = ((object["lag_ms"] as? Int) ?? 0) / 1000
                let covered = (object["covered"] as? [Any])?.count ?? 0
                let gaps = (object["gaps"] as? [Any])?.count ?? 0
                print(id.padding(toLength: 40, withPad: " ", startingAt: 0) + "\((object["watermark"] as? String ?? "-").padding(toLength: 26, withPad: " ", startingAt: 0))\(String(lag).padding(toLength: 7, withPad: " ", startingAt: 0))\(String(covered).padding(toLength: 9, withPad: " ", startingAt: 0))\(gaps)")
            }
        }
    }
}
