import Foundation
import Logging
import Testing
import VigilCore
import VigilQuery
import VigilSigma
import VigilStorage
import VigilStorageSQLite
import VigilThreatIntel
@testable import VigilIntake
@testable import VigilSyslog
@testable import VigilParsing

/// PAN-OS TRAFFIC lines reach admission as flat fields (`FlatFields`) and are stored from them
/// without a nested document: what is stored must be the event the document path stores
/// (member order aside, where a field is missing).
///
/// Serialized, and yielding every hundred lines: its cases are seconds of work each, and run
/// side by side, or without a pause, they held the machine's two test threads long enough for
/// other suites' searches to reach their time budget.
@Suite(.serialized)
struct FlatAdmissionTests {
    let now: EpochMillis = 1_795_514_400_000
    let tenant = TenantName("acme")!
    let peer = "192.0.2.7"

    /// A TRAFFIC line with each column drawn from values that exercise the mapping: addresses
    /// (IPv4, IPv6, invalid, empty, NAT `0.0.0.0`), placeholders, capitals, numbers with
    /// spaces or signs, escapes, and headers and bodies the flat path must leave alone.
    static func line(_ g: inout SplitMix64) -> String {
        func pick(_ values: [String]) -> String { values.randomElement(using: &g)! }
        let stamp = pick(["2026/11/24 09:58:00", "2026/11/24 10:00:00", "bad", ""])
        var columns = [String](repeating: "", count: 47 + Int.random(in: 0...20, using: &g))
        for i in columns.indices { columns[i] = pick(["0", "x", "", "7"]) }
        columns[0] = pick(["1", "12"])
        columns[1] = pick(["2026/11/24 09:59:00", ""])
        columns[2] = pick(["012345678901", "-", ""])
        columns[3] = "TRAFFIC"
        columns[4] = pick(["end", "start", "Drop", "deny", "other", "", "N/A"])
        columns[6] = stamp
        columns[7] = pick(["10.1.2.3", "203.0.113.9", "2001:db8::1", "999.1.1.1", "", "n/a"])
        columns[8] = pick(["10.1.2.3", "198.51.100.4", "fe80::1%eth0", "host"])
        columns[9] = pick(["0.0.0.0", "192.0.2.1", "10.1.2.3", "bad"])
        columns[10] = pick(["0.0.0.0", "192.0.2.2"])
        columns[11] = pick(["allow-web", "rule \\ with \\\\ backslashes", "tab\there", "-"])
        columns[12] = pick(["", "alice", "N/A", "corp\\bob"])
        columns[13] = pick(["", "carol"])
        columns[14] = pick(["ssl", "web-browsing", ""])
        for i in [15, 16, 17, 18, 19, 20, 22, 37, 39, 40, 46] { columns[i] = pick(["v\(i)", "", "-", "Mixed Case"]) }
        for i in [23, 24, 25, 26, 27, 31, 32, 33, 34, 36, 44, 45] { columns[i] = pick(["0", "443", " 12 ", "+5", "-3", "x1", "", "99999999999999999999"]) }
        columns[29] = pick(["tcp", "UDP", "icmp", "-", ""])
        columns[30] = pick(["allow", "deny", "Reset-Both", "", "alert", "Continue"])
        let body = columns.joined(separator: ",")
        switch Int.random(in: 0..<10, using: &g) {
        case 0: return "<14>Nov 24 10:00:00 - \(body)"                    // placeholder host: not flat
        case 1: return "<14>Nov 24 10:00:00 pa-fw-1 \(body.replacingOccurrences(of: "allow-web", with: "\"allow,web\""))"  // quoted: not flat
        case 2: return "<14>1 2026-11-24T10:00:00Z pa-fw-1 - - - - \(body)"  // RFC 5424: not flat
        case 3: return "<14>Nov 24 10:00:00 pa-fw-1 \(body)\r\n"
        case 4: return "<14>Nov 24 10:00:00 pa-fw-1 \(body),CEF:0|x"          // not flat
        default: return "<14>Nov 24 10:00:00 pa-fw-\(Int.random(in: 1...3, using: &g)) \(body)"
        }
    }

    /// An sshd line: logins the flat path takes (`Accepted`, `Failed`) with users, addresses,
    /// ports and signatures that exercise the mapping, and lines it must leave alone.
    static func sshdLine(_ g: inout SplitMix64) -> String {
        func pick(_ values: [String]) -> String { values.randomElement(using: &g)! }
        let verb = pick(["Accepted", "Failed", "Failed", "Accepted", "Invalid user", "Disconnected from"])
        let method = pick(["password", "publickey", "keyboard-interactive/pam", "none"])
        let invalid = pick(["invalid user ", ""])
        let user = pick(["root", "admin7", "N/A", "-", "a\\b", "x\"y"])
        let ip = pick(["203.0.113.9", "10.1.2.3", "2001:db8::5", "bad", ""])
        let port = pick(["22", "4242", "x", "", "99999999999999999999"])
        let tail = pick([" ssh2", " ssh2: RSA SHA256:abc", "", " ssh2: ED25519 SHA256:x\ty"])
        let body = "\(verb)\(pick([" ", "  "]))\(method) for \(invalid)\(user) from \(ip) port \(port)\(tail)"
        let pid = pick(["[\(Int.random(in: 1...65535, using: &g))]", "[-]", "[x1]"])
        switch Int.random(in: 0..<10, using: &g) {
        case 0: return "<38>Nov 24 10:00:00 web-1 sshd\(pid): \(body)\r\n"
        case 1: return "<38>1 2026-11-24T10:00:00Z web-1 sshd 42 - - \(body)"  // RFC 5424: not flat
        case 2: return "<38>Nov 24 10:00:00 web-1 sudo[1]: \(body)"
        case 3: return "<38>Nov 24 10:00:00 - sshd\(pid): \(body)"  // placeholder host: not flat
        case 4: return "<38>Nov 24 10:00:00 web-1 sshd\(pid): \(body) é"  // not ASCII
        default: return "<38>Nov 24 10:00:00 web-\(Int.random(in: 1...3, using: &g)) sshd\(pid): \(body)"
        }
    }

    /// A FortiGate key=value line: traffic logs the flat path takes, with keys in any order,
    /// repeated, quoted, escaped, placeholders and keys the pack does not map, and lines it must
    /// leave alone (other types, keys with dots, CEF, RFC 5424, a tag, non-ASCII).
    static func fortigateLine(_ g: inout SplitMix64) -> String {
        func pick(_ values: [String]) -> String { values.randomElement(using: &g)! }
        func value(_ values: [String]) -> String {
            let text = pick(values)
            switch Int.random(in: 0..<4, using: &g) {
            case 0: return "\"\(text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\""))\""
            case 1 where !text.contains(" ") && !text.contains("\"") && !text.isEmpty: return text
            default: return "\"\(text)\""  // unescaped: a quote inside ends the value early
            }
        }
        var pairs: [String] = []
        if Int.random(in: 0..<10, using: &g) > 0 { pairs.append("date=\(pick(["2026-11-24", "2026-11-23", "24/11/2026", "-"]))") }
        if Int.random(in: 0..<10, using: &g) > 0 { pairs.append("time=\(pick(["09:58:00", "10:00:00", "25:00:00"]))") }
        if Bool.random(using: &g) { pairs.append("tz=\(value(["+0100", "-0700", "UTC", "+01:00"]))") }
        if Bool.random(using: &g) { pairs.append("eventtime=\(pick(["1795514300000000000", "1795514300000000", "1795514300", "x"]))") }
        pairs.append("devname=\(value(["fgt-1", "FG 2", "-", "N/A", "a\\b"]))")
        if Int.random(in: 0..<20, using: &g) > 0 { pairs.append("devid=\(value(["FGT60E", "FG100", "-"]))") }
        pairs.append("logid=\(value(["0000000013", "0101037141", "0100044547", ""]))")
        pairs.append("type=\(Int.random(in: 0..<12, using: &g) > 0 ? value(["traffic"]) : value(["utm", "event", "Traffic"]))")
        pairs.append("subtype=\(value(["forward", "local", "-"]))")
        for key in ["level", "vd", "srcip", "srcport", "srcintf", "dstip", "dstport", "dstintf", "remip", "locip", "remport", "locport", "srcmac", "dstmac",
                    "sessionid", "proto", "action", "policyid", "service", "sentbyte", "rcvdbyte", "sentpkt", "rcvdpkt", "duration", "user", "msg",
                    "logdesc", "app", "crscore", "x:y", "status", "eapuser", "Mixed_Key"] where Bool.random(using: &g) {
            let values: [String] = switch key {
            case "srcip", "dstip", "remip", "locip": ["10.1.2.3", "203.0.113.9", "2001:db8::1", "999.1.1.1", "", "-", "host"]
            case "srcport", "dstport", "remport", "locport", "sentbyte", "rcvdbyte", "sentpkt", "rcvdpkt", "duration", "sessionid":
                ["443", "0", " 12 ", "+5", "-3", "x1", "", "99999999999999999999"]
            case "proto": ["6", "17", "1", "58", "TCP", "-", "", "N/A"]
            case "action": ["accept", "deny", "Deny", "start", "server-rst", "close", "-", "timeout"]
            case "service": ["HTTPS", "DNS", "N/A", "-", "tcp/8080"]
            case "user", "eapuser": ["alice", "corp\\bob", "-", "x\"y"]
            case "msg", "logdesc": ["a \"quoted\" \\ message", "tab\there", "Login ok", "-"]
            default: ["1", "port1", "notice", "Mixed Case", "-", "", "N/A"]
            }
            pairs.append("\(key)=\(value(values))")
        }
        if Int.random(in: 0..<8, using: &g) == 0 { pairs.append("srcip=\(pick(["10.9.9.9", "bad"]))") }  // a repeated key: the last wins
        if Int.random(in: 0..<8, using: &g) == 0 { pairs.append("vd=\(pick(["root", "-"]))") }
        if Int.random(in: 0..<6, using: &g) == 0 { pairs.append(pick(["junk", "=x", "k=\"unclosed value"])) }
        pairs.shuffle(using: &g)
        let separators = [" ", " ", " ", ",", "\t", "; "]
        var body = ""
        for (i, pair) in pairs.enumerated() { body += (i == 0 ? "" : separators.randomElement(using: &g)!) + pair }
        switch Int.random(in: 0..<14, using: &g) {
        case 0: return "<189>Nov 24 10:00:00 fgt-1 \(body)"
        case 1: return "<189>Nov 24 10:00:00 - \(body)"                       // placeholder host
        case 2: return "<189>1 2026-11-24T10:00:00Z fgt-1 - - - - \(body)"   // RFC 5424: not flat
        case 3: return "<189>\(body)\r\n"
        case 4: return "<189>\(body) a.b=1"                                   // a key the pack nests: not flat
        case 5: return "<189>\(body) CEF:0|x"                                 // not flat
        case 6: return "<189>Nov 24 10:00:00 fgt-1 fgt[1]: \(body)"          // a tag: not flat
        case 7: return "<189>\(body) é"                                       // not ASCII
        case 8: return "\(body)"                                              // no priority: not flat
        default: return "<189>\(body)"
        }
    }

    /// A Cisco ASA connection message (302013–302016): endpoints in every form the pack reads
    /// (`iface:ip/port`, `ip/port`, `iface:ip`, `iface/ip(port)`, IPv6, bad), directions, words
    /// missing or doubled, and lines the flat path must leave alone.
    static func asaLine(_ g: inout SplitMix64) -> String {
        func pick(_ values: [String]) -> String { values.randomElement(using: &g)! }
        func endpoint() -> String {
            let ip = pick(["203.0.113.9", "10.1.2.3", "2001:db8::1", "999.1.1.1", "host"])
            let port = pick(["443", "51000", "x", "", " 12"])
            return pick(["outside:\(ip)/\(port)", "\(ip)/\(port)", "inside:\(ip)", "dmz/\(ip)(\(port))", ":\(ip)/\(port)", "-", "\(ip)/\(port),"])
        }
        let id = pick(["302013", "302014", "302015", "302016", "302013", "302020"])
        let built = id == "302013" || id == "302015" || id == "302020"
        let verb = built ? "Built \(pick(["outbound ", "inbound ", ""]))\(pick(["TCP", "UDP"]))" : "Teardown \(pick(["TCP", "UDP"]))"
        var text = "\(verb) connection \(pick(["77", "-", "1234567"])) for \(endpoint()) (\(endpoint())) \(pick(["to", "to", "towards"])) \(endpoint())"
        if Bool.random(using: &g) { text += " (\(endpoint()))" }
        if !built { text += " duration \(pick(["0:00:30", "-", ""])) bytes \(pick(["1234", "x", "-", "99999999999999999999"]))\(pick(["", " TCP FINs"]))" }
        text = text.replacingOccurrences(of: " ", with: pick([" ", " ", "  "]))
        let mnemonic = "%ASA-\(pick(["6", "6", "9", "x", ""]))-\(id):\(pick([" ", "  ", "\t", ""]))\(text)\(pick(["", " ", "\t"]))"
        switch Int.random(in: 0..<12, using: &g) {
        case 0: return "<166>\(mnemonic)"
        case 1: return "<166>Nov 24 10:00:00 - : \(mnemonic)"                       // placeholder host
        case 2: return "<166>1 2026-11-24T10:00:00Z asa-1 - - - - \(mnemonic)"     // RFC 5424: not flat
        case 3: return "<166>Nov 24 10:00:00 asa-1 : \(mnemonic)\r\n"
        case 4: return "<166>Nov 24 10:00:00 asa-1 : %ASA-4-302013: message repeated 2 times: [ \(text)]"  // not flat
        case 5: return "<166>Nov 24 10:00:00 asa-1 asa[1]: \(mnemonic)"            // a tag: not flat
        case 6: return "<166>Nov 24 10:00:00 asa-1 : \(mnemonic) é"                // not ASCII
        case 7: return "<166>Nov 24 2026 10:00:00 asa-1 %FTD-6-302013: \(text) %ASA-6-302013: x"
        case 8: return "<166>Nov 24 10:00:00 asa-1 \(mnemonic)"
        default: return "<166>Nov 24 10:00:00 asa-\(Int.random(in: 1...3, using: &g)) : \(mnemonic)"
        }
    }

    /// An F5 LTM line: iRule logs and coded messages the flat path takes, under the pack's tags
    /// with and without a process id, and lines it must leave alone (APM, pool status, pairs, a
    /// level word before the tag, CEF, ASM key=value, other tags).
    static func f5Line(_ g: inout SplitMix64) -> String {
        func pick(_ values: [String]) -> String { values.randomElement(using: &g)! }
        let tag = pick(["tmm", "tmm1", "mcpd", "bigd", "httpd", "tmm", "apmd", "nginx"])
        let pid = pick(["[1234]", "", "[-]", "[x]"])
        let message = pick([
            "Rule /Common/log_http <HTTP_REQUEST>: 10.1.2.3:5555 -> 203.0.113.9:443 GET /app/\(Int.random(in: 0...999, using: &g)) HTTP/1.1",
            "01010028:3: No members available for pool /Common/web",
            "01070417:5: \"quoted\" \\ and\ttab",
            "ABCDEF01:x: severity is no number",
            "abcdef01:4:   spaces after the severity",
            "0107072:5: seven hex digits",
            "deadbeef",
            "deadbeef:",
            "-",
            "01070727:5: Pool /Common/p member /Common/10.0.0.1:80 monitor status up.",  // not flat
            "01490500:5: /Common/ap:Common:abc: New session from client IP 10.0.0.1",    // not flat
            "client_ip=10.1.2.3 server_ip=10.0.0.2 method=GET uri=/x status=200",        // not flat
            "Rule /Common/x <HTTP_REQUEST>: user=alice",                                  // not flat
            "unit_hostname=\"bigip\",management_ip_address=\"10.0.0.1\"",               // not flat
            "CEF:0|F5|ASM|13|x|y|5|src=1.2.3.4",                                          // not flat
        ])
        switch Int.random(in: 0..<12, using: &g) {
        case 0: return "<134>\(tag)\(pid): \(message)"
        case 1: return "<134>Nov 24 10:00:00 - \(tag)\(pid): \(message)"                // placeholder host
        case 2: return "<134>1 2026-11-24T10:00:00Z bigip-1 \(tag) 1 - - \(message)"     // RFC 5424: not flat
        case 3: return "<134>Nov 24 10:00:00 bigip-1 \(tag)\(pid): \(message)\r\n"
        case 4: return "<134>Nov 24 10:00:00 bigip-1 notice \(tag)\(pid): \(message)"  // a level word: the pack's way
        case 5: return "<134>Nov 24 10:00:00 bigip-1 \(tag)\(pid): \(message) é"        // not ASCII
        case 6: return "<134>Nov 24 10:00:00 bigip-1 \(tag)\(pid): warning \(message)"
        case 7: return "<134>Nov 24 10:00:00 bigip-1 \(tag)\(pid): \(message)\rmore"    // a CR inside: not flat
        default: return "<134>Nov 24 10:00:00 bigip-\(Int.random(in: 1...3, using: &g)) \(tag)\(pid): \(message)"
        }
    }

    /// Any syslog line: mostly ones no pack takes (stored as generic `syslog`, flat), with
    /// every header form the parser reads, and ones a pack takes (the document way).
    static func genericLine(_ g: inout SplitMix64) -> String {
        func pick(_ values: [String]) -> String { values.randomElement(using: &g)! }
        let body = pick([
            "generic message number \(Int.random(in: 0...999, using: &g)) user=u7", "a \"quoted\" \\ text\twith tab", "-", "",
            "{\"a\": 1}", "{not json", "é non-ASCII text", "k1=v1 k2=v2 k3=v3", "CEF:0|Acme|App|1|100|Thing|5|src=10.0.0.1",
            "Accepted password for root from 10.0.0.1 port 22 ssh2", "%ASA-6-106100: access-list x denied",
        ])
        let tag = pick(["app[42]: ", "app: ", "cron[-]: ", "x[1a]: ", "", "- ", "tmm[1]: "])
        switch Int.random(in: 0..<10, using: &g) {
        case 0: return "<13>Nov 24 10:00:00 host-\(Int.random(in: 1...9, using: &g)) \(tag)\(body)\r\n"
        case 1: return "<13>Nov 24 10:00:00 - \(tag)\(body)"
        case 2: return "<13>1 2026-11-24T10:00:00Z host-1 app \(pick(["42", "-"])) \(pick(["ID7", "-"])) - \(body)"
        case 3: return "<13>1 2026-11-24T10:00:00Z host-1 app 42 ID7 [ex@1 a=\"b\"] \(body)"  // structured data: the document way
        case 4: return "<x>\(tag)\(body)"
        case 5: return "<13>\(tag)\(body)"
        case 6: return "<13>2026-11-24T10:00:00Z host-2 \(tag)\(body)"
        case 7: return "<999>Nov 24 10:00:00 host-3 \(tag)\(body)"
        default: return "<13>Nov 24 10:00:00 host-\(Int.random(in: 1...9, using: &g)) \(tag)\(body)"
        }
    }

    /// A generated line of one of the kinds the flat paths take.
    static func line(kind: String, _ g: inout SplitMix64) -> String {
        switch kind {
        case "panos": line(&g)
        case "sshd": sshdLine(&g)
        case "asa": asaLine(&g)
        case "f5": f5Line(&g)
        case "generic": genericLine(&g)
        default: fortigateLine(&g)
        }
    }

    /// The candidate the syslog decoder made before flat fields: the packs' nested document.
    func documentCandidate(_ line: String) -> Candidate {
        var normalized = Normalizer().normalize(line: line, receivedAt: now)
        FieldNesting.set(.string(peer), at: "log.source.address", in: &normalized.fields)
        var candidate = Candidate(object: normalized.fields, timestamp: normalized.timestamp.map { .millis($0) } ?? .absent, raw: Array(line.utf8))
        candidate.normalized = true
        return candidate
    }

    /// A document with every object's members in key order (order aside, the same document).
    static func canonical(_ value: JSONValue) -> JSONValue {
        switch value {
        case .object(let object): .object(JSONObject(object.members.map { ($0.key, canonical($0.value)) }.sorted { $0.0 < $1.0 }))
        case .array(let items): .array(items.map(canonical))
        default: value
        }
    }

    static func canonicalDocument(_ bytes: [UInt8]) -> JSONValue {
        canonical((try? JSONParser.parse(bytes)) ?? .null)
    }

    /// Per-event rules as admission asks them: Sigma rules on firewall and sshd lines, and a
    /// fingerprint of the whole document matched (its canonical JSON), so that any field the
    /// flat path matched differently from the document path shows as a different tag.
    struct FingerprintMatcher: EventMatcher {
        let sigma = SigmaRuleSet([
            try! SigmaRule.parse("""
                title: https out
                id: https-out
                logsource: {category: firewall}
                detection:
                    sel:
                        destination.port: 443
                    condition: sel
                """),
            try! SigmaRule.parse("""
                title: sshd failures
                id: sshd-failures
                logsource: {product: linux, service: sshd}
                detection:
                    sel:
                        message|contains: 'Failed password'
                    condition: sel
                """),
        ])

        static let fingerprintBit: UInt64 = 1 << 63

        func tags(_ fields: JSONObject) -> [UInt64] {
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325
            for byte in JSONWriter.string(FlatAdmissionTests.canonical(.object(fields))).utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
            return sigma.matches(fields).map { UInt64($0) } + [hash | Self.fingerprintBit]
        }
    }

    @Test(arguments: ["panos", "sshd", "fortigate", "asa", "f5", "generic"])
    func flatFieldsAreStoredAsTheDocumentTheyStandFor(kind: String) async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("flat-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let feed = dir.appendingPathComponent("feed.csv")
        try Data("type,value,source,confidence\nip,203.0.113.9,test,high\n".utf8).write(to: feed)
        let feeds = IntelFeeds(paths: [feed.path])
        #expect(feeds.reloadIfChanged())
        let spool = try Spool(configuration: SpoolConfiguration(directory: dir.appendingPathComponent("spool")))
        let store = try SQLiteEventStore(dataDirectory: dir, logger: Logger(label: "test"))
        let intake = IntakeService(queue: spool, store: store, clock: ManualClock(now), limits: IntakeLimits(),
                                   steps: [PackDocumentStep(), IntelStep(feeds: feeds)], logger: Logger(label: "test"))
        var generator = SplitMix64(seed: 42)
        let rules = FingerprintMatcher()
        var flat = 0, storedFlat = 0, enriched = 0, withoutDocument = 0, ruleHits = 0
        for n in 0..<3_000 {
            if n % 100 == 0 { await Task.yield() }
            let line = Self.line(kind: kind, &generator)
            let frame = Array(line.utf8)
            guard case .candidate(var candidate) = NormalizingSyslogDecoder().decode(frame: frame, peer: peer, received: now).item else {
                Issue.record("a syslog line is a candidate: \(line)")
                continue
            }
            var reference = documentCandidate(line)
            if let fields = candidate.flat {
                flat += 1
                #expect(Self.canonical(.object(fields.object())) == Self.canonical(.object(reference.object)), "\(line)")
            } else {
                #expect(candidate.object == reference.object, "\(line)")
            }
            #expect(candidate.timestamp == reference.timestamp, "\(line)")
            do {
                candidate.transportID = "syslog-test-\(n)"
                candidate.idIsServers = true
                reference.transportID = candidate.transportID
                reference.idIsServers = true
                if let fields = candidate.flat, intake.admitFlat(fields, candidate, tenant: tenant, received: now, firstKeptDay: 0, rules: rules) != nil {
                    withoutDocument += 1
                }
                var ordinals: [EventKey: Int] = [:], referenceOrdinals: [EventKey: Int] = [:]
                let admitted = intake.normalize(.candidate(candidate), tenant: tenant, source: "syslog", received: now, firstKeptDay: 0, rules: rules, ordinals: &ordinals)
                let expected = intake.normalize(.candidate(reference), tenant: tenant, source: "syslog", received: now, firstKeptDay: 0, rules: rules, ordinals: &referenceOrdinals)
                switch (admitted, expected) {
                case (.event(let event), .event(let stored)):
                    #expect(event.key == stored.key && event.timestamp == stored.timestamp && event.ingested == stored.ingested)
                    #expect(event.columns == stored.columns, "\(line)")
                    #expect(event.message == stored.message)
                    #expect(event.matched == stored.matched, "\(line)")
                    #expect(stored.matched.last.map { $0 & FingerprintMatcher.fingerprintBit != 0 } == true)
                    if stored.matched.count > 1 { ruleHits += 1 }
                    #expect(Self.canonicalDocument(event.document) == Self.canonicalDocument(stored.document),
                            "\(line)\n\(String(decoding: event.document, as: UTF8.self))\n\(String(decoding: stored.document, as: UTF8.self))")
                    if candidate.flat != nil, !String(decoding: stored.document, as: UTF8.self).contains("ioc_match") { storedFlat += 1 }
                    if String(decoding: stored.document, as: UTF8.self).contains("ioc_match") { enriched += 1 }
                case (.quarantine(let item), .quarantine(let reason)):
                    #expect(item.reason == reason.reason && item.detail == reason.detail)
                default:
                    Issue.record("admitted the same way: \(line)")
                }
            }
        }
        // Half the PAN-OS lines or so, and a third of the others, are ones the flat path takes; a match of the feed goes the document way and is enriched the same.
        let least = kind == "panos" ? 1_000 : 600
        #expect(flat > least)
        #expect(storedFlat > least)
        // Those that intel leaves alone are admitted without their document.
        #expect(withoutDocument > least)
        // F5's LTM messages and generic lines hold no address for the feed to match.
        if kind != "f5" && kind != "generic" {
            #expect(enriched > 100)
            // The Sigma rules match some of them too, flat or not.
            #expect(ruleHits > 50, "\(ruleHits)")
        }
    }

    /// Rules that read flat fields every way a Sigma event can: paths they hold, Sigma names
    /// mapped to them, fields no such event has, a path naming one of their objects, a path
    /// inside an object of the line's keys, the members added to them, and keywords.
    static let flatReadingRules = [
        ("firewall", "DestinationPort: 443\n        SourceIp|startswith: '10.'"),
        ("firewall", "network.transport: udp\n        destination.ip|cidr: '203.0.0.0/16'"),
        ("firewall", "fortinet.firewall.crscore: port1"),
        ("firewall", "fortinet.firewall.app|contains: 'case'"),
        ("firewall", "source: 'x'"),
        ("firewall", "process.command_line|contains: 'x'"),
        ("firewall", "vigil.tenant: acme\n        event.action|contains: 'deny'"),
        ("firewall", "vigil: 'x'"),
        ("firewall", "observer.vendor: Cisco\n        cisco.asa.connection_id|endswith: '1'"),
        ("linux-sshd", "user.name|startswith: 'r'\n        event.outcome: failure"),
        ("linux-sshd", "log.syslog.hostname|endswith: '1'"),
    ]

    /// Made once for all cases.
    static let preparedRuleSet = Result { try flatReadingRuleSet() }

    static func flatReadingRuleSet() throws -> SigmaRuleSet {
        var rules: [SigmaRule] = []
        for (number, (logsource, selection)) in flatReadingRules.enumerated() {
            let source = logsource == "firewall" ? "{category: firewall}" : "{product: linux, service: sshd}"
            rules.append(try SigmaRule.parse("title: r\(number)\nid: r\(number)\nlogsource: \(source)\ndetection:\n    sel:\n        \(selection)\n    condition: sel\n"))
        }
        for (number, keywords) in ["['deny', 'Failed']", "['port1', 'teardown']", "['syslog-1']"].enumerated() {
            for source in ["{category: firewall}", "{product: linux, service: sshd}"] {
                rules.append(try SigmaRule.parse("title: k\(number)\nid: k\(number)-\(source.count)\nlogsource: \(source)\ndetection:\n    keywords: \(keywords)\n    condition: keywords\n"))
            }
        }
        // The corpus's Linux and network rules, where the test data is.
        for sub in ["linux", "network"] {
            let dir = "../shared/testdata/sigma/rules/" + sub
            for path in (FileManager.default.enumerator(atPath: dir)?.compactMap { $0 as? String } ?? []).sorted() where path.hasSuffix(".yml") {
                if let text = try? String(contentsOfFile: dir + "/" + path, encoding: .utf8), let rule = try? SigmaRule.parse(text) { rules.append(rule) }
            }
        }
        return SigmaRuleSet(rules)
    }

    /// The `vigil` members admission adds to flat fields.
    static let vigilMembers = JSONObject([("vigil", .object(JSONObject([("tenant", .string("acme")), ("event_id", .string("syslog-1"))])))])

    /// Generates 3,000 lines of a kind and calls `body` with each one the flat path takes, its
    /// flat fields, and their nested document with `vigilMembers` set in it (as a subscript
    /// sets it, not as the code under test does); returns how many there were.
    func eachFlatLine(kind: String, seed: UInt64, _ body: (String, FlatFields, JSONObject) -> Void) async -> Int {
        var generator = SplitMix64(seed: seed)
        var flat = 0
        for n in 0..<3_000 {
            if n % 100 == 0 { await Task.yield() }
            let line = Self.line(kind: kind, &generator)
            guard case .candidate(let candidate) = NormalizingSyslogDecoder().decode(frame: Array(line.utf8), peer: peer, received: now).item,
                  let fields = candidate.flat else { continue }
            flat += 1
            var document = fields.object()
            document["vigil"] = Self.vigilMembers["vigil"]
            body(line, fields, document)
        }
        return flat
    }

    /// Over `eachFlatLine`: expects `flat`, given each line's fields, to match what `document`
    /// matches on their nested document (both with the `vigil` members); `each` adds checks of
    /// its own per line. Returns the lines, those that matched anything, and every index matched.
    func expectSameMatches(kind: String, seed: UInt64, flat: (FlatFields) -> [Int], document: (JSONObject) -> [Int],
                           each: (String, FlatFields) -> Void = { _, _ in }) async -> (lines: Int, hits: Int, matched: Set<Int>) {
        var hits = 0
        var matched = Set<Int>()
        let lines = await eachFlatLine(kind: kind, seed: seed) { line, fields, nested in
            let found = flat(fields)
            #expect(found == document(nested), "\(line)")
            hits += found.isEmpty ? 0 : 1
            matched.formUnion(found)
            each(line, fields)
        }
        return (lines, hits, matched)
    }

    /// A Sigma event prepared from flat fields matches the rules the event of their nested
    /// document does, with the members admission adds.
    @Test(arguments: ["panos", "sshd", "fortigate", "asa", "f5", "generic"])
    func sigmaRulesMatchFlatFieldsAsTheirDocument(kind: String) async throws {
        let set = try Self.preparedRuleSet.get()
        let replacing = JSONObject([("event", .object(JSONObject([("dataset", .string("cisco.asa"))])))])
        let (flat, hits, hitRules) = await expectSameMatches(
            kind: kind, seed: 7, flat: { set.matches(flat: $0, appending: Self.vigilMembers) }, document: { set.matches($0) }
        ) { line, fields in
            // A member replacing one of the fields' own (here the dataset logsources select on).
            var replaced = fields.object()
            replaced["event"] = replacing["event"]
            #expect(set.matches(flat: fields, appending: replacing) == set.matches(replaced), "\(line)")
        }
        #expect(flat > 600)
        if kind != "f5" && kind != "generic" { #expect(hits > 100 && hitRules.count >= 2, "\(hits) \(hitRules)") }
        // Among them, paths inside an object of the line's keys, and under the added members
        // (a field, and a keyword found only there: the event's id).
        if kind == "fortigate" { #expect(hitRules.isSuperset(of: [2, 3, 6, 15]), "\(hitRules)") }
    }

    /// Native rules' queries read by the store's in-memory predicates: columns, message text,
    /// document paths the flat fields hold or cannot hold, paths inside their values, arrays,
    /// numbers, ranges, CIDR blocks, prefixes, existence and the added `vigil` members.
    static let flatReadingQueries = [
        "event.dataset:panos.traffic AND destination.port:443", "host.name:pa-fw-1 OR host.name:asa-1", "source.ip:10.0.0.0/8",
        "destination.port:[1 TO 1023] AND network.transport:tcp", "user.name:r* AND event.outcome:failure", "event.action:deny OR event.action:accept",
        "observer.vendor:Fortinet AND NOT fortinet.firewall.crscore:port1", "fortinet.firewall.app:*", "_exists_:fortinet.firewall.level",
        "failed password", "teardown AND NOT udp", "built*", "cisco.asa.connection_id>=100", "related.ip:203.0.113.9", "event.category:network",
        "log.syslog.priority:134", "log.syslog.priority<20", "process.name:sshd AND _exists_:source.port", "vigil.tenant:acme AND vigil.event_id:syslog-1",
        "_exists_:vigil", "observer.product:* AND NOT _exists_:process.pid", "event.kind:event", "network.direction:inbound", "message:*",
    ]

    /// Native rules without a threshold match flat fields as the nested document they stand for.
    @Test(arguments: ["panos", "sshd", "fortigate", "asa", "f5", "generic"])
    func nativeRulePredicatesMatchFlatFieldsAsTheirDocument(kind: String) async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("flat-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try SQLiteEventStore(dataDirectory: dir, logger: Logger(label: "test"))
        let parser = QueryParser()
        let predicates = try #require(store.eventPredicates(for: try Self.flatReadingQueries.map { try parser.parse($0) }))
        let (flat, hits, hitQueries) = await expectSameMatches(
            kind: kind, seed: 11, flat: { predicates.matching(flat: $0, appending: Self.vigilMembers) }, document: { predicates.matching($0) })
        #expect(flat > 600)
        // Every line matches the `vigil` queries; each kind some of its own.
        #expect(hits == flat && hitQueries.count >= 4, "\(hits) \(hitQueries.sorted())")
    }

    @Test func flatFieldsHoldingAnIdentityFieldGoTheDocumentWay() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("flat-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let intake = IntakeService(queue: try Spool(configuration: SpoolConfiguration(directory: dir.appendingPathComponent("spool"))),
                                   store: try SQLiteEventStore(dataDirectory: dir, logger: Logger(label: "test")), clock: ManualClock(now),
                                   limits: IntakeLimits(), logger: Logger(label: "test"))
        let schema = try FlatSchema(paths: ["vigil.x", "message"])
        var fields = FlatFields(schema: schema, bytes: Array("hello".utf8))
        fields.set(0, int: 1)
        fields.set(1, text: 0..<5)
        var candidate = Candidate(object: JSONObject(), timestamp: .absent, raw: Array("hello".utf8))
        candidate.flat = fields
        candidate.normalized = true
        candidate.transportID = "syslog-test-1"
        candidate.idIsServers = true
        #expect(intake.admitFlat(fields, candidate, tenant: tenant, received: now, firstKeptDay: 0, rules: nil) == nil)
        var ordinals: [EventKey: Int] = [:]
        guard case .event(let event) = intake.normalize(.candidate(candidate), tenant: tenant, source: "syslog", received: now, firstKeptDay: 0, rules: nil, ordinals: &ordinals) else {
            Issue.record("the event is admitted")
            return
        }
        // As the document path does: the field stays under `vigil`, next to the tenant and the id.
        let document = try JSONParser.parse(event.document)
        #expect(document.value(atPath: "vigil.x") == .int(1))
        #expect(document.value(atPath: "vigil.tenant") == .string("acme"))
        #expect(document.value(atPath: "vigil.event_id") == .string("syslog-test-1"))
        #expect(event.message == "hello")
    }

    @Test func aFrameThatIsNotValidUTF8IsStoredAsItsRepairedText() {
        let frame = Array("<13>Nov 24 10:00:00 host-1 app[7]: bad ".utf8) + [0xFF, 0xC3] + Array(" bytes".utf8)
        guard case .candidate(let candidate) = NormalizingSyslogDecoder().decode(frame: frame, peer: peer, received: now).item,
              let fields = candidate.flat
        else {
            Issue.record("a generic line is a candidate with flat fields")
            return
        }
        let line = String(decoding: frame, as: UTF8.self)
        #expect(fields.object() == documentCandidate(line).object)
        #expect(fields.value(GenericFlatSyslog.at.message) == .string(line))
    }

    @Test func aLineTheFlatPathDoesNotKnowGoesTheDocumentWay() {
        let normalizer = Normalizer()
        for line in [
            "<14>Nov 24 10:00:00 pa-fw-1 1,2026/11/24 10:00:00,0123,THREAT,url,1,2026/11/24 10:00:00,10.0.0.1,1.1.1.1",
            "<14>Nov 24 10:00:00 pa-fw-1 1,2026/11/24 10:00:00,0123,TRAFFIC,end,1",  // too few columns
            "<14>Nov 24 10:00:00 pa-fw-1 1,2026/11/24 10:00:00,0123,TRAFFIC,end,1,\(String(repeating: "é,", count: 50))",  // not ASCII
            "<13>Nov 24 10:00:00 host a line with ,TRAFFIC, in it",
        ] {
            #expect(normalizer.normalizeFlat(frame: Array(line.utf8), line: line, peer: peer, receivedAt: now) == nil, "\(line)")
        }
        // Only when PAN-OS is the first pack (the one the line would meet first).
        let line = "<14>Nov 24 10:00:00 pa-fw-1 1,2026/11/24 10:00:00,0123,TRAFFIC,end,2561,2026/11/24 10:00:00,10.1.2.3,203.0.4.5,0.0.0.0,0.0.0.0,allow-web,,,ssl,vsys1,trust,untrust,ethernet1/2,ethernet1/1,log-fwd,,777,1,40000,443,0,0,0x400000,tcp,allow,5000,3000,2000,20,2026/11/24 10:00:00,10,any,0,777,0x0,10.0.0.0-10.255.255.255,United States,0,10,10,tcp-fin"
        #expect(normalizer.normalizeFlat(frame: Array(line.utf8), line: line, peer: peer, receivedAt: now) != nil)
        #expect(Normalizer(packs: [FortiGatePack(), PANOSPack()]).normalizeFlat(frame: Array(line.utf8), line: line, peer: peer, receivedAt: now) == nil)
    }
}
