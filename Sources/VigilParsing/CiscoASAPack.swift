import Foundation
import VigilCore

/// Cisco ASA and Firepower Threat Defense syslog (`%ASA-6-302013: ...`, `%FTD-...`).
///
/// Dataset `cisco.asa` (or `cisco.ftd`); `event.code` is the message id, `event.severity` the
/// syslog level in the mnemonic. Known ids get addresses, ports, users and Elastic's
/// `event.action` names; any other id still yields id, severity and `cisco.asa.message`.
public struct CiscoASAPack: ProtocolPack {
    public let name = "cisco.asa"
    public init() {}

    static let levels = ["emergencies", "alert", "critical", "error", "warning", "notification", "informational", "debugging"]

    public func normalize(_ input: PackInput) -> PackResult? {
        guard input.document == nil else { return nil }
        let body = input.body
        guard let pct = body.byteRange(of: "%ASA-") ?? body.byteRange(of: "%FTD-") ?? body.byteRange(of: "%PIX-") else { return nil }
        let product = body[body.index(after: pct.lowerBound)..<body.index(pct.upperBound, offsetBy: -1)].lowercased()
        let afterMnemonic = body[pct.upperBound...]
        // `6-302013: text`
        guard let dash = afterMnemonic.firstIndex(ofByte: UInt8(ascii: "-")), let colon = afterMnemonic.firstIndex(ofByte: UInt8(ascii: ":")), dash < colon else { return nil }
        let severity = String(afterMnemonic[..<dash])
        let messageID = String(afterMnemonic[afterMnemonic.index(after: dash)..<colon])
        var text = String(afterMnemonic[afterMnemonic.index(after: colon)...]).trimmedASCII
        var b = ECSBuilder()
        b.set("observer.vendor", string: "Cisco")
        b.set("observer.product", string: product)
        b.set("observer.type", string: "firewall")
        b.set("observer.hostname", string: input.syslog.hostname)
        b.set("event.code", string: messageID)
        b.set("event.kind", string: "event")
        if let sev = ECSBuilder.parseInt(severity), sev >= 0, sev < 8 {
            b.set("event.severity", .int(sev))
            b.set("log.level", string: Self.levels[Int(sev)])
        }
        // `message repeated 2 times: [ Deny ...]`
        if text.hasPrefix("message repeated "), let open = text.firstIndex(of: "[") {
            let count = text.dropFirst("message repeated ".count).prefix(while: \.isNumber)
            b.set("cisco.asa.message_repeats", int: String(count))
            var inner = text[text.index(after: open)...]
            if inner.last == "]" { inner = inner.dropLast() }
            text = String(inner).trimmedASCII
        }
        b.set("cisco.asa.message", string: text)
        let ok = ASAMessage(id: messageID, text: text).apply(to: &b)
        for path in ["source.ip", "destination.ip"] { b.append("related.ip", b.string(path)) }
        if let u = b.string("user.name") { b.append("related.user", u) }
        return PackResult(dataset: "cisco.\(product)", fields: b.object, parseFailure: !ok)
    }
}

/// One ASA message body and the extraction rules per message id.
struct ASAMessage {
    let id: String
    let text: String
    /// The text split on spaces, once (the extraction rules ask for words many times).
    let words: [Substring]

    init(id: String, text: String) {
        self.id = id
        self.text = text
        words = text.splitBytes(UInt8(ascii: " "))
    }

    /// An ASA endpoint: `iface:ip/port`, `ip/port`, `iface:ip`, `iface/ip(port)`.
    struct Endpoint {
        var interface: String?
        var ip: String?
        var port: String?
    }

    static func endpoint(_ raw: Substring?) -> Endpoint? {
        // By byte: every delimiter is ASCII, and a `Character` search walks grapheme clusters
        // (this ran twice per connection message and was a third of the pack's time).
        guard var raw else { return nil }
        return raw.withUTF8 { bytes in
            func text(_ range: Range<Int>?) -> String? { range.map { String(decoding: UnsafeBufferPointer(rebasing: bytes[$0]), as: UTF8.self) } }
            return endpoint(bytes, 0..<bytes.count).map { Endpoint(interface: text($0.interface), ip: text($0.ip), port: text($0.port)) }
        }
    }

    /// `endpoint` as ranges of `bytes` (the flat ASA path reads the frame): nil when `range`
    /// holds no address.
    static func endpoint(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> (interface: Range<Int>?, ip: Range<Int>, port: Range<Int>?)? {
        func isIP(_ range: Range<Int>) -> Bool { FlatSyslog.isIP(bytes, range) }
        let start = range.lowerBound
        let open = bytes[range].firstIndex(of: UInt8(ascii: "("))
        var end = range.upperBound
        while end > start, Self.trailing.contains(bytes[end - 1]), !(bytes[end - 1] == UInt8(ascii: ")") && open != nil) { end -= 1 }
        // `iface/ip(port)` (106100)
        if let open, end > start, bytes[end - 1] == UInt8(ascii: ")") {
            let port = (open + 1)..<max(open + 1, end - 1)
            var interface: Range<Int>?
            var ipStart = start
            if let slash = bytes[start..<open].firstIndex(of: UInt8(ascii: "/")) {
                interface = start..<slash
                ipStart = slash + 1
            }
            return isIP(ipStart..<open) ? (interface, ipStart..<open, port) : nil
        }
        var port: Range<Int>?
        if let slash = bytes[start..<end].lastIndex(of: UInt8(ascii: "/")) {
            port = (slash + 1)..<end
            end = slash
        }
        if isIP(start..<end) { return (nil, start..<end, port) }
        guard let c = bytes[start..<end].firstIndex(of: UInt8(ascii: ":")), isIP((c + 1)..<end) else { return nil }
        return (start..<c, (c + 1)..<end, port)
    }

    /// Punctuation that may follow an endpoint in the text.
    static let trailing: [UInt8] = Array(",.;:)".utf8)

    func word(after keyword: String, skipping skip: Set<String> = []) -> Substring? {
        let w = words
        guard let i = w.firstIndex(where: { $0.equalsBytes(keyword) }) else { return nil }  // keywords are ASCII
        var j = i + 1
        while j < w.count, skip.contains(String(w[j])) { j += 1 }
        return j < w.count ? w[j] : nil
    }

    /// `key = value` pairs separated by `,` or ` : ` (113004, 113019).
    func equalsValue(_ key: String) -> String? {
        guard let r = text.byteRange(of: "\(key) = ") else { return nil }
        let rest = text[r.upperBound...]
        let end = rest.firstIndex(where: { $0 == "," }) ?? rest.byteRange(of: " :")?.lowerBound ?? rest.endIndex
        return String(rest[..<end]).trimmedASCII
    }

    /// `Key <value>` (716039, 722051).
    func angleValue(_ key: String) -> String? {
        guard let r = text.byteRange(of: "\(key) <") else { return nil }
        let rest = text[r.upperBound...]
        guard let close = rest.firstIndex(of: ">") else { return nil }
        return String(rest[..<close])
    }

    func set(_ b: inout ECSBuilder, source: Endpoint?, destination: Endpoint?) {
        if let s = source {
            b.set("source.ip", ip: s.ip)
            b.set("source.port", int: s.port)
            b.set("observer.ingress.interface.name", string: s.interface)
        }
        if let d = destination {
            b.set("destination.ip", ip: d.ip)
            b.set("destination.port", int: d.port)
            b.set("observer.egress.interface.name", string: d.interface)
        }
    }

    /// The protocol word after `keyword` (`Deny tcp`, `Built inbound TCP`).
    func transport(_ word: Substring?) -> String? {
        guard let w = word?.lowercased() else { return nil }
        return ["tcp", "udp", "icmp", "icmp6", "gre", "esp", "sctp"].contains(w) ? w : nil
    }

    func denied(_ b: inout ECSBuilder) {
        b.set("event.action", string: "firewall-rule")
        b.set("event.outcome", string: "failure")
        b.set("event.category", strings: ["network"])
        b.set("event.type", strings: ["connection", "denied"])
    }

    func allowed(_ b: inout ECSBuilder, action: String, types: [String]) {
        b.set("event.action", string: action)
        b.set("event.outcome", string: "success")
        b.set("event.category", strings: ["network"])
        b.set("event.type", strings: types)
    }

    /// Returns false when a known id did not have the expected shape.
    func apply(to b: inout ECSBuilder) -> Bool {
        let w = words
        switch id {
        case "106001", "106006", "106015", "710003", "419002":
            denied(&b)
            if id == "419002" { b.set("event.action", string: "duplicate-tcp-syn") }
            let proto = id == "106001" ? w.dropFirst().first : id == "106006" ? w.dropFirst(2).first : id == "106015" ? w.dropFirst().first : w.first
            b.set("network.transport", string: transport(proto) ?? (id == "419002" ? "tcp" : nil))
            if let dir = w.first(where: { $0.equalsBytes("inbound") || $0.equalsBytes("outbound") }) { b.set("network.direction", string: String(dir)) }
            let src = ASAMessage.endpoint(word(after: "from")), dst = ASAMessage.endpoint(word(after: "to"))
            set(&b, source: src, destination: dst)
            if let iface = word(after: "interface") { b.set("cisco.asa.source_interface", string: String(iface)) }
            return src != nil && dst != nil
        case "106014":
            denied(&b)
            b.set("network.transport", string: "icmp")
            let src = ASAMessage.endpoint(word(after: "src")), dst = ASAMessage.endpoint(word(after: "dst"))
            set(&b, source: src, destination: dst)
            return src != nil && dst != nil
        case "106023":
            denied(&b)
            b.set("network.transport", string: transport(w.dropFirst().first))
            let src = ASAMessage.endpoint(word(after: "src")), dst = ASAMessage.endpoint(word(after: "dst"))
            set(&b, source: src, destination: dst)
            if let acl = word(after: "access-group") { b.set("rule.name", string: String(acl).trimmingQuotes) }
            return src != nil && dst != nil
        case "106100":
            let verdict = w.count > 2 ? String(w[2]) : ""
            if verdict == "denied" { denied(&b) } else { allowed(&b, action: "firewall-rule", types: ["connection", "allowed"]) }
            if w.count > 1 { b.set("rule.name", string: String(w[1])) }
            b.set("network.transport", string: transport(w.count > 3 ? w[3] : nil))
            let src = ASAMessage.endpoint(w.count > 4 ? w[4] : nil), dst = ASAMessage.endpoint(word(after: "->"))
            set(&b, source: src, destination: dst)
            return src != nil && dst != nil
        case "110002":
            denied(&b)
            b.set("event.action", string: "no-egress-interface")
            b.set("network.transport", string: transport(word(after: "for")))
            let src = ASAMessage.endpoint(word(after: "interface")), dst = ASAMessage.endpoint(word(after: "to"))
            set(&b, source: src, destination: dst)
            return src != nil && dst != nil
        case "113004", "113005":
            let success = id == "113004"
            b.set("event.action", string: "aaa-user-authentication")
            b.set("event.outcome", string: success ? "success" : "failure")
            b.set("event.category", strings: ["authentication"])
            b.set("event.type", strings: ["info"])
            b.set("user.name", string: equalsValue("user"))
            b.set("destination.ip", ip: equalsValue("server"))
            b.set("source.ip", ip: equalsValue("user IP"))
            b.set("event.reason", string: equalsValue("reason"))
            return b.get("user.name") != nil
        case "113019":
            b.set("event.action", string: "vpn-session-disconnected")
            b.set("event.category", strings: ["network", "session"])
            b.set("event.type", strings: ["end"])
            b.set("user.name", string: equalsValue("Username"))
            b.set("source.ip", ip: equalsValue("IP"))
            b.set("cisco.asa.group", string: equalsValue("Group"))
            if let r = text.byteRange(of: "Reason: ") { b.set("event.reason", string: String(text[r.upperBound...])) }
            return b.get("user.name") != nil
        case "302013", "302015", "302014", "302016":
            let built = id == "302013" || id == "302015"
            allowed(&b, action: built ? "flow-creation" : "flow-expiration", types: ["connection", built ? "start" : "end"])
            b.set("network.transport", string: id == "302013" || id == "302014" ? "tcp" : "udp")
            let outbound = w.contains { $0.equalsBytes("outbound") }
            if built { b.set("network.direction", string: outbound ? "outbound" : "inbound") }
            b.set("cisco.asa.connection_id", string: word(after: "connection").map(String.init))
            let first = ASAMessage.endpoint(word(after: "for")), second = ASAMessage.endpoint(word(after: "to"))
            if outbound { set(&b, source: second, destination: first) } else { set(&b, source: first, destination: second) }
            if !built {
                if let bytes = word(after: "bytes") { b.set("network.bytes", int: String(bytes)) }
                if let d = word(after: "duration") { b.set("cisco.asa.duration", string: String(d)) }
            }
            return first != nil && second != nil
        case "302020", "302021":
            let built = id == "302020"
            allowed(&b, action: built ? "flow-creation" : "flow-expiration", types: ["connection", built ? "start" : "end"])
            b.set("network.transport", string: text.containsBytes("ICMPv6") ? "ipv6-icmp" : "icmp")
            let faddr = ASAMessage.endpoint(word(after: "faddr")), laddr = ASAMessage.endpoint(word(after: "laddr"))
            let outbound = w.contains { $0.equalsBytes("outbound") }
            if built { b.set("network.direction", string: outbound ? "outbound" : "inbound") }
            if outbound {
                b.set("source.ip", ip: laddr?.ip)
                b.set("destination.ip", ip: faddr?.ip)
            } else {
                b.set("source.ip", ip: faddr?.ip)
                b.set("destination.ip", ip: laddr?.ip)
            }
            b.set("cisco.asa.icmp_type", int: word(after: "type").map(String.init))
            b.set("cisco.asa.icmp_code", int: word(after: "code").map(String.init))
            return faddr != nil && laddr != nil
        case "304001":
            allowed(&b, action: "accessed-url", types: ["info", "access"])
            b.set("source.ip", ip: w.first.map(String.init))
            if let r = text.byteRange(of: "Accessed URL ") ?? text.byteRange(of: "Accessed JAVA URL ") {
                let rest = text[r.upperBound...]
                if let c = rest.byteRange(of: ":") {
                    b.set("destination.ip", ip: String(rest[..<c.lowerBound]))
                    URLFields.apply(String(rest[c.upperBound...]), to: &b)
                }
            }
            return b.get("url.original") != nil
        case "305011", "305012":
            let built = id == "305011"
            allowed(&b, action: built ? "translation-creation" : "translation-expiration", types: ["connection", built ? "start" : "end"])
            b.set("network.transport", string: transport(w.count > 2 ? w[2] : nil))
            let src = ASAMessage.endpoint(word(after: "from")), mapped = ASAMessage.endpoint(word(after: "to"))
            set(&b, source: src, destination: nil)
            b.set("source.nat.ip", ip: mapped?.ip)
            b.set("source.nat.port", int: mapped?.port)
            return src != nil && mapped != nil
        case "313001", "313004":
            denied(&b)
            b.set("network.transport", string: "icmp")
            b.set("source.ip", ip: word(after: "from", skipping: ["laddr", "faddr"]).map { String($0).trimmingSuffix(",:") })
            if id == "313004" { b.set("destination.ip", ip: word(after: "to").map { String($0).trimmingSuffix(",:") }) }
            return b.get("source.ip") != nil
        case "605004", "605005":
            let ok = id == "605005"
            b.set("event.action", string: ok ? "login-permitted" : "login-denied")
            b.set("event.outcome", string: ok ? "success" : "failure")
            b.set("event.category", strings: ["authentication"])
            b.set("event.type", strings: [ok ? "start" : "info"])
            let src = ASAMessage.endpoint(word(after: "from"))
            set(&b, source: src, destination: nil)
            if let to = word(after: "to") {
                let parts = to.split(separator: ":", maxSplits: 1)
                if parts.count == 2 {
                    let target = parts[1].split(separator: "/", maxSplits: 1)
                    b.set("destination.ip", ip: target.first.map(String.init))
                    b.set("network.protocol", string: target.count > 1 ? String(target[1]).lowercased() : nil)
                }
            }
            if let r = text.byteRange(of: "for user ") { b.set("user.name", string: String(text[r.upperBound...]).trimmingQuotes) }
            return src != nil
        case "611101":
            b.set("event.action", string: "user-authentication")
            b.set("event.outcome", string: "success")
            b.set("event.category", strings: ["authentication"])
            b.set("event.type", strings: ["info"])
            if let r = text.byteRange(of: "Uname: ") { b.set("user.name", string: String(text[r.upperBound...]).trimmedASCII) }
            if let r = text.byteRange(of: "IP address: ") {
                let ip = text[r.upperBound...].prefix(while: { $0 != "," && $0 != " " })
                b.set("source.ip", ip: String(ip))
            }
            return b.get("user.name") != nil
        case "716039", "722051":
            let rejected = id == "716039"
            b.set("event.action", string: rejected ? "webvpn-authentication-rejected" : "vpn-address-assigned")
            b.set("event.outcome", string: rejected ? "failure" : "success")
            b.set("event.category", strings: rejected ? ["authentication"] : ["network", "session"])
            b.set("event.type", strings: rejected ? ["info"] : ["start"])
            b.set("user.name", string: angleValue("User"))
            b.set("source.ip", ip: angleValue("IP"))
            b.set("cisco.asa.group", string: angleValue("Group"))
            b.set("source.nat.ip", ip: angleValue("IPv4 Address"))
            return b.get("user.name") != nil
        case "733100":
            b.set("event.action", string: "threat-detected")
            b.set("event.kind", string: "alert")
            b.set("event.category", strings: ["intrusion_detection", "network"])
            b.set("event.type", strings: ["info"])
            if let open = text.firstIndex(of: "["), let close = text.firstIndex(of: "]"), open < close {
                b.set("cisco.asa.threat_category", string: text[text.index(after: open)..<close].trimmingCharacters(in: " "))
            }
            return true
        default:
            return true
        }
    }
}

extension String {
    var trimmingQuotes: String {
        var s = Substring(self)
        while let f = s.first, "\"'“”".contains(f) { s = s.dropFirst() }
        while let l = s.last, "\"'“”".contains(l) { s = s.dropLast() }
        return String(s)
    }

    func trimmingSuffix(_ chars: String) -> String {
        var s = Substring(self)
        while let l = s.last, chars.contains(l) { s = s.dropLast() }
        return String(s)
    }
}

extension Substring {
    func trimmingCharacters(in set: Character) -> String {
        var s = self
        while s.first == set { s = s.dropFirst() }
        while s.last == set { s = s.dropLast() }
        return String(s)
    }
}
