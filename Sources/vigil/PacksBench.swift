import ArgumentParser
import Foundation
import Logging
import VigilCore
import VigilIntake
import VigilParsing
import VigilQuery
import VigilStorage
import VigilStorageSQLite
import VigilSyslog
import VigilThreatIntel

/// The syslog bench's line kinds through the normalizer and the stored-form encoding, on one
/// core and without a server: the CPU a line costs before SQLite, steadier than the live
/// bench on a VM whose speed drifts.
struct PacksBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "packs",
        abstract: "Normalizes the syslog bench's generated lines per vendor, and the detection bench's Sysmon documents, on one core (best of N passes): µs per line to normalize and to encode the stored form.")

    @Option(help: "Lines per vendor kind.") var lines: Int = 6_000
    @Option(help: "Passes over the lines; the fastest counts.") var passes: Int = 7
    @Option(help: "Where to write the JSON result.") var output: String = "bench-results/packs.json"
    @Option(help: "Indicators in the admission stage's threat-intel feed, as in `bench syslog` (0: no feed).") var indicators: Int = 1_000_000

    /// The generator's kinds, by `sequence % 6`.
    static let kinds = ["cisco.asa", "panos", "fortinet", "sshd", "f5", "generic"]

    func run() async throws {
        var generator = SyslogTrafficGenerator()
        let stamps = SyslogTrafficGenerator.Stamps(Date())
        var byKind = [[String]](repeating: [], count: Self.kinds.count)
        while byKind.contains(where: { $0.count < lines }) {
            let line = generator.line(stamps)
            let kind = generator.sequence % Self.kinds.count
            if byKind[kind].count < lines { byKind[kind].append(line) }
        }
        let normalizer = Normalizer()
        let received = Int64(Date().timeIntervalSince1970 * 1000)
        let tenant = TenantName("bench")!
        let key = EventKey(high: 1, low: 1)

        func best(_ body: () -> Int) -> Double {
            var fastest = Double.infinity
            var sink = 0
            for _ in 0..<max(passes, 1) {
                let start = DispatchTime.now().uptimeNanoseconds
                sink &+= body()
                fastest = min(fastest, Double(DispatchTime.now().uptimeNanoseconds - start) / 1_000)
            }
            if sink == -1 { print("") }  // keeps the work from being optimized away
            return fastest / Double(lines)
        }

        print("| kind | dataset | normalize µs/line | encode stored form µs/line |\n|---|---|---|---|")
        var rows: [[String: Any]] = []
        var normalizeTotal = 0.0, encodeTotal = 0.0
        for (index, kindLines) in byKind.enumerated() {
            let normalize = best { kindLines.reduce(0) { $0 &+ normalizer.normalize(line: $1, receivedAt: received).fields.count } }
            let normalized = kindLines.map { normalizer.normalize(line: $0, receivedAt: received) }
            let encode = best {
                normalized.reduce(0) { $0 &+ StoredEvent(tenant: tenant, key: key, timestamp: received, ingested: received, fields: $1.fields).document.count }
            }
            let dataset = normalized.first?.dataset ?? "-"
            print("| \(Self.kinds[index]) | \(dataset) | \(String(format: "%.2f", normalize)) | \(String(format: "%.2f", encode)) |")
            rows.append(["kind": Self.kinds[index], "dataset": dataset, "normalize_us_per_line": (normalize * 100).rounded() / 100,
                         "encode_us_per_line": (encode * 100).rounded() / 100])
            normalizeTotal += normalize
            encodeTotal += encode
        }
        let kinds = Double(byKind.count)
        print("| mix | - | \(String(format: "%.2f", normalizeTotal / kinds)) | \(String(format: "%.2f", encodeTotal / kinds)) |")
        // Every kind as the syslog decoder takes it (`Normalizer.normalize(frame:)`): flat
        // fields, stored without a nested document. Not in the mix, which stays comparable
        // with earlier runs.
        var flatNormalizeTotal = 0.0, flatEncodeTotal = 0.0
        for kind in Self.kinds {
            let kindLines = byKind[Self.kinds.firstIndex(of: kind)!]
            let frames = kindLines.map { Array($0.utf8) }
            func flat(_ index: Int) -> FlatNormalizedEvent? {
                guard case .flat(let event) = normalizer.normalize(frame: frames[index], line: kindLines[index], peer: "127.0.0.1", receivedAt: received) else { return nil }
                return event
            }
            let flatNormalize = best { frames.indices.reduce(0) { $0 &+ (flat($1)?.fields.bytes.count ?? 0) } }
            let flatEvents = frames.indices.compactMap(flat)
            let flatEncode = best {
                flatEvents.reduce(0) { $0 &+ StoredEvent(tenant: tenant, key: key, timestamp: received, ingested: received, flat: $1.fields, appending: []).document.count }
            }
            let dataset = flatEvents.first?.dataset ?? "-"
            print("| \(kind) as flat fields (\(flatEvents.count) of \(frames.count) lines, not in the mix) | \(dataset) | \(String(format: "%.2f", flatNormalize)) | \(String(format: "%.2f", flatEncode)) |")
            rows.append(["kind": "\(kind)-flat", "dataset": dataset, "in_mix": false, "flat_lines": flatEvents.count,
                         "normalize_us_per_line": (flatNormalize * 100).rounded() / 100, "encode_us_per_line": (flatEncode * 100).rounded() / 100])
            flatNormalizeTotal += flatNormalize
            flatEncodeTotal += flatEncode
        }
        print("| mix as flat fields | - | \(String(format: "%.2f", flatNormalizeTotal / kinds)) | \(String(format: "%.2f", flatEncodeTotal / kinds)) |")
        // Not syslog, and not in the mix: the detection bench's Winlogbeat Sysmon documents
        // through the Windows pack (the HTTP ingest path).
        let documents = DetectBench.sysmonCorpus(count: lines)
        let windowsNormalize = best { documents.reduce(0) { $0 &+ (normalizer.normalize(document: $1, receivedAt: received)?.fields.count ?? 0) } }
        let windowsNormalized = documents.compactMap { normalizer.normalize(document: $0, receivedAt: received) }
        let windowsEncode = best {
            windowsNormalized.reduce(0) { $0 &+ StoredEvent(tenant: tenant, key: key, timestamp: received, ingested: received, fields: $1.fields).document.count }
        }
        let windowsDataset = windowsNormalized.first?.dataset ?? "-"
        print("| sysmon (Winlogbeat JSON, not in the mix) | \(windowsDataset) | \(String(format: "%.2f", windowsNormalize)) | \(String(format: "%.2f", windowsEncode)) |")
        rows.append(["kind": "sysmon-winlogbeat", "dataset": windowsDataset, "in_mix": false, "normalize_us_per_line": (windowsNormalize * 100).rounded() / 100,
                     "encode_us_per_line": (windowsEncode * 100).rounded() / 100])
        // The mix as the syslog listener hands it over, through admission into a spool.
        let mix = (0..<lines).flatMap { line in byKind.map { $0[line] } }
        let (admission, storing) = try await Self.admissionAndStore(mix, indicators: indicators, passes: passes)
        print("| mix decoded and admitted into a spool (\(indicators) indicators; process CPU) | - | \(String(format: "%.2f", admission)) | - |")
        print("| the spool's records stored by the pipeline into SQLite (process CPU) | - | \(String(format: "%.2f", storing)) | - |")
        let result: [String: Any] = [
            "benchmark": "packs", "lines_per_kind": lines, "passes": passes, "kinds": rows,
            "indicators": indicators, "mix_decode_admit_cpu_us_per_line": (admission * 100).rounded() / 100,
            "mix_store_cpu_us_per_line": (storing * 100).rounded() / 100,
            "mix_normalize_us_per_line": (normalizeTotal / kinds * 100).rounded() / 100,
            "mix_encode_us_per_line": (encodeTotal / kinds * 100).rounded() / 100,
            "flat_mix_normalize_us_per_line": (flatNormalizeTotal / kinds * 100).rounded() / 100,
            "flat_mix_encode_us_per_line": (flatEncodeTotal / kinds * 100).rounded() / 100,
            "machine": "\(ProcessInfo.processInfo.activeProcessorCount) cores, \(ProcessInfo.processInfo.physicalMemory / 1_073_741_824) GiB",
            "date": ISO8601DateFormatter().string(from: Date()),
        ]
        try writeBenchResult(result, to: output)
    }

    /// Process CPU (user and system, every thread) per line of two stages, each the best of
    /// `passes` (each pass into a fresh spool and store):
    /// - admission: decode `lines` as the syslog listener does and admit them through the
    ///   batcher into a spool: the packs, the threat-intel step over a feed of `indicators`,
    ///   keys, the stored form, spool records and their appends. Everything the server does to
    ///   a line but receiving it and storing it (no pipeline reads the spool meanwhile).
    /// - storing: the pipeline then takes the spool's records into the SQLite store (rows
    ///   built and compressed, inserted with their token index, committed), until every line
    ///   is stored. The whole spool is there at once, so its batches are as large as a backlog
    ///   makes them in the server.
    static func admissionAndStore(_ lines: [String], indicators: Int, passes: Int) async throws -> (admit: Double, store: Double) {
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-packs-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: work) }
        var feedPaths: [String] = []
        if indicators > 0 {
            let feed = work.appendingPathComponent("feed.csv")
            try SyslogBench.writeFeed(count: indicators, to: feed)
            feedPaths.append(feed.path)
        }
        let feeds = IntelFeeds(paths: feedPaths)
        feeds.reloadIfChanged()
        let logger = Logger(label: "bench-packs")
        let decoder = NormalizingSyslogDecoder()
        let tenant = TenantName("bench")!
        let frames = lines.map { Array($0.utf8) }
        var fastest = (admit: Double.infinity, store: Double.infinity)
        for pass in 0..<max(passes, 1) {
            let directory = work.appendingPathComponent("pass-\(pass)")
            let spool = try Spool(configuration: SpoolConfiguration(directory: directory.appendingPathComponent("spool")))
            let store = try SQLiteEventStore(dataDirectory: directory, logger: logger)
            let intake = IntakeService(queue: spool, store: store, clock: SystemClock(),
                                       limits: IntakeLimits(), steps: [PackDocumentStep(), IntelStep(feeds: feeds)], logger: logger)
            let batcher = SyslogBatcher(intake: intake, clock: SystemClock(), logger: logger)
            let start = CPUClock.process()
            // In the listener's chunks: a read of a TCP connection's frames.
            for chunk in stride(from: 0, to: frames.count, by: 1_000) {
                let received = Int64(Date().timeIntervalSince1970 * 1000)
                let entries = frames[chunk..<min(chunk + 1_000, frames.count)].map {
                    (tenant, decoder.decode(frame: $0, peer: "127.0.0.1", received: received))
                }
                await batcher.admitFromStream(entries)
            }
            await batcher.drain()
            let admitted = CPUClock.process()
            fastest.admit = min(fastest.admit, admitted - start)
            let pipeline = Task { try await PipelineService(queue: spool, store: store, intake: intake, logger: logger).run() }
            // Every admitted line is stored once the intake has none left unstored.
            let deadline = Date().addingTimeInterval(600)
            while !intake.isIdle(forMillis: 0) {
                guard Date() < deadline else { throw GateFailure("the pipeline did not store the admitted lines in 600 s") }
                try await Task.sleep(for: .milliseconds(1))  // polling for the pipeline
            }
            fastest.store = min(fastest.store, CPUClock.process() - admitted)
            pipeline.cancel()
            do { try await pipeline.value } catch is CancellationError {}
            // Stored means searchable: the pass counts only if search finds every line.
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            let found = try await store.search(SearchRequest(tenant: tenant, query: try QueryParser().parse("* | stats count()"), from: now - 2 * 86_400_000, to: now + 86_400_000, limit: 1))
            guard case .table(let table) = found, table.rows.first?.first == .int(Int64(lines.count)) else {
                throw GateFailure("the storing stage left lines unsearchable: \(lines.count) admitted, search counted \(found)")
            }
        }
        return (fastest.admit * 1_000_000 / Double(lines.count), fastest.store * 1_000_000 / Double(lines.count))
    }
}
