import Foundation
import VigilCore

/// F5 BIG-IP: LTM (pool/monitor/request logs with an 8-hex message code), ASM/Advanced WAF
/// and AFM (`key="value",...`, CSV with the same leading keys, or CEF), and APM access.
///
/// Datasets `f5.bigip.ltm`, `f5.bigip.asm`, `f5.bigip.afm`, `f5.bigip.apm`; vendor fields under
/// `f5.bigip.*`.
public struct F5BigIPPack: ProtocolPack {
    public let name = "f5.bigip"
    public init() {}

    static let tags: Set<String> = ["tmm", "tmm1", "tmm2", "tmm3", "mcpd", "apmd", "bigd", "asm", "afm", "httpd", "tmsh", "sod", "alertd"]
    static let levels: Set<String> = ["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"]

    public func normalize(_ input: PackInput) -> PackResult? {
        guard input.document == nil else { return nil }
        let body = input.body
        if body.containsBytes("CEF:"), let cef = CEFRecord.parse(input.body), cef.vendor == "F5" {
            var b = cef.ecs()
            setObserver(&b, product: cef.product)
            let module = cef.product.lowercased().containsBytes("afm") || cef.product.lowercased().containsBytes("firewall") ? "afm" : "asm"
            b.set("event.category", strings: ["network", module == "asm" ? "web" : "network"].uniqued)
            return PackResult(dataset: "f5.bigip.\(module)", fields: b.object, timestamp: cef.timestamp(), parseFailure: !cef.complete)
        }
        if body.containsBytes("unit_hostname=") || body.containsBytes("management_ip_address=") || body.hasPrefix("ASM:") {
            return keyValue(body)
        }
        // `notice mcpd[1234]: 01070727:5: ...` (the level word sits before the tag) or a parsed tag.
        var rest = Substring(body)
        var tag = input.syslog.appName
        // The first word: up to the first space, found by byte (a leading space takes the
        // general path, which skips it). Levels are at most seven ASCII letters.
        let first = body.utf8.first == 0x20 ? rest.split(separator: " ", maxSplits: 1).first : rest[..<(rest.firstIndex(ofByte: 0x20) ?? rest.endIndex)]
        if let first, first.utf8.count <= 7, Self.levels.contains(String(first)) {
            rest = rest.dropFirst(first.count).drop(while: { $0 == " " })
            if let colon = rest.firstIndex(of: ":") {
                let t = rest[..<colon]
                tag = String(t.prefix(while: { $0 != "[" }))
                rest = rest[rest.index(after: colon)...].drop(while: { $0 == " " })
            }
        }
        guard let tag, Self.tags.contains(tag) else { return nil }
        return module(tag: tag, text: String(rest))
    }

    private func setObserver(_ b: inout ECSBuilder, product: String) {
        b.set("observer.vendor", string: "F5")
        b.set("observer.product", string: "BIG-IP")
        b.set("observer.type", string: "loadbalancer")
        b.set("f5.bigip.product", string: product)
    }

    private func keyValue(_ body: String) -> PackResult {
        let text = body.hasPrefix("ASM:") ? String(body.dropFirst(4)) : body
        let kv = KeyValueParser.dictionary(text)
        let isAFM = kv["acl_policy_name"] != nil || kv["acl_rule_name"] != nil || kv["context_name"] != nil && kv["request_status"] == nil
        var b = ECSBuilder()
        setObserver(&b, product: isAFM ? "AFM" : "ASM")
        b.set("observer.hostname", string: kv["unit_hostname"])
        b.set("observer.ip", ip: kv["management_ip_address"])
        b.set("source.ip", ip: kv["ip_client"] ?? kv["src_ip"] ?? kv["source_ip"])
        b.set("source.port", int: kv["src_port"] ?? kv["source_port"])
        b.set("destination.ip", ip: kv["dest_ip"] ?? kv["destination_ip"])
        b.set("destination.port", int: kv["dest_port"] ?? kv["destination_port"])
        b.set("network.transport", string: kv["protocol"].map { $0.lowercased() }.map(CEFRecord.transport))
        b.set("user.name", string: kv["username"] ?? kv["user_name"])
        if isAFM {
            let action = (kv["action"] ?? "").lowercased()
            let allowed = action == "accept" || action == "allow" || action == "accept decisively"
            b.set("event.action", string: action)
            b.set("event.category", strings: ["network"])
            b.set("event.type", strings: ["connection", allowed ? "allowed" : "denied"])
            b.set("event.outcome", string: allowed ? "success" : "failure")
            b.set("rule.name", string: kv["acl_rule_name"])
        } else {
            let status = (kv["request_status"] ?? "").lowercased()
            let blocked = status == "blocked"
            b.set("event.action", string: status)
            b.set("event.kind", string: kv["violations"].map { _ in "alert" })
            b.set("event.category", strings: ["web", "network"])
            b.set("event.type", strings: [blocked ? "denied" : "allowed"])
            b.set("event.outcome", string: blocked ? "failure" : "success")
            b.set("http.request.method", string: kv["method"])
            b.set("http.response.status_code", int: kv["response_code"])
            b.set("url.path", string: kv["uri"])
            b.set("url.query", string: kv["query_string"])
            b.set("url.domain", string: kv["http_host"] ?? kv["host"])
            if let uri = kv["uri"] { b.set("url.original", string: uri + ((kv["query_string"]).map { $0.isEmpty ? "" : "?\($0)" } ?? "")) }
            b.set("rule.name", string: kv["policy_name"])
            b.set("event.id", string: kv["support_id"])
        }
        for (k, v) in kv.sorted(by: { $0.key < $1.key }) { b.set("f5.bigip.\(isAFM ? "afm" : "asm").\(k)", string: v) }
        for path in ["source.ip", "destination.ip"] { b.append("related.ip", b.string(path)) }
        return PackResult(dataset: isAFM ? "f5.bigip.afm" : "f5.bigip.asm", fields: b.object, parseFailure: kv.count < 3)
    }

    /// `01070727:5: Pool /Common/p member /Common/10.0.0.1:80 monitor status up.`
    private func module(tag: String, text: String) -> PackResult? {
        var b = ECSBuilder()
        setObserver(&b, product: tag == "apmd" ? "APM" : "LTM")
        var message = Substring(text)
        var code: String?
        let head = message.prefix(while: { $0 != ":" })
        if head.count == 8, head.allSatisfy(\.isHexDigit) {
            code = String(head)
            message = message.dropFirst(9)
            if let c = message.firstIndex(of: ":") {
                b.set("event.severity", int: String(message[..<c]))
                message = message[message.index(after: c)...].drop(while: { $0 == " " })
            }
        }
        b.set("event.code", string: code)
        b.set("f5.bigip.message", string: String(message))
        let m = String(message)
        if tag == "apmd" || (code?.hasPrefix("0149") ?? false) {
            b.set("event.category", strings: ["authentication", "session"])
            if let r = m.byteRange(of: "New session from client IP ") {
                b.set("source.ip", ip: String(m[r.upperBound...].prefix(while: { $0 != " " })))
                b.set("event.action", string: "session-start")
                b.set("event.type", strings: ["start"])
            }
            if let r = m.byteRange(of: "at VIP ") { b.set("destination.ip", ip: String(m[r.upperBound...].prefix(while: { $0 != " " }))) }
            if let r = m.byteRange(of: "Username '") { b.set("user.name", string: String(m[r.upperBound...].prefix(while: { $0 != "'" }))) }
            if let r = m.byteRange(of: "Access policy result: ") {
                let result = String(m[r.upperBound...]).trimmedASCII
                b.set("event.action", string: "access-policy-result")
                b.set("event.outcome", string: result.lowercased().containsBytes("deny") ? "failure" : "success")
                b.set("f5.bigip.apm.result", string: result)
            }
            if let session = m.split(separator: ":").dropFirst(2).first, m.hasPrefix("/") {
                b.set("f5.bigip.apm.session_id", string: String(session))
            }
            return PackResult(dataset: "f5.bigip.apm", fields: b.object)
        }
        b.set("event.category", strings: ["network"])
        if m.hasPrefix("Pool ") {
            let words = m.split(separator: " ")
            b.set("f5.bigip.ltm.pool", string: words.count > 1 ? String(words[1]) : nil)
            if let i = words.firstIndex(of: "member"), i + 1 < words.count {
                let member = String(words[i + 1]).split(separator: "/").last.map(String.init) ?? ""
                let (ip, port) = ECSBuilder.splitHostPort(member, separator: ":")
                b.set("destination.ip", ip: ip)
                b.set("destination.port", int: port)
            }
            if let r = m.byteRange(of: "monitor status ") {
                let status = String(m[r.upperBound...].prefix(while: { $0 != "." && $0 != " " }))
                b.set("event.action", string: "monitor-status-\(status)")
                b.set("event.outcome", string: status == "up" ? "success" : "failure")
                b.set("event.type", strings: ["change"])
            } else if let r = m.byteRange(of: "session status ") {
                b.set("event.action", string: "session-status-\(m[r.upperBound...].prefix(while: { $0 != "." && $0 != " " }))")
            }
        } else {
            // Request logging profiles: `client 10.0.0.1:51234 -> 10.0.0.100:443 ...` or kv.
            let kv = KeyValueParser.dictionary(m)
            b.set("source.ip", ip: kv["client_ip"] ?? kv["clientip"])
            b.set("destination.ip", ip: kv["server_ip"] ?? kv["virtual_ip"])
            b.set("http.request.method", string: kv["method"] ?? kv["http_method"])
            b.set("http.response.status_code", int: kv["status"] ?? kv["http_status"])
            URLFields.apply(kv["uri"] ?? kv["http_uri"], to: &b)
            if b.get("source.ip") != nil { b.set("event.action", string: "request") }
        }
        return PackResult(dataset: "f5.bigip.ltm", fields: b.object)
    }
}

extension Array where Element: Hashable {
    var uniqued: [Element] {
        var seen = Set<Element>()
        return filter { seen.insert($0).inserted }
    }
}
