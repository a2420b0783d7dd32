import Foundation

/// `watermark`: a rule added through the API alerts exactly once per matching event, late
/// events (old timestamps, new arrival) included, across a restart when the gate owns the
/// server; its coverage is one interval with no gap and a lag of at least the safety lag.
enum WatermarkGate {
    static func run(_ context: GateContext) async throws {
        let (_, key) = try await context.createTenant(prefix: "gate-wm")
        let client = context.client
        let nonce = "wm" + UUID().uuidString.prefix(8).lowercased().replacingOccurrences(of: "-", with: "")
        let rule = """
        id: gate-\(nonce)
        title: watermark gate
        query: '\(nonce) AND event.outcome:failure'
        severity: high
        """
        var reply = try await client.send("POST", "/api/v1/rules", headers: ["Authorization": "Bearer \(key)", "Content-Type": "application/yaml"], body: Data(rule.utf8))
        try gateExpect(reply.status == 201, "adding a rule answered HTTP \(reply.status): \(reply.text)")
        let ruleID = "gate-\(nonce)"

        reply = try await client.send("GET", "/api/v1/rules/\(ruleID)/coverage", headers: ["Authorization": "Bearer \(key)"])
        let lag = ((reply.json as? [String: Any])?["safety_lag_ms"] as? Int) ?? 120_000
        let timeout = Double(lag) / 1000 + 60

        func ingest(_ lines: [String]) async throws {
            let reply = try await client.send("POST", "/api/v1/ingest", headers: ["Authorization": "Bearer \(key)", "Content-Type": "application/x-ndjson"],
                                              body: Data((lines.joined(separator: "\n") + "\n").utf8))
            try gateExpect(reply.status == 200, "ingest answered HTTP \(reply.status)")
        }
        func alerts() async throws -> [[String: Any]] {
            let reply = try await client.send("GET", "/api/v1/alerts?rule_id=\(ruleID)&limit=1000", headers: ["Authorization": "Bearer \(key)"])
            try gateExpect(reply.status == 200, "listing alerts answered HTTP \(reply.status)")
            return ((reply.json as? [String: Any])?["alerts"] as? [[String: Any]]) ?? []
        }
        /// Waits until the watermark passes `time` (so every event received before it is
        /// evaluated), then returns the alerts.
        func settledAlerts(after time: Date) async throws -> [[String: Any]] {
            let deadline = Date().addingTimeInterval(timeout)
            while Date() < deadline {
                let reply = try await client.send("GET", "/api/v1/rules/\(ruleID)/coverage", headers: ["Authorization": "Bearer \(key)"])
                if let object = reply.json as? [String: Any], let watermark = (object["watermark"] as? String).flatMap(parseISO), watermark > time {
                    return try await alerts()
                }
                try await Task.sleep(for: .milliseconds(200))  // polling for the watermark
            }
            throw GateFailure("the rule's watermark did not pass the ingest time within \(Int(timeout)) s")
        }

        var lines = (0..<5).map { #"{"message":"\#(nonce) login failed \#($0)","event.outcome":"failure"}"# }
        lines += (0..<3).map { #"{"message":"\#(nonce) login ok \#($0)","event.outcome":"success"}"# }
        try await ingest(lines)
        var found = try await settledAlerts(after: Date())
        try gateExpect(found.count == 5, "expected 5 alerts, got \(found.count)")

        // A late event: stamped three days ago, arriving now.
        let old = ISO8601DateFormatter().string(from: Date().addingTimeInterval(-3 * 86_400))
        try await ingest([#"{"@timestamp":"\#(old)","message":"\#(nonce) late failure","event.outcome":"failure"}"#])
        found = try await settledAlerts(after: Date())
        try gateExpect(found.count == 6, "the late event was not caught: \(found.count) alerts, expected 6")

        // Re-adding the same rule keeps its watermark: nothing is evaluated twice.
        reply = try await client.send("POST", "/api/v1/rules", headers: ["Authorization": "Bearer \(key)"], body: Data(rule.utf8))
        try gateExpect(reply.status == 200, "re-adding the rule answered HTTP \(reply.status)")
        if let restart = context.restart {
            try await restart()
            try await ingest([#"{"message":"\#(nonce) after restart","event.outcome":"failure"}"#])
            found = try await settledAlerts(after: Date())
            try gateExpect(found.count == 7, "after a restart: \(found.count) alerts, expected 7")
        } else {
            found = try await settledAlerts(after: Date())
            try gateExpect(found.count == 6, "alerts changed without new events: \(found.count)")
        }
        let ids = found.compactMap { ($0["event_ids"] as? [String])?.first }
        try gateExpect(Set(ids).count == ids.count, "an event alerted twice")

        reply = try await client.send("GET", "/api/v1/rules/\(ruleID)/coverage", headers: ["Authorization": "Bearer \(key)"])
        let coverage = reply.json as? [String: Any] ?? [:]
        try gateExpect((coverage["gaps"] as? [Any])?.isEmpty == true, "coverage has gaps: \(coverage["gaps"] ?? "?")")
        try gateExpect((coverage["covered"] as? [Any])?.count == 1, "coverage is not one interval: \(coverage["covered"] ?? "?")")
        try gateExpect(((coverage["lag_ms"] as? Int) ?? 0) >= lag, "lag_ms \(coverage["lag_ms"] ?? "?") is below the safety lag \(lag)")
    }

    static func parseISO(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.date(from: text) ?? ISO8601DateFormatter().date(from: text)
    }
}
