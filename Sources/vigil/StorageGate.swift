import Foundation

/// `storage`: events sent through the native, Splunk HEC and Elasticsearch bulk endpoints come
/// back through search with their fields intact, exactly once.
enum StorageGate {
    static func run(_ context: GateContext) async throws {
        let (tenant, key) = try await context.createTenant(prefix: "gate-storage")
        let nonce = "n" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(12).lowercased()
        let now = Date()
        let base = Int64(now.timeIntervalSince1970 * 1000) - 60_000
        func iso(_ millis: Int64) -> String {
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            return formatter.string(from: Date(timeIntervalSince1970: Double(millis) / 1000))
        }
        let client = context.client

        // Native NDJSON.
        var lines: [String] = []
        for i in 1...3 {
            let event: [String: Any] = [
                "@timestamp": iso(base + Int64(i)), "message": "native \(nonce) event \(i)", "event_id": "\(nonce)-native-\(i)",
                "host": ["name": "web-\(i)"], "source.ip": "10.0.0.\(i)", "gate": ["count": 42, "flag": true, "tags": ["a", "b"]],
            ]
            lines.append(String(decoding: try JSONSerialization.data(withJSONObject: event, options: [.sortedKeys]), as: UTF8.self))
        }
        let native = Data((lines.joined(separator: "\n") + "\n").utf8)
        var reply = try await client.send("POST", "/api/v1/ingest", headers: ["Authorization": "Bearer \(key)", "Content-Type": "application/x-ndjson"], body: native)
        try gateExpect(reply.status == 200, "native ingest answered HTTP \(reply.status): \(reply.text)")
        try gateExpect((reply.json as? [String: Any])?["accepted"] as? Int == 3, "native ingest did not accept 3 events: \(reply.text)")

        // Splunk HEC: an event with fields, an object event, and a raw line.
        let hecEvents = [
            ["time": Double(base + 10) / 1000, "host": "fw-1", "source": "/var/log/fw.log", "sourcetype": "fw:traffic",
             "event": "hec \(nonce) string event", "fields": ["site": "paris"]] as [String: Any],
            ["time": Double(base + 11) / 1000, "host": "dc-1", "event": ["message": "hec \(nonce) object event", "user": ["name": "alice"]]],
        ]
        let hecBody = Data(try hecEvents.map { String(decoding: try JSONSerialization.data(withJSONObject: $0), as: UTF8.self) }.joined().utf8)
        reply = try await client.send("POST", "/services/collector/event", headers: ["Authorization": "Splunk \(key)"], body: hecBody)
        try gateExpect(reply.status == 200 && (reply.json as? [String: Any])?["code"] as? Int == 0, "HEC event answered HTTP \(reply.status): \(reply.text)")
        reply = try await client.send("POST", "/services/collector/raw?host=raw-1&sourcetype=raw:test", headers: ["Authorization": "Splunk \(key)"],
                                      body: Data("hec \(nonce) raw line\n".utf8))
        try gateExpect(reply.status == 200, "HEC raw answered HTTP \(reply.status): \(reply.text)")

        // Elasticsearch bulk.
        let bulkLines = [
            #"{"create":{"_index":"logs-gate","_id":"\#(nonce)-bulk-1"}}"#,
            #"{"@timestamp":"\#(iso(base + 20))","message":"bulk \#(nonce) one","host":{"name":"beat-1"},"event":{"dataset":"gate.bulk"}}"#,
            #"{"index":{"_id":"\#(nonce)-bulk-2"}}"#,
            #"{"@timestamp":"\#(iso(base + 21))","message":"bulk \#(nonce) two","destination":{"port":443}}"#,
        ]
        reply = try await client.send("POST", "/logs-gate/_bulk", headers: ["Authorization": "Bearer \(key)", "Content-Type": "application/x-ndjson"],
                                      body: Data((bulkLines.joined(separator: "\n") + "\n").utf8))
        let bulk = reply.json as? [String: Any]
        try gateExpect(reply.status == 200 && bulk?["errors"] as? Bool == false, "bulk answered HTTP \(reply.status): \(reply.text)")

        let from = iso(base - 60_000), to = iso(base + 120_000)
        let result = try await context.waitForTotal(8, query: nonce, key: key, from: from, to: to)
        let events = result["events"] as? [[String: Any]] ?? []
        func event(_ message: String) throws -> [String: Any] {
            guard let found = events.first(where: { ($0["message"] as? String) == message }) else { throw GateFailure("event '\(message)' not found") }
            return found
        }
        let n2 = try event("native \(nonce) event 2")
        try gateExpect(lookup(n2, "host.name") as? String == "web-2", "native host.name lost")
        try gateExpect(lookup(n2, "source.ip") as? String == "10.0.0.2", "native dotted source.ip not nested")
        try gateExpect(lookup(n2, "gate.count") as? Int == 42 && lookup(n2, "gate.flag") as? Bool == true, "native typed fields changed")
        try gateExpect(lookup(n2, "gate.tags") as? [String] == ["a", "b"], "native array field changed")
        try gateExpect(n2["@timestamp"] as? String == iso(base + 2), "native @timestamp changed: \(n2["@timestamp"] ?? "nil")")
        try gateExpect(lookup(n2, "vigil.event_id") as? String == "\(nonce)-native-2", "native event_id not kept")
        let h1 = try event("hec \(nonce) string event")
        try gateExpect(lookup(h1, "host.name") as? String == "fw-1" && lookup(h1, "splunk.sourcetype") as? String == "fw:traffic", "HEC metadata lost")
        try gateExpect(lookup(h1, "site") as? String == "paris", "HEC indexed fields lost")
        try gateExpect(h1["@timestamp"] as? String == iso(base + 10), "HEC time not used as @timestamp")
        let h2 = try event("hec \(nonce) object event")
        try gateExpect(lookup(h2, "user.name") as? String == "alice", "HEC object event fields lost")
        let raw = try event("hec \(nonce) raw line")
        try gateExpect(lookup(raw, "host.name") as? String == "raw-1", "HEC raw host lost")
        let b1 = try event("bulk \(nonce) one")
        try gateExpect(lookup(b1, "event.dataset") as? String == "gate.bulk" && lookup(b1, "vigil.event_id") as? String == "\(nonce)-bulk-1", "bulk fields lost")
        let b2 = try event("bulk \(nonce) two")
        try gateExpect(lookup(b2, "destination.port") as? Int == 443, "bulk number field changed")

        // Field search on a normalized column and on a JSON field.
        reply = try await client.json("POST", "/api/v1/search", token: key, ["query": "host.name:web-3", "from": from, "to": to])
        try gateExpect((reply.json as? [String: Any])?["total"] as? Int == 1, "field search host.name:web-3 did not find exactly 1 event: \(reply.text)")
        reply = try await client.json("POST", "/api/v1/search", token: key, ["query": "gate.count:42", "from": from, "to": to])
        try gateExpect((reply.json as? [String: Any])?["total"] as? Int == 3, "field search gate.count:42 did not find 3 events: \(reply.text)")

        // The same native batch again is all duplicates and stores nothing new.
        reply = try await client.send("POST", "/api/v1/ingest", headers: ["Authorization": "Bearer \(key)", "Content-Type": "application/x-ndjson"], body: native)
        try gateExpect((reply.json as? [String: Any])?["duplicates"] as? Int == 3, "a re-sent batch was not counted as 3 duplicates: \(reply.text)")
        _ = try await context.waitForTotal(8, query: nonce, key: key, from: from, to: to)
    
        try await retention(context, tenant: tenant, key: key, nonce: nonce)
    }

    /// A partition past the tenant's policy is dropped; one inside it is kept.
    static func retention(_ context: GateContext, tenant: String, key: String, nonce: String) async throws {
        let client = context.client
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let old = now - 3 * 86_400_000
        let body = "{\"@timestamp\":\(old),\"message\":\"retention \(nonce) old\"}\n{\"@timestamp\":\(now - 1000),\"message\":\"retention \(nonce) new\"}\n"
        var reply = try await client.send("POST", "/api/v1/ingest", headers: ["Authorization": "Bearer \(key)"], body: Data(body.utf8))
        try gateExpect((reply.json as? [String: Any])?["accepted"] as? Int == 2, "retention events not accepted: \(reply.text)")
        let formatter = ISO8601DateFormatter()
        let from = formatter.string(from: Date(timeIntervalSince1970: Double(now - 5 * 86_400_000) / 1000))
        let to = formatter.string(from: Date(timeIntervalSince1970: Double(now + 60_000) / 1000))
        _ = try await context.waitForTotal(2, query: "retention \(nonce)", key: key, from: from, to: to)
        reply = try await client.json("PUT", "/api/v1/tenants/\(tenant)/retention", token: context.adminToken, ["days": 2])
        try gateExpect(reply.status == 200, "setting retention answered HTTP \(reply.status): \(reply.text)")
        reply = try await client.json("POST", "/api/v1/retention/run", token: context.adminToken, [String: String]())
        let dropped = (reply.json as? [String: Any])?["dropped_partitions"] as? [[String: Any]] ?? []
        try gateExpect(dropped.contains { $0["tenant"] as? String == tenant }, "retention dropped no partition of the gate tenant: \(reply.text)")
        let left = try await context.waitForTotal(1, query: "retention \(nonce)", key: key, from: from, to: to)
        let messages = (left["events"] as? [[String: Any]] ?? []).compactMap { $0["message"] as? String }
        try gateExpect(messages == ["retention \(nonce) new"], "after retention: \(messages)")
    }
}
