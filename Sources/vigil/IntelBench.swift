import ArgumentParser
import Foundation
import VigilCore
import VigilThreatIntel

/// `vigil bench intel`: load time of a large indicator feed and the cost of enrichment per event.
struct IntelBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "intel", abstract: "Loads a generated feed of N indicators and measures enrichment per event.")

    @Option(help: "Indicators in the generated feed.") var indicators: Int = 1_000_000
    @Option(help: "Events to enrich.") var events: Int = 200_000
    @Option(help: "Where to write the JSON result.") var output: String = "bench-results/intel.json"

    func run() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-intel-bench-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let feed = dir.appendingPathComponent("feed.csv")
        try SyslogBench.writeFeed(count: indicators, to: feed)
        let feeds = IntelFeeds(paths: [feed.path])
        let loadStart = Date()
        feeds.reloadIfChanged()
        let loadSeconds = Date().timeIntervalSince(loadStart)
        let set = feeds.current
        print("loaded \(set.count) indicators in \(String(format: "%.2f", loadSeconds)) s")

        var generator = EventGenerator(seed: 5)
        var corpus: [JSONObject] = []
        for i in 0..<events {
            var fields = JSONObject()
            FieldNesting.set(.string(generator.ip("10.1")), at: "source.ip", in: &fields)
            FieldNesting.set(.string(generator.ip("203.0")), at: "destination.ip", in: &fields)
            FieldNesting.set(.string("host\(i % 977).example.org"), at: "dns.question.name", in: &fields)
            FieldNesting.set(.string("https://cdn.example.org/path/\(i % 1000)"), at: "url.original", in: &fields)
            FieldNesting.set(.string(String(format: "%016llx%016llx%016llx%016llx", generator.next(), generator.next(), generator.next(), generator.next())), at: "file.hash.sha256", in: &fields)
            corpus.append(fields)
        }
        func measure(_ set: IndicatorSet) -> (Double, Int) {
            var copy = corpus
            let start = Date()
            var matches = 0
            for i in copy.indices { matches += Enrichment.enrich(&copy[i], with: set) }
            return (Date().timeIntervalSince(start), matches)
        }
        let (empty, _) = measure(IndicatorSet([Indicator(kind: .ip, value: "192.0.2.1", provider: "x")]))
        let (full, matches) = measure(set)
        let perEvent = full / Double(events) * 1_000_000
        let baseline = empty / Double(events) * 1_000_000
        print(String(format: "enrichment: %.2f µs/event with %d indicators (%.2f µs with 1), %d matches in %d events", perEvent, set.count, baseline, matches, events))
        let result: [String: Any] = [
            "indicators": set.count, "load_seconds": (loadSeconds * 100).rounded() / 100,
            "enrich_us_per_event": (perEvent * 100).rounded() / 100, "enrich_us_per_event_one_indicator": (baseline * 100).rounded() / 100,
            "events": events, "matches": matches,
            "peak_rss_mib": Self.peakRSS(),
            "machine": "\(ProcessInfo.processInfo.activeProcessorCount) cores, \(ProcessInfo.processInfo.physicalMemory / 1_073_741_824) GiB",
            "date": ISO8601DateFormatter().string(from: Date()),
        ]
        try writeBenchResult(result, to: output)
    }

    static func peakRSS() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return -1 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            return (line.split(separator: " ").compactMap { Int($0) }.first ?? 0) / 1024
        }
        return -1
    }
}
