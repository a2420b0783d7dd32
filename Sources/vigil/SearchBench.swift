import ArgumentParser
import Foundation
import Logging
import VigilCore
import VigilQuery
import VigilStorage
import VigilStorageSQLite

/// `vigil bench search`: loads generated events spread over one UTC day into a store, then
/// runs each query shape many times over the whole day (limit 100) and prints p50/p95.
/// Queries run in-process against the store, so the figures are the planner and SQLite,
/// without HTTP and JSON rendering (a few milliseconds more through the API).
struct SearchBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "search",
        abstract: "Loads N generated events over 24 h, then prints p50/p95 latency per query shape.")

    @Option(help: "Events to load.") var events: Int = 10_000_000
    @Option(help: "Runs per query shape.") var runs: Int = 30
    @Option(help: "Data directory; an existing one with the same event count is reused. Default: a temporary one, removed after.") var dataDir: String?
    @Option(help: "Where to write the JSON result.") var output: String = "bench-results/search.json"

    static let shapes: [(name: String, query: String)] = [
        ("token (common)", "failed"),
        ("token (rare)", "31337"),
        ("phrase", "\"failed password\""),
        ("field equality", "user.name:alice"),
        ("field equality (rare)", "source.ip:203.0.17.42"),
        ("CIDR", "source.ip:10.1.0.0/16"),
        ("range", "destination.port:[3000 TO 4000]"),
        ("boolean mix", "(failed OR deny) AND NOT user.name:root AND host.name:srv-7"),
        ("stats by field", "* | stats count() by event.dataset"),
        ("stats by host", "* | stats count() by host.name"),
        ("stats dc by field", "* | stats count(), dc(user.name) by host.name"),
        ("timechart", "* | timechart span=1h count()"),
    ]

    func run() async throws {
        let temporary = dataDir == nil
        let directory = URL(fileURLWithPath: dataDir ?? FileManager.default.temporaryDirectory.appendingPathComponent("vigil-bench-search-\(UUID().uuidString)").path)
        defer { if temporary { try? FileManager.default.removeItem(at: directory) } }
        let store = try SQLiteEventStore(dataDirectory: directory, logger: Logger(label: "bench"))
        let tenant = TenantName("bench")!
        let day: EpochMillis = 1_795_478_400_000  // 2026-11-24T00:00:00Z
        let range = (from: day, to: day + Timestamp.millisPerDay)

        let marker = directory.appendingPathComponent("bench-events")
        let loaded = (try? String(contentsOf: marker, encoding: .utf8)).flatMap { Int($0) } ?? 0
        var loadSeconds: Double?
        if loaded != events {
            let start = Date()
            var generator = EventGenerator(seed: 7)
            var batch: [StoredEvent] = []
            batch.reserveCapacity(20_000)
            for i in 0..<events {
                let timestamp = day + Int64(Double(i) * Double(Timestamp.millisPerDay) / Double(events))
                guard case .object(var fields) = try JSONParser.parse(generator.line(millis: timestamp)) else { continue }
                fields.removeValue(forKey: "@timestamp")
                batch.append(StoredEvent(Event(tenant: tenant, key: EventKey(high: 42, low: UInt64(i)), timestamp: timestamp, ingested: timestamp, fields: fields)))
                if batch.count == 20_000 || i == events - 1 {
                    _ = try await store.write(events: batch, quarantined: [])
                    batch.removeAll(keepingCapacity: true)
                }
                if (i + 1) % 1_000_000 == 0 { print("loaded \(i + 1) events (\(Int(Double(i + 1) / Date().timeIntervalSince(start))) events/s)") }
            }
            loadSeconds = Date().timeIntervalSince(start)
            try String(events).write(to: marker, atomically: true, encoding: .utf8)
        }
        var results: [[String: Any]] = []
        print("| query shape | query | p50 ms | p95 ms | runs | hits | total |\n|---|---|---|---|---|---|---|")
        for shape in Self.shapes {
            let query = try QueryParser().parse(shape.query)
            var timings: [Double] = []
            var hits = 0
            var total = ""
            let shapeStart = Date()
            for run in 0...runs {
                // A slow shape stops after a minute (and at least 3 measured runs).
                if run > 3, Date().timeIntervalSince(shapeStart) > 60 { break }
                let request = SearchRequest(tenant: tenant, query: query, from: range.from, to: range.to, limit: 100,
                                            budget: QueryBudget(timeoutMillis: 60_000))
                let t0 = DispatchTime.now()
                let result = try await store.search(request)
                let millis = Double(DispatchTime.now().uptimeNanoseconds - t0.uptimeNanoseconds) / 1_000_000
                if run > 0 { timings.append(millis) }  // the first run warms the page cache
                switch result {
                case .events(let page):
                    hits = page.hits.count
                    total = page.totalIsExact ? "\(page.total)" : "≥\(page.total)"
                case .table(let table):
                    hits = table.rows.count
                    total = "\(table.rows.count) rows"
                }
            }
            timings.sort()
            let p50 = timings[timings.count / 2], p95 = timings[min(timings.count - 1, Int(Double(timings.count) * 0.95))]
            print("| \(shape.name) | `\(shape.query.replacingOccurrences(of: "|", with: "\\|"))` | \(String(format: "%.1f", p50)) | \(String(format: "%.1f", p95)) | \(timings.count) | \(hits) | \(total) |")
            results.append(["shape": shape.name, "query": shape.query, "p50_ms": (p50 * 10).rounded() / 10, "p95_ms": (p95 * 10).rounded() / 10, "runs": timings.count, "hits": hits])
        }
        var diskBytes: Int64 = 0
        if let enumerator = FileManager.default.enumerator(at: directory.appendingPathComponent("events"), includingPropertiesForKeys: [.fileSizeKey]) {
            for case let url as URL in enumerator { diskBytes += Int64((try? url.resourceValues(forKeys: [.fileSizeKey]).fileSize) ?? 0) }
        }
        let result: [String: Any] = [
            "benchmark": "search", "events": events, "runs": runs, "range_hours": 24, "limit": 100, "shapes": results,
            "load_seconds": loadSeconds.map { ($0 * 10).rounded() / 10 } ?? -1, "store_mib": Int(diskBytes / 1_048_576),
            "machine": "\(ProcessInfo.processInfo.activeProcessorCount) cores, \(ProcessInfo.processInfo.physicalMemory / 1_073_741_824) GiB",
            "date": ISO8601DateFormatter().string(from: Date()),
        ]
        print("store: \(diskBytes / 1_048_576) MiB for \(events) events\(loadSeconds.map { String(format: "; loaded in %.0f s", $0) } ?? "")")
        try writeBenchResult(result, to: output)
    }
}
