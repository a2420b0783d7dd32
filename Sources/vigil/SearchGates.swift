import Foundation

/// `search_safety`: an adversarial suite over two tenants with known data. Every query runs
/// with tenant A's key (or an admin key naming A): no answer may ever carry an event or a value
/// of tenant B, and every refusal must be a 4xx, never a 5xx.
enum SearchSafetyGate {
    struct Case {
        var label: String
        var body: [String: Any]
        /// nil: 200 or 4xx are both fine; otherwise the status class expected (200 or 400..499).
        var expectRefusal: Bool?
        var token: String? = nil
    }

    static func run(_ context: GateContext) async throws {
        let client = context.client
        let (tenantA, keyA) = try await context.createTenant(prefix: "gate-safe-a")
        let (tenantB, keyB) = try await context.createTenant(prefix: "gate-safe-b")
        let nonce = UUID().uuidString.prefix(8).lowercased()
        let now = Date()
        let from = ISO8601DateFormatter().string(from: now.addingTimeInterval(-3600))
        let to = ISO8601DateFormatter().string(from: now.addingTimeInterval(600))
        // The same shapes in both tenants, so a leak would match; B carries a secret marker.
        func lines(owner: String, marker: String) -> String {
            (0..<30).map { i in
                let object: [String: Any] = [
                    "@timestamp": Int(now.timeIntervalSince1970 * 1000) - i * 1000,
                    "message": "Failed password for root from 10.0.\(i).1 port 22 \(marker) tenant owner \(owner)",
                    "host": ["name": "web-\(i % 3)"], "user": ["name": i % 2 == 0 ? "root" : "admin"],
                    "source": ["ip": "10.0.\(i).1"], "bytes": i * 10, "gate": ["owner": owner, "marker": marker],
                    "tenant": owner, "doc": owner, "key": owner, "id": i,
                ]
                return String(decoding: try! JSONSerialization.data(withJSONObject: object), as: UTF8.self)
            }.joined(separator: "\n") + "\n"
        }
        let secret = "bravo\(nonce)"
        for (key, body) in [(keyA, lines(owner: "A", marker: "alpha\(nonce)")), (keyB, lines(owner: "B", marker: secret))] {
            let reply = try await client.send("POST", "/api/v1/ingest", headers: ["Authorization": "Bearer \(key)"], body: Data(body.utf8))
            try gateExpect((reply.json as? [String: Any])?["accepted"] as? Int == 30, "ingest answered \(reply.status): \(reply.text)")
        }
        _ = try await context.waitForTotal(30, query: "*", key: keyA, from: from, to: to)
        _ = try await context.waitForTotal(30, query: "*", key: keyB, from: from, to: to)

        // A cursor of each tenant, for tampering.
        let pageA = try await client.json("POST", "/api/v1/search", token: keyA, ["query": "*", "from": from, "to": to, "limit": 5])
        let cursorA = (pageA.json as? [String: Any])?["next_cursor"] as? String ?? ""
        let pageB = try await client.json("POST", "/api/v1/search", token: keyB, ["query": "*", "from": from, "to": to, "limit": 5])
        let cursorB = (pageB.json as? [String: Any])?["next_cursor"] as? String ?? ""
        try gateExpect(!cursorA.isEmpty && !cursorB.isEmpty, "searches of 30 events with limit 5 gave no next_cursor")

        func search(_ query: String, _ extra: [String: Any] = [:]) -> [String: Any] {
            var body: [String: Any] = ["query": query, "from": from, "to": to, "limit": 100]
            for (k, v) in extra { body[k] = v }
            return body
        }
        // Alternating AND/OR, so the nesting is real and not flattened away.
        let deep = (0..<20).reduce("root") { inner, i in "(t\(i) \(i % 2 == 0 ? "OR" : "AND") \(inner))" }
        var cases: [Case] = []
        func add(_ label: String, _ body: [String: Any], refused: Bool? = nil, token: String? = nil) {
            cases.append(Case(label: label, body: body, expectRefusal: refused, token: token))
        }
        // Quote and escape tricks.
        for query in ["\"", "\\\"", "\"a\\\" OR 1=1 --\"", "message:\"\\\\\"", "'", "' OR '1'='1", "\"' OR ''='\"", "\\\\", "a\\",
                      "\"unterminated", "host.name:\"x\\\" OR tenant:B\"", "user.name:root\\\" OR \\\"1\\\"=\\\"1", "\"\"", "\"\\\"\\\"\""] {
            add("quote \(query)", search(query))
        }
        // SQL injection attempts.
        for query in ["1; DROP TABLE event; --", "' UNION SELECT doc FROM event --", "host.name:x' OR 1=1 --", "user.name:\"root') OR ('1'='1\"",
                      "source.ip:10.0.0.0/8' --", "bytes>=0 OR 1=1", "*) OR (1=1", "x\" OR \"1\"=\"1", "message:* UNION ALL SELECT 1",
                      ")) OR 1=1 --", "'; ATTACH DATABASE '/tmp/x.db' AS y; --", "json_extract(doc,'$'):x", "1' AND sqlite_version()='3",
                      "user.name:root' AND (SELECT count(*) FROM event) > 0 --", "host.name:*/ OR 1=1 /*", "bytes:[0 TO 1) OR 1=1 --]",
                      "root | stats count() by user.name; DROP TABLE event", "root | sort user.name; SELECT 1", "root | fields doc, key' --"] {
            add("sql \(query)", search(query))
        }
        // Internal column and tenant field names.
        for query in ["doc:B", "key:B", "id:1", "rowid:1", "ts>0", "tenant:B", "_tenant:B", "tenant_id:B", "ingested>0", "event_fts:failed",
                      "sqlite_master:x", "_exists_:doc", "_exists_:tenant", "* | stats count() by tenant", "* | stats count() by doc, key",
                      "* | fields doc, key, tenant", "* | stats dc(gate.owner) by gate.owner", "gate.owner:B", "gate.marker:\(secret)", secret,
                      "\(secret)*", "\"tenant owner B\"", "* | sort tenant desc"] {
            add("internal \(query)", search(query))
        }
        // Unicode look-alikes.
        for query in ["ｔｅｎａｎｔ:B", "ten\u{0430}nt:B", "gate.owner:Ｂ", "host.name\u{200B}:x", "user.name:\"root\u{0000}\"", "\u{202E}B:renwo.etag",
                      "g\u{0430}te.owner:B", "gate.owner:B\u{0301}", "\u{FEFF}gate.owner:B"] {
            add("unicode \(query.unicodeScalars.map { $0.isASCII ? String($0) : "\\u{\(String($0.value, radix: 16))}" }.joined())", search(query))
        }
        // Huge and deeply nested.
        add("10 KB query", search(String(repeating: "root ", count: 2_000)), refused: true)
        add("500 open parens", search(String(repeating: "(", count: 500)), refused: true)
        add("20 nested AND/OR levels", search(deep), refused: true)
        add("40 redundant parens", search(String(repeating: "(", count: 40) + "root" + String(repeating: ")", count: 40)))
        add("200 OR terms", search((0..<200).map { "t\($0)" }.joined(separator: " OR ")), refused: true)
        add("100 NOTs", search(String(repeating: "NOT ", count: 100) + "root"), refused: true)
        add("3 KB phrase", search("\"" + String(repeating: "ab ", count: 1000) + "\""))
        add("1-char wildcard", search("r*"), refused: true)
        // Cursor tampering.
        add("cursor of B with A's key", search("*", ["cursor": cursorB, "limit": 5]), refused: true)
        add("cursor for another query", search("root", ["cursor": cursorA, "limit": 5]), refused: true)
        add("cursor flipped", search("*", ["cursor": String(cursorA.reversed()), "limit": 5]), refused: true)
        add("cursor forged", search("*", ["cursor": Data("0.1.0".utf8).base64EncodedString(), "limit": 5]), refused: true)
        add("cursor huge", search("*", ["cursor": String(repeating: "A", count: 10_000)]), refused: true)
        add("cursor number", search("*", ["cursor": 12345]), refused: true)
        add("cursor object", search("*", ["cursor": ["tenant": tenantB]]), refused: true)
        // Tenant parameters.
        add("tenant B on A's key", search("*", ["tenant": tenantB]), refused: true)
        add("two tenants as a list", search("*", ["tenant": [tenantA, tenantB]]), refused: true)
        add("two tenants joined", search("*", ["tenant": "\(tenantA),\(tenantB)"]), refused: true)
        add("tenant wildcard", search("*", ["tenant": "*"]), refused: true)
        add("tenant object", search("*", ["tenant": ["name": tenantB]]), refused: true)
        add("admin names two tenants", search("*", ["tenant": [tenantA, tenantB]]), refused: true, token: context.adminToken)
        add("admin names a joined pair", search("*", ["tenant": "\(tenantA),\(tenantB)"]), refused: true, token: context.adminToken)
        add("admin names none", search("*"), refused: true, token: context.adminToken)
        add("admin names A", search("*", ["tenant": tenantA]), refused: false, token: context.adminToken)
        add("own tenant named", search("*", ["tenant": tenantA]), refused: false)
        // Time range tricks.
        add("no from", ["query": "*"], refused: true)
        add("range too long", search("*", ["from": "-400d"]), refused: true)
        add("to before from", search("*", ["from": to, "to": from]), refused: true)
        add("absurd relative", search("*", ["from": "-99999999999999d"]), refused: true)
        add("limit too large", search("*", ["limit": 1_000_000]), refused: true)
        add("negative limit", search("*", ["limit": -1]), refused: true)

        /// An event (whole or projected by `| fields`) is A's: its owner, when shown, is A, and
        /// no value anywhere in it is B's.
        func isTenantA(_ event: [String: Any]) -> Bool {
            if let owner = lookup(event, "gate.owner"), owner as? String != "A" { return false }
            func clean(_ value: Any) -> Bool {
                switch value {
                case let text as String: return text != "B" && !text.contains(secret) && !text.contains("owner B")
                case let object as [String: Any]: return object.values.allSatisfy(clean)
                case let array as [Any]: return array.allSatisfy(clean)
                default: return true
                }
            }
            return clean(event)
        }
        var failures: [String] = []
        var answered = 0
        for testCase in cases {
            let reply = try await client.json("POST", "/api/v1/search", token: testCase.token ?? keyA, testCase.body)
            if reply.status >= 500 { failures.append("\(testCase.label): HTTP \(reply.status) \(reply.text.prefix(200))"); continue }
            if reply.text.contains(secret) || reply.text.contains("owner B") || reply.text.contains("\"B\"") {
                failures.append("\(testCase.label): the answer carries tenant B data: \(reply.text.prefix(300))")
                continue
            }
            switch testCase.expectRefusal {
            case true?:
                if !(400..<500).contains(reply.status) { failures.append("\(testCase.label): expected a 4xx, got HTTP \(reply.status)") }
            case false?:
                if reply.status != 200 { failures.append("\(testCase.label): expected 200, got HTTP \(reply.status) \(reply.text.prefix(200))") }
            case nil:
                if reply.status != 200 && !(400..<500).contains(reply.status) { failures.append("\(testCase.label): HTTP \(reply.status)") }
            }
            if reply.status == 200 {
                answered += 1
                let events = (reply.json as? [String: Any])?["events"] as? [[String: Any]] ?? []
                for event in events where !isTenantA(event) {
                    failures.append("\(testCase.label): an event not of tenant A: \(event)")
                }
            } else if let error = (reply.json as? [String: Any])?["error"] as? [String: Any], error["message"] as? String == nil {
                failures.append("\(testCase.label): a refusal without a message: \(reply.text.prefix(200))")
            }
        }
        // Export and tail obey the same tenant rules.
        for path in ["/api/v1/search/export?query=*&from=-1h&tenant=\(tenantB)", "/api/v1/tail?query=*&tenant=\(tenantB)"] {
            let reply = try await client.send("GET", path, headers: ["Authorization": "Bearer \(keyA)"])
            if reply.status != 403 { failures.append("GET \(path) with A's key: expected 403, got \(reply.status)") }
        }
        let export = try await client.send("GET", "/api/v1/search/export?query=*&from=-1h", headers: ["Authorization": "Bearer \(keyA)"])
        let exported = export.text.split(separator: "\n")
        if export.status != 200 || exported.count != 30 || export.text.contains(secret) {
            failures.append("export of A: HTTP \(export.status), \(exported.count) lines (expected 30, none of B)")
        }
        // The suite can fail: plain queries must find A's data, or isolation would be vacuous.
        let all = try await client.json("POST", "/api/v1/search", token: keyA, search("*"))
        if (all.json as? [String: Any])?["total"] as? Int != 30 { failures.append("'*' for A did not find its 30 events: \(all.text.prefix(200))") }
        try gateExpect(cases.count >= 60, "only \(cases.count) adversarial queries")
        try gateExpect(answered > 10, "only \(answered) queries answered 200: the suite proves nothing")
        try gateExpect(failures.isEmpty, "\(failures.count) of \(cases.count) queries failed:\n  " + failures.joined(separator: "\n  "))
    }
}

/// `fts`: free text goes through the token index with its semantics (tokens, not substrings;
/// case and diacritics folded; phrases in order; prefixes), and highlights mark exactly the
/// matched spans, HTML-escaped, on ASCII and non-ASCII text.
enum FTSGate {
    static func run(_ context: GateContext) async throws {
        let client = context.client
        let (_, key) = try await context.createTenant(prefix: "gate-fts")
        let nonce = "n" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(8).lowercased()
        let messages = [
            "Failed password for invalid user admin from 203.0.113.9 \(nonce)",
            "Accepted password for alice from 198.51.100.4 \(nonce)",
            "password failed twice <b>bold</b> & more \(nonce)",
            "Connexion refusée pour l'utilisateur Zoë \(nonce)",
            "Пароль неверный для пользователя root \(nonce)",
            "passwd changed for bob \(nonce)",
        ]
        let body = messages.map { "{\"message\":\(String(decoding: try! JSONSerialization.data(withJSONObject: $0, options: .fragmentsAllowed), as: UTF8.self))}" }
            .joined(separator: "\n") + "\n"
        let reply = try await client.send("POST", "/api/v1/ingest", headers: ["Authorization": "Bearer \(key)"], body: Data(body.utf8))
        try gateExpect((reply.json as? [String: Any])?["accepted"] as? Int == messages.count, "ingest: \(reply.text)")
        _ = try await context.waitForTotal(messages.count, query: nonce, key: key, from: "-1h", to: "now")

        func search(_ query: String) async throws -> [[String: Any]] {
            let reply = try await client.json("POST", "/api/v1/search", token: key, ["query": "\(query) \(nonce)", "from": "-1h", "limit": 100])
            guard reply.status == 200, let events = (reply.json as? [String: Any])?["events"] as? [[String: Any]] else {
                throw GateFailure("'\(query)' answered HTTP \(reply.status): \(reply.text.prefix(200))")
            }
            return events
        }
        func messagesOf(_ events: [[String: Any]]) -> Set<String> { Set(events.compactMap { $0["message"] as? String }) }
        let expectations: [(String, [Int])] = [
            ("password", [0, 1, 2]),
            ("PASSWORD", [0, 1, 2]),
            ("pass", []),  // a token, not a substring
            ("pass*", [0, 1, 2, 5]),
            ("\"failed password\"", [0]),
            ("\"password failed\"", [2]),
            ("failed password", [0, 2]),
            ("refusee zoe", [3]),
            ("ПАРОЛЬ", [4]),
            ("bold", [2]),
            ("b", [2]),
            ("password NOT alice", [0, 2]),
            ("alice OR bob", [1, 5]),
        ]
        for (query, indices) in expectations {
            let found = messagesOf(try await search(query))
            let expected = Set(indices.map { messages[$0] })
            try gateExpect(found == expected, "'\(query)' found \(found.sorted()) instead of \(expected.sorted())")
        }
        // Highlights: offsets in code points cover exactly the matched words.
        let checks: [(String, Int, [String], String)] = [
            ("\"failed password\"", 0, ["Failed password"], "<mark>Failed password</mark> for invalid user admin"),
            ("failed password", 2, ["password", "failed"], "<mark>password</mark> <mark>failed</mark> twice &lt;b&gt;bold&lt;/b&gt; &amp; more"),
            ("refusee zoe", 3, ["refusée", "Zoë"], "Connexion <mark>refusée</mark> pour l&#39;utilisateur <mark>Zoë</mark>"),
            ("пароль root", 4, ["Пароль", "root"], "<mark>Пароль</mark> неверный для пользователя <mark>root</mark>"),
            ("pass*", 5, ["passwd"], "<mark>passwd</mark> changed for bob"),
        ]
        for (query, index, words, snippetStart) in checks {
            let events = try await search(query)
            guard let event = events.first(where: { $0["message"] as? String == messages[index] }) else {
                throw GateFailure("'\(query)' did not find message \(index)")
            }
            guard let highlight = lookup(event, "_highlight.message") as? [String: Any], let offsets = highlight["offsets"] as? [[Int]],
                  let snippet = highlight["snippet"] as? String else {
                throw GateFailure("'\(query)' returned no highlight: \(event)")
            }
            let scalars = Array(messages[index].unicodeScalars)
            let marked = offsets.map { pair in String(String.UnicodeScalarView(scalars[pair[0]..<pair[1]])) }
            // The nonce is also a query term: drop its span.
            try gateExpect(marked.filter { $0 != nonce } == words, "'\(query)' highlighted \(marked) instead of \(words)")
            try gateExpect(snippet.hasPrefix(snippetStart), "'\(query)' snippet \(snippet) does not start with \(snippetStart)")
        }
    }
}
