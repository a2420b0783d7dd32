import ArgumentParser
import Foundation

/// `vigil gates`: end-to-end proofs against a live server, through public interfaces only.
struct Gates: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the end-to-end gates and print name:PASS / name:FAIL <reason> / name:SKIP <why>.",
        discussion: "Without --url, starts its own server on port 0 with a temporary data directory.")

    @Option(help: "Run only this gate.") var only: String?
    @Option(help: "Run the gates this many times (flake hunting).") var loop: Int = 1
    @OptionGroup var server: ServerOptions

    static let all: [(name: String, run: (@Sendable (GateContext) async throws -> Void)?)] = [
        ("storage", StorageGate.run), ("quarantine", QuarantineGate.run), ("idempotency", IdempotencyGate.run),
        ("watermark", WatermarkGate.run), ("redis", nil), ("drill", nil),
        ("search_safety", SearchSafetyGate.run), ("parsers", ParsersGate.run), ("fts", FTSGate.run), ("agents", nil), ("ledger", nil),
        ("collector_spool", nil), ("collector_perf", nil), ("kafka_stress", nil), ("sizing", nil),
    ]

    func run() async throws {
        if let only, !Self.all.contains(where: { $0.name == only }) {
            throw ValidationError("unknown gate '\(only)'; gates: \(Self.all.map(\.name).joined(separator: ", "))")
        }
        var owned: ServerProcess?
        let baseURL: URL
        let token: String
        if server.url != nil {
            baseURL = server.baseURL
            guard let resolved = server.resolvedToken else { throw ValidationError("--token (or VIGIL_ADMIN_TOKEN) is required with --url: gates need an admin key") }
            token = resolved
        } else {
            // Detection with a short lag, so the watermark gate does not wait two minutes.
            let process = try ServerProcess(extraEnvironment: ["VIGIL_DETECTION_LAG_SECS": "2", "VIGIL_DETECTION_INTERVAL_SECS": "1"])
            owned = process
            baseURL = try await process.start()
            token = process.adminToken
        }
        defer { owned?.stop() }
        var context = GateContext(client: VigilHTTPClient(baseURL: baseURL), adminToken: token)
        if let owned {
            // The gate owns this server, so it may restart it on the same data directory.
            context.restart = { try await owned.restart() }
            context.syslogTCP = { owned.addresses()["syslog_tcp"] }
        }
        var failed = false
        for _ in 0..<max(1, loop) {
            for gate in Self.all where only == nil || only == gate.name {
                guard let run = gate.run else {
                    if only != nil { emit("\(gate.name):SKIP not implemented yet") }
                    continue
                }
                do {
                    try await run(context)
                    emit("\(gate.name):PASS")
                } catch {
                    failed = true
                    emit("\(gate.name):FAIL \(error)")
                }
            }
        }
        if failed { throw ExitCode(1) }
    }
}

struct GateContext: Sendable {
    var client: VigilHTTPClient
    var adminToken: String
    /// Stops and starts the server on the same data directory (only when the gates own it).
    var restart: (@Sendable () async throws -> Void)?
    /// The syslog TCP listener (host:port), when known; read when asked, since a restart
    /// binds new ports.
    var syslogTCP: (@Sendable () -> String?)?

    init(client: VigilHTTPClient, adminToken: String) {
        self.client = client
        self.adminToken = adminToken
    }

    func createTenant(prefix: String) async throws -> (tenant: String, key: String) {
        let name = "\(prefix)-\(UUID().uuidString.prefix(8).lowercased())"
        let reply = try await client.json("POST", "/api/v1/tenants", token: adminToken, ["name": name])
        guard reply.status == 201, let object = reply.json as? [String: Any], let key = object["api_key"] as? String else {
            throw GateFailure("creating a tenant answered HTTP \(reply.status)")
        }
        return (name, key)
    }

    /// Polls search until it reports `total` events or the deadline passes.
    func waitForTotal(_ total: Int, query: String, key: String, from: String, to: String, timeoutSeconds: Double = 30, limit: Int = 1000) async throws -> [String: Any] {
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        var last: Any = "nothing"
        while Date() < deadline {
            let reply = try await client.json("POST", "/api/v1/search", token: key, ["query": query, "from": from, "to": to, "limit": limit])
            if reply.status == 200, let object = reply.json as? [String: Any] {
                last = object["total"] ?? "no total"
                if (object["total"] as? Int) == total { return object }
            } else {
                last = "HTTP \(reply.status)"
            }
            try await Task.sleep(for: .milliseconds(100))  // polling for searchability
        }
        throw GateFailure("search did not reach \(total) events (last: \(last))")
    }
}

extension GateContext {
    /// Polls `* | stats count()` (exact at any size, unlike `total`) until it reaches `count`.
    func waitForCount(_ count: Int, key: String, tenant: String? = nil, from: String, to: String, timeoutSeconds: Double) async throws {
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        var last: Any = "nothing"
        var body: [String: Any] = ["query": "* | stats count()", "from": from, "to": to]
        if let tenant { body["tenant"] = tenant }
        while Date() < deadline {
            let reply = try await client.json("POST", "/api/v1/search", token: key, body)
            let rows = (reply.json as? [String: Any])?["rows"] as? [[Any]]
            last = rows?.first?.first ?? "HTTP \(reply.status)"
            if last as? Int == count { return }
            try await Task.sleep(for: .milliseconds(100))  // polling for searchability
        }
        throw GateFailure("the store did not reach \(count) events (last count: \(last))")
    }
}

struct GateFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

func gateExpect(_ condition: Bool, _ message: @autoclosure () -> String) throws {
    if !condition { throw GateFailure(message()) }
}

/// Looks up a dotted path in nested JSON objects.
func lookup(_ object: [String: Any], _ path: String) -> Any? {
    var current: Any? = object
    for part in path.split(separator: ".") {
        guard let dict = current as? [String: Any] else { return nil }
        current = dict[String(part)]
    }
    return current
}

/// Prints a gate line at once (stdout may be a pipe).
func emit(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
