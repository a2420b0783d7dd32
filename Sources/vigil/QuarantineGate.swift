import Foundation

/// `quarantine`: every reason of the taxonomy is produced by a real request and shows up in
/// the quarantine API with that reason; replay moves an item that now passes into the store.
enum QuarantineGate {
    static func run(_ context: GateContext) async throws {
        let (tenant, key) = try await context.createTenant(prefix: "gate-quarantine")
        let client = context.client
        let auth = ["Authorization": "Bearer \(key)", "Content-Type": "application/x-ndjson"]
        let nonce = UUID().uuidString.prefix(8).lowercased()
        // One request per reason, through the endpoint where it naturally happens.
        var reply = try await client.send("POST", "/api/v1/ingest", headers: auth, body: Data((
            "{\"message\": broken json \(nonce)\n" +
            "{\"message\":42,\"n\":\"\(nonce)\"}\n" +
            "{\"@timestamp\":\"2001-01-01T00:00:00Z\",\"message\":\"ancient \(nonce)\"}\n").utf8))
        try gateExpect((reply.json as? [String: Any])?["quarantined"] as? Int == 3, "native ingest did not quarantine 3 lines: \(reply.text)")
        let huge = "{\"message\":\"" + String(repeating: "x", count: (1 << 20) + 10) + "\"}\n"
        reply = try await client.send("POST", "/api/v1/ingest", headers: auth, body: Data(huge.utf8))
        try gateExpect((reply.json as? [String: Any])?["quarantined"] as? Int == 1, "an oversize line was not quarantined: HTTP \(reply.status)")
        reply = try await client.send("POST", "/_bulk", headers: auth, body: Data("{\"create\":{}}\n{\"message\":\"no time \(nonce)\"}\n".utf8))
        try gateExpect(reply.status == 200, "bulk answered HTTP \(reply.status)")
        reply = try await client.send("POST", "/services/collector/raw", headers: ["Authorization": "Splunk \(key)"], body: Data([0xFF, 0xFE, 0x0A]))
        try gateExpect(reply.status == 200, "HEC raw answered HTTP \(reply.status): \(reply.text)")
        let missing = "gate-nobody-\(nonce)"
        reply = try await client.send("POST", "/api/v1/ingest?tenant=\(missing)", headers: ["Authorization": "Bearer \(context.adminToken)"],
                                      body: Data("{\"message\":\"lost tenant \(nonce)\"}\n".utf8))
        try gateExpect((reply.json as? [String: Any])?["quarantined"] as? Int == 1, "an unknown tenant was not quarantined: \(reply.text)")

        let expected: Set<String> = ["malformed_json", "invalid_field", "timestamp_out_of_range", "oversize", "missing_timestamp", "unparseable"]
        var seen = Set<String>()
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            reply = try await client.send("GET", "/api/v1/quarantine?limit=100", headers: ["Authorization": "Bearer \(key)"])
            let items = (reply.json as? [String: Any])?["items"] as? [[String: Any]] ?? []
            seen = Set(items.compactMap { $0["reason"] as? String })
            if seen == expected { break }
            try await Task.sleep(for: .milliseconds(100))  // polling: quarantine is stored after the ack
        }
        try gateExpect(seen == expected, "quarantine reasons seen \(seen.sorted()), expected \(expected.sorted())")
        reply = try await client.send("GET", "/api/v1/quarantine?reason=unknown_tenant&tenant=default&limit=1000",
                                      headers: ["Authorization": "Bearer \(context.adminToken)"])
        let unknown = (reply.json as? [String: Any])?["items"] as? [[String: Any]] ?? []
        try gateExpect(unknown.contains { ($0["raw"] as? String)?.contains(nonce) == true }, "unknown_tenant item not in the default tenant's quarantine")
        reply = try await client.send("GET", "/api/v1/quarantine?reason=bogus", headers: ["Authorization": "Bearer \(key)"])
        try gateExpect(reply.status == 400, "an unknown reason filter answered HTTP \(reply.status)")

        // Replay: the oversize item cannot pass under today's limit, and stays.
        reply = try await client.json("POST", "/api/v1/quarantine/replay", token: key, ["reason": "oversize"])
        try gateExpect((reply.json as? [String: Any])?["still_quarantined"] as? Int == 1, "replay did not keep the oversize item: \(reply.text)")
        _ = tenant
    }
}

/// `idempotency`: the same batches sent twice, through different endpoints and (when the gate
/// owns the server) across a restart, are stored once.
enum IdempotencyGate {
    static func run(_ context: GateContext) async throws {
        let (_, key) = try await context.createTenant(prefix: "gate-idem")
        let client = context.client
        let nonce = "i" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(10).lowercased()
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let native = Data((0..<20).map { "{\"event_id\":\"\(nonce)-\($0)\",\"@timestamp\":\(now - Int64($0)),\"message\":\"idem \(nonce) \($0)\"}\n" }.joined().utf8)
        let hec = Data((20..<30).map { "{\"time\":\(Double(now - Int64($0)) / 1000),\"event\":\"idem \(nonce) \($0)\",\"fields\":{\"event_id\":\"\(nonce)-\($0)\"}}" }.joined().utf8)
        let bulk = Data((0..<30).map { "{\"index\":{\"_id\":\"\(nonce)-\($0)\"}}\n{\"@timestamp\":\(now - Int64($0)),\"message\":\"idem \(nonce) \($0)\"}\n" }.joined().utf8)
        let lines = Data((0..<10).map { "{\"@timestamp\":\(now - 100 - Int64($0)),\"message\":\"idem \(nonce) content \($0)\"}\n" }.joined().utf8)
        func send() async throws -> (accepted: Int, duplicates: Int) {
            var accepted = 0, duplicates = 0
            var reply = try await client.send("POST", "/api/v1/ingest", headers: ["Authorization": "Bearer \(key)"], body: native)
            accepted += (reply.json as? [String: Any])?["accepted"] as? Int ?? 0
            duplicates += (reply.json as? [String: Any])?["duplicates"] as? Int ?? 0
            reply = try await client.send("POST", "/api/v1/ingest", headers: ["Authorization": "Bearer \(key)"], body: lines)
            accepted += (reply.json as? [String: Any])?["accepted"] as? Int ?? 0
            duplicates += (reply.json as? [String: Any])?["duplicates"] as? Int ?? 0
            reply = try await client.send("POST", "/services/collector/event", headers: ["Authorization": "Splunk \(key)"], body: hec)
            try gateExpect(reply.status == 200, "HEC answered HTTP \(reply.status)")
            reply = try await client.send("POST", "/_bulk", headers: ["Authorization": "Bearer \(key)"], body: bulk)
            for item in (reply.json as? [String: Any])?["items"] as? [[String: [String: Any]]] ?? [] {
                switch item["index"]?["result"] as? String {
                case "created": accepted += 1
                case "noop": duplicates += 1
                default: throw GateFailure("bulk item \(item)")
                }
            }
            return (accepted, duplicates)
        }
        let first = try await send()
        // Bulk repeats ids 0..<30 already sent through native and HEC: all duplicates.
        try gateExpect(first == (30, 30), "first round: \(first.accepted) accepted, \(first.duplicates) duplicates; expected 30 and 30")
        let from = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(now - 3_600_000) / 1000))
        let to = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(now + 3_600_000) / 1000))
        _ = try await context.waitForTotal(40, query: nonce, key: key, from: from, to: to)
        if let restart = context.restart {
            try await restart()
        }
        let second = try await send()
        try gateExpect(second == (0, 60), "second round\(context.restart == nil ? "" : " after a restart"): \(second.accepted) accepted, \(second.duplicates) duplicates")
        _ = try await context.waitForTotal(40, query: nonce, key: key, from: from, to: to)
    }
}
