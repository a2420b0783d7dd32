import ArgumentParser
import Foundation
import VigilAlerts
import VigilCore
import VigilSigma

/// `vigil bench detect`: events/s through the Sigma matcher with many rules loaded, and the
/// latency from ingest to alert of a scheduled rule and of per-event rules on a live server.
struct DetectBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "detect",
        abstract: "Events/s through 1,000 Sigma rules (the SigmaHQ corpus when ../shared/testdata is present), and ingest-to-alert latency of a scheduled rule and of per-event rules matched at admission.")

    @Option(help: "Rules to load.") var rules: Int = 1000
    @Option(help: "Events to match.") var events: Int = 50_000
    @Option(help: "Directory of Sigma rules (default: ../shared/testdata/sigma/rules/windows).") var rulesDir: String?
    @Option(help: "Events of the every-rule baseline (default: a tenth of --events; 0: skip).") var baselineEvents: Int?
    @Option(help: "Events ingested into a live server with the rules loaded, timed until every rule has evaluated them (0: skip).") var pipelineEvents: Int = 300_000
    @Option(help: "Concurrent ingest clients of the live-server run.") var clients: Int = 4
    @Option(help: "Latency runs against a live server (0: skip).") var latencyRuns: Int = 5
    @Option(help: "Where to write the JSON result.") var output: String = "bench-results/detect.json"

    func run() async throws {
        let sources = try loadRules()
        let loaded = sources.map(\.rule)
        print("loaded \(loaded.count) Sigma rules")
        let corpus = Self.sysmonCorpus(count: events)
        let set = SigmaRuleSet(loaded)
        print("rule index: \(set.indexedCount) of \(loaded.count) rules have a literal trigger (the rest are tried on every event of their logsource)")
        // Warm-up, then one timed pass per core count.
        _ = count(set, corpus.prefix(500))
        var results: [String: Any] = ["rules": loaded.count, "events": events, "rules_indexed": set.indexedCount]
        // The baseline: every rule tried on every event (a slice, it is slow).
        let sample = corpus.prefix(baselineEvents ?? max(1, events / 10))
        if !sample.isEmpty {
        let baselineStart = Date()
        let baselineMatches = countEach(loaded, sample)
        let baselineEPS = Int(Double(sample.count) / Date().timeIntervalSince(baselineStart))
        guard baselineMatches == count(set, sample) else {
            throw ValidationError("the rule index and rule-by-rule matching disagree on the sample (\(baselineMatches) vs \(count(set, sample)))")
        }
        print("baseline, every rule tried (1 core, \(sample.count) events): \(baselineEPS) events/s (\(baselineMatches) matches)")
        results["events_per_second_every_rule_1_core"] = baselineEPS
        }
        for workers in [1, 2] {
            let start = Date()
            let matches = await withTaskGroup(of: Int.self) { group in
                for w in 0..<workers {
                    let slice = Array(corpus.enumerated().filter { $0.offset % workers == w }.map(\.element))
                    group.addTask { count(set, slice[...]) }
                }
                return await group.reduce(0, +)
            }
            let seconds = Date().timeIntervalSince(start)
            let eps = Int(Double(events) / seconds)
            print("\(workers) core(s): \(eps) events/s through \(loaded.count) indexed rules (\(matches) matches)")
            results["events_per_second_\(workers)_core"] = eps
        }
        if pipelineEvents > 0 {
            let (seconds, ingestSeconds, cpuSeconds) = try await measurePipeline(sources.map(\.source), corpus: corpus)
            let eps = Int(Double(pipelineEvents) / seconds)
            let cpu = cpuSeconds.map { String(format: "%.1f", $0 * 1_000_000 / Double(pipelineEvents)) } ?? "-"
            print("through a live server: \(pipelineEvents) events ingested in \(String(format: "%.1f", ingestSeconds)) s and evaluated by all \(loaded.count) rules after \(String(format: "%.1f", seconds)) s: \(eps) events/s (server CPU \(cpu) µs per event)")
            results["pipeline_events_per_second"] = eps
            results["pipeline_ingest_seconds"] = ingestSeconds
            results["pipeline_server_cpu_us_per_event"] = cpuSeconds.map { ($0 * 1_000_000 / Double(pipelineEvents) * 10).rounded() / 10 } ?? -1
        }
        if latencyRuns > 0 {
            for kind in LatencyRule.allCases {
                let sorted = try await measureLatency(runs: latencyRuns, kind).sorted()
                results["\(kind.resultPrefix)_p50"] = Int(sorted[sorted.count / 2])
                results["\(kind.resultPrefix)_max"] = Int(sorted.last ?? 0)
                print("ingest to alert, \(kind.label): p50 \(Int(sorted[sorted.count / 2])) ms, max \(Int(sorted.last ?? 0)) ms over \(latencyRuns) runs")
            }
        }
        results["machine"] = "\(ProcessInfo.processInfo.activeProcessorCount) cores, \(ProcessInfo.processInfo.physicalMemory / 1_073_741_824) GiB"
        results["date"] = ISO8601DateFormatter().string(from: Date())
        try writeBenchResult(results, to: output)
    }

    /// Generated Winlogbeat Sysmon documents: process creation (half), network, file and
    /// registry events over a few images and command lines.
    static func sysmonCorpus(count: Int) -> [JSONObject] {
        var generator = EventGenerator(seed: 11)
        let images = ["C:\\Windows\\System32\\cmd.exe", "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe", "C:\\Program Files\\App\\app.exe",
                      "C:\\Users\\bob\\AppData\\Local\\Temp\\x.exe", "C:\\Windows\\System32\\rundll32.exe", "C:\\Windows\\explorer.exe"]
        let lines = ["/c whoami /all", "-NoProfile -EncodedCommand SQBFAFgA", "--update", "C:\\Users\\bob\\doc.dll,EntryPoint", "/background", "dir C:\\"]
        var corpus: [JSONObject] = []
        for i in 0..<count {
            let id = [1, 1, 1, 3, 11, 13][i % 6]
            var data = JSONObject()
            data["Image"] = .string(generator.pick(images))
            data["CommandLine"] = .string(generator.pick(images) + " " + generator.pick(lines))
            data["ParentImage"] = .string(generator.pick(images))
            data["User"] = .string("CORP\\user\(generator.next() % 50)")
            data["TargetFilename"] = .string("C:\\Users\\bob\\file\(i).txt")
            data["TargetObject"] = .string("HKLM\\SOFTWARE\\Key\(i % 100)")
            data["DestinationIp"] = .string(generator.ip("10.2"))
            var object = JSONObject()
            object["winlog"] = .object(JSONObject([("channel", .string("Microsoft-Windows-Sysmon/Operational")), ("event_id", .string(String(id))), ("event_data", .object(data))]))
            corpus.append(object)
        }
        return corpus
    }

    func count(_ set: SigmaRuleSet, _ events: ArraySlice<JSONObject>) -> Int {
        events.reduce(0) { $0 + set.matches($1).count }
    }

    func countEach(_ rules: [SigmaRule], _ events: ArraySlice<JSONObject>) -> Int {
        var matches = 0
        for event in events {
            // One prepared event for all rules: fields, texts and logsource verdicts are shared.
            let prepared = SigmaEvent(event)
            for rule in rules where rule.matches(prepared) { matches += 1 }
        }
        return matches
    }

    func loadRules() throws -> [(source: String, rule: SigmaRule)] {
        let dir = rulesDir ?? "../shared/testdata/sigma/rules/windows"
        var loaded: [(source: String, rule: SigmaRule)] = []
        var ids: Set<String> = []
        if let enumerator = FileManager.default.enumerator(atPath: dir) {
            for case let path as String in enumerator where path.hasSuffix(".yml") {
                guard loaded.count < rules else { break }
                if let text = try? String(contentsOfFile: dir + "/" + path, encoding: .utf8), !text.contains("correlation:"),
                   let rule = try? SigmaRule.parse(text), ids.insert(rule.id).inserted {
                    loaded.append((text, rule))
                }
            }
        }
        // Without the corpus (or short of rules): generated process-creation rules.
        var n = 0
        while loaded.count < rules {
            n += 1
            let source = """
            title: generated \(n)
            id: generated-\(n)
            logsource: {product: windows, category: process_creation}
            detection:
                selection:
                    Image|endswith: '\\\\tool\(n).exe'
                    CommandLine|contains: ['-flag\(n)', '/opt\(n)']
                condition: selection
            level: medium
            """
            loaded.append((source, try SigmaRule.parse(source)))
        }
        return loaded
    }

    /// Loads the rules into a live server (lag 0, a tick a second), ingests the events over
    /// HTTP, and times from the first batch until every rule's watermark has passed the last
    /// one: events/s through ingest, storage and the scheduled evaluation of every rule.
    func measurePipeline(_ sources: [String], corpus: [JSONObject]) async throws -> (seconds: Double, ingestSeconds: Double, cpuSeconds: Double?) {
        let process = try ServerProcess(extraEnvironment: ["VIGIL_DETECTION_LAG_SECS": "0", "VIGIL_DETECTION_INTERVAL_SECS": "1"])
        let baseURL = try await process.start()
        defer { process.stop() }
        let client = VigilHTTPClient(baseURL: baseURL, connections: clients)
        let context = GateContext(client: client, adminToken: process.adminToken)
        let (_, key) = try await context.createTenant(prefix: "bench-detect")
        let auth = ["Authorization": "Bearer \(key)"]
        for source in sources {
            let reply = try await client.send("POST", "/api/v1/rules", headers: auth, body: Data(source.utf8))
            guard reply.status < 300 else { throw ValidationError("rule refused by the server: \(reply.text.prefix(300))") }
        }
        // Loaded means adopted: the scheduler publishes the rules on its next tick (one a
        // second). Started before that, the first second of events would also be read back
        // by the scheduler, received before the rules were matched at admission.
        try await Task.sleep(for: .milliseconds(2_500))
        let batches = stride(from: 0, to: pipelineEvents, by: 1_000).map { start in
            (start..<min(start + 1_000, pipelineEvents)).map { JSONWriter.string(.object(corpus[$0 % corpus.count])) }.joined(separator: "\n") + "\n"
        }
        let poster = try BulkPoster(baseURL: baseURL)
        let cpuBefore = process.cpuSeconds()
        let start = Date()
        _ = try await poster.post(path: "/api/v1/ingest", headers: [("Authorization", "Bearer \(key)"), ("Content-Type", "application/x-ndjson")],
                                  bodies: batches.map { Array($0.utf8) }, clients: clients)
        let ingestSeconds = Date().timeIntervalSince(start)
        let ingestEnd = EpochMillis(Date().timeIntervalSince1970 * 1000)
        while true {
            let reply = try await client.send("GET", "/api/v1/rules", headers: auth)
            let listed = ((reply.json as? [String: Any])?["rules"] as? [[String: Any]]) ?? []
            let watermarks = listed.compactMap { ($0["watermark"] as? String).flatMap(Timestamp.parseRFC3339) }
            if watermarks.count == sources.count, let oldest = watermarks.min(), oldest >= ingestEnd { break }
            guard Date().timeIntervalSince(start) < 1_800 else { throw ValidationError("the rules had not evaluated the events after 30 minutes") }
            try await Task.sleep(for: .milliseconds(50))  // polling the server's watermarks
        }
        let cpuSeconds: Double? = if let before = cpuBefore, let after = process.cpuSeconds() { after - before } else { nil }
        return (Date().timeIntervalSince(start), ingestSeconds, cpuSeconds)
    }

    /// The rules whose ingest-to-alert latency is measured.
    enum LatencyRule: CaseIterable {
        /// A native threshold rule (count 1 in buckets of a second), which only the scheduler
        /// runs: lag 0, a tick a second.
        case scheduled
        /// A native rule without a threshold, matched at admission (the default 120 s lag).
        case nativeAtAdmission
        /// A per-event Sigma rule, matched at admission (the default 120 s lag).
        case sigmaAtAdmission

        var resultPrefix: String {
            switch self {
            case .scheduled: return "alert_latency_ms"
            case .nativeAtAdmission: return "native_alert_latency_ms"
            case .sigmaAtAdmission: return "sigma_alert_latency_ms"
            }
        }

        var label: String {
            switch self {
            case .scheduled: return "native threshold rule, scheduled (lag 0 s, buckets of 1 s, a tick every 1 s)"
            case .nativeAtAdmission: return "native rule without a threshold, matched at admission (lag 120 s)"
            case .sigmaAtAdmission: return "per-event Sigma rule, matched at admission (lag 120 s)"
            }
        }

        var source: String {
            switch self {
            case .scheduled: return "id: bench-latency\nquery: 'benchlatency'\nseverity: low\nthreshold: {count: 1, window: 1s}\n"
            case .nativeAtAdmission: return "id: bench-latency\nquery: 'benchlatency'\nseverity: low\n"
            case .sigmaAtAdmission:
                return "title: bench latency\nid: bench-latency\nlogsource: {product: windows, category: process_creation}\ndetection:\n    sel:\n        Image|endswith: '\\\\benchlatency.exe'\n    condition: sel\nlevel: low\n"
            }
        }
    }

    /// Ingest one matching event and time until its alert is listed.
    func measureLatency(runs: Int, _ kind: LatencyRule) async throws -> [Double] {
        let sigma = kind == .sigmaAtAdmission
        let process = try ServerProcess(extraEnvironment: kind == .scheduled ? ["VIGIL_DETECTION_LAG_SECS": "0", "VIGIL_DETECTION_INTERVAL_SECS": "1"] : ["VIGIL_DETECTION_INTERVAL_SECS": "1"])
        let baseURL = try await process.start()
        defer { process.stop() }
        let client = VigilHTTPClient(baseURL: baseURL, connections: 2)
        let context = GateContext(client: client, adminToken: process.adminToken)
        let (_, key) = try await context.createTenant(prefix: "bench-detect")
        let added = try await client.send("POST", "/api/v1/rules", headers: ["Authorization": "Bearer \(key)"], body: Data(kind.source.utf8))
        guard added.status < 300 else { throw ValidationError("latency rule refused: \(added.text.prefix(300))") }
        if kind != .scheduled {
            // The rule is adopted once the scheduler has published it (a tick a second).
            try await Task.sleep(for: .milliseconds(2_500))
        }
        var latencies: [Double] = []
        for run in 0..<runs {
            let event = sigma
                ? "{\"winlog\":{\"channel\":\"Microsoft-Windows-Sysmon/Operational\",\"event_id\":\"1\",\"event_data\":{\"Image\":\"C:\\\\t\\\\benchlatency.exe\",\"CommandLine\":\"run \(run)\"}}}\n"
                : "{\"message\":\"benchlatency \(run)\"}\n"
            let start = Date()
            _ = try await client.send("POST", "/api/v1/ingest", headers: ["Authorization": "Bearer \(key)"], body: Data(event.utf8))
            while Date().timeIntervalSince(start) < 300 {
                let reply = try await client.send("GET", "/api/v1/alerts?rule_id=bench-latency", headers: ["Authorization": "Bearer \(key)"])
                if let alerts = (reply.json as? [String: Any])?["alerts"] as? [Any], alerts.count > run { break }
                try await Task.sleep(for: .milliseconds(20))  // polling for the alert
            }
            latencies.append(Date().timeIntervalSince(start) * 1000)
        }
        return latencies
    }
}
