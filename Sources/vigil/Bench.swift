import ArgumentParser
import Foundation
import VigilCore

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Benchmarks that print figures (never pass/fail).", subcommands: [IngestBench.self, SearchBench.self, SyslogBench.self, PacksBench.self, DetectBench.self, IntelBench.self])
}

/// A deterministic generator of realistic mixed security events (sshd, firewall, web, sudo).
struct EventGenerator {
    var random: SplitMix64

    init(seed: UInt64) { random = SplitMix64(seed: seed) }

    mutating func next() -> UInt64 { random.next() }

    mutating func pick<T>(_ values: [T]) -> T { values[Int(next() % UInt64(values.count))] }
    mutating func ip(_ prefix: String) -> String { "\(prefix).\(next() % 250 + 1).\(next() % 250 + 1)" }

    static let users = ["root", "admin", "alice", "bob", "deploy", "postgres", "oracle", "ubuntu", "test", "guest"]
    static let hosts = (1...40).map { "srv-\($0)" }
    static let paths = ["/", "/login", "/api/v1/orders", "/wp-login.php", "/static/app.js", "/admin", "/.env", "/search?q=shoes"]

    /// One NDJSON line with `@timestamp` at `millis`.
    mutating func line(millis: Int64) -> String {
        let ts = Self.iso(millis)
        let host = pick(Self.hosts)
        switch next() % 4 {
        case 0:
            let user = pick(Self.users), src = ip("203.0"), port = 1024 + next() % 60000
            let failed = next() % 3 != 0
            let message = failed
                ? "Failed password for \(user) from \(src) port \(port) ssh2"
                : "Accepted publickey for \(user) from \(src) port \(port) ssh2"
            return #"{"@timestamp":"\#(ts)","message":"\#(message)","host":{"name":"\#(host)"},"event":{"dataset":"linux.sshd","outcome":"\#(failed ? "failure" : "success")"},"source":{"ip":"\#(src)","port":\#(port)},"user":{"name":"\#(user)"},"process":{"name":"sshd","pid":\#(next() % 30000)}}"#
        case 1:
            let src = ip("10.1"), dst = ip("198.51"), sport = 1024 + next() % 60000, dport = pick([22, 53, 80, 443, 3389, 8080])
            let action = pick(["allow", "allow", "allow", "deny"])
            let message = "TRAFFIC,\(action),src=\(src):\(sport),dst=\(dst):\(dport),proto=tcp,bytes=\(next() % 100000),rule=r\(next() % 50)"
            return #"{"@timestamp":"\#(ts)","message":"\#(message)","observer":{"vendor":"Palo Alto Networks","product":"PAN-OS"},"event":{"dataset":"panos.traffic","action":"\#(action)"},"source":{"ip":"\#(src)","port":\#(sport)},"destination":{"ip":"\#(dst)","port":\#(dport)},"network":{"transport":"tcp"}}"#
        case 2:
            let src = ip("192.0"), path = pick(Self.paths), status = pick([200, 200, 200, 301, 404, 403, 500])
            let message = "\(src) - - [\(ts)] \\\"GET \(path) HTTP/1.1\\\" \(status) \(next() % 50000) \\\"-\\\" \\\"Mozilla/5.0\\\""
            return #"{"@timestamp":"\#(ts)","message":"\#(message)","host":{"name":"\#(host)"},"event":{"dataset":"nginx.access"},"source":{"ip":"\#(src)"},"url":{"original":"\#(path)"},"http":{"response":{"status_code":\#(status)}}}"#
        default:
            let user = pick(Self.users)
            let command = pick(["/usr/bin/systemctl restart nginx", "/bin/cat /etc/shadow", "/usr/bin/apt-get update", "/bin/bash"])
            let message = "\(user) : TTY=pts/\(next() % 5) ; PWD=/home/\(user) ; USER=root ; COMMAND=\(command)"
            return #"{"@timestamp":"\#(ts)","message":"\#(message)","host":{"name":"\#(host)"},"event":{"dataset":"linux.sudo"},"user":{"name":"\#(user)"}}"#
        }
    }

    static func iso(_ millis: Int64) -> String {
        let date = Date(timeIntervalSince1970: Double(millis) / 1000)
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        func p(_ v: Int?, _ w: Int = 2) -> String { let s = String(v ?? 0); return String(repeating: "0", count: max(0, w - s.count)) + s }
        return "\(p(c.year, 4))-\(p(c.month))-\(p(c.day))T\(p(c.hour)):\(p(c.minute)):\(p(c.second)).\(p(Int(millis % 1000), 3))Z"
    }
}

struct IngestBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest",
        abstract: "Concurrent clients post generated NDJSON to /api/v1/ingest; prints events/s to durable-and-searchable, ack latency, peak RSS.")

    @Option(help: "Events to send.") var events: Int = 500_000
    @Option(help: "Events per request.") var batch: Int = 1_000
    @Option(help: "Concurrent clients.") var clients: Int = 8
    @Option(help: "Where to write the JSON result.") var output: String = "bench-results/ingest.json"
    @OptionGroup var server: ServerOptions

    func run() async throws {
        var owned: ServerProcess?
        let baseURL: URL
        let adminToken: String
        if server.url != nil {
            baseURL = server.baseURL
            guard let token = server.resolvedToken else { throw ValidationError("--token (admin) is required with --url") }
            adminToken = token
        } else {
            let process = try ServerProcess()
            owned = process
            baseURL = try await process.start()
            adminToken = process.adminToken
        }
        defer { owned?.stop() }
        let client = VigilHTTPClient(baseURL: baseURL, connections: clients)
        let context = GateContext(client: client, adminToken: adminToken)
        let (_, key) = try await context.createTenant(prefix: "bench")

        // Pre-generate every body so the generator is not measured.
        var generator = EventGenerator(seed: 42)
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        var bodies: [[UInt8]] = []
        var rawBytes = 0
        var sent = 0
        while sent < events {
            let count = min(batch, events - sent)
            var text = ""
            for i in 0..<count {
                text += generator.line(millis: now - 3_600_000 + Int64((sent + i) % 3_600_000))
                text += "\n"
            }
            rawBytes += text.utf8.count
            bodies.append(Array(text.utf8))
            sent += count
        }
        print("generated \(events) events (\(rawBytes / 1_048_576) MiB) in \(bodies.count) requests; \(clients) clients")

        let poster = try BulkPoster(baseURL: baseURL)
        let cpuBefore = owned?.cpuSeconds()
        let start = Date()
        let latencies = try await poster.post(
            path: "/api/v1/ingest", headers: [("Authorization", "Bearer \(key)"), ("Content-Type", "application/x-ndjson")],
            bodies: bodies, clients: clients
        ).sorted()
        let acked = Date().timeIntervalSince(start)
        let from = EventGenerator.iso(now - 3_700_000), to = EventGenerator.iso(now + 60_000)
        try await context.waitForCount(events, key: key, from: from, to: to, timeoutSeconds: 600)
        let searchable = Date().timeIntervalSince(start)
        let serverCPU: Double? = if let before = cpuBefore, let after = owned?.cpuSeconds() { after - before } else { nil }
        func percentile(_ p: Double) -> Double { latencies.isEmpty ? 0 : latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))] }
        let rss = owned?.peakRSSBytes()
        // Bytes on disk at rest: once the queue is empty the server checkpoints and truncates
        // its write-ahead logs, so wait (up to 10 s) for the size to stop shrinking.
        func storeBytes() -> Int64 {
            var total: Int64 = 0
            if let dir = owned?.dataDirectory.appendingPathComponent("events"), let enumerator = FileManager.default.enumerator(at: dir, includingPropertiesForKeys: [.fileSizeKey]) {
                for case let url as URL in enumerator {
                    total += Int64((try? url.resourceValues(forKeys: [.fileSizeKey]).fileSize) ?? 0)
                }
            }
            return total
        }
        var diskBytes = storeBytes()
        for _ in 0..<20 where owned != nil {
            try await Task.sleep(for: .milliseconds(500))
            let now = storeBytes()
            if now >= diskBytes { break }
            diskBytes = now
        }
        let result: [String: Any] = [
            "benchmark": "ingest", "events": events, "batch": batch, "clients": clients,
            "raw_bytes": rawBytes,
            "acked_eps": Int(Double(events) / acked),
            "searchable_eps": Int(Double(events) / searchable),
            "ack_latency_ms_p50": (percentile(0.50) * 10).rounded() / 10,
            "ack_latency_ms_p99": (percentile(0.99) * 10).rounded() / 10,
            "peak_rss_mib": rss.map { Int($0 / 1_048_576) } ?? -1,
            "server_cpu_us_per_event": serverCPU.map { ($0 * 1_000_000 / Double(events) * 10).rounded() / 10 } ?? -1,
            "store_bytes_per_raw_byte": owned == nil ? -1 : (Double(diskBytes) / Double(rawBytes) * 100).rounded() / 100,
            "machine": "\(ProcessInfo.processInfo.activeProcessorCount) cores, \(ProcessInfo.processInfo.physicalMemory / 1_073_741_824) GiB",
            "date": ISO8601DateFormatter().string(from: Date()),
        ]
        print("| metric | value |\n|---|---|")
        for key in ["events", "batch", "clients", "acked_eps", "searchable_eps", "ack_latency_ms_p50", "ack_latency_ms_p99", "peak_rss_mib", "server_cpu_us_per_event", "store_bytes_per_raw_byte", "machine"] {
            print("| \(key) | \(result[key] ?? "") |")
        }
        try writeBenchResult(result, to: output)
    }
}

/// Writes a bench's JSON result (sorted keys, indented) to `path`, creating its directory.
func writeBenchResult(_ result: [String: Any], to path: String) throws {
    let url = URL(fileURLWithPath: path)
    try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
    try JSONSerialization.data(withJSONObject: result, options: [.prettyPrinted, .sortedKeys]).write(to: url)
}
