import Foundation
import VigilCore

/// Fortinet FortiGate: `key=value` syslog and CEF. Dataset `fortinet.firewall` (as Elastic's
/// fortinet_fortigate integration); the log `type`/`subtype` are in `fortinet.firewall.type`
/// and `.subtype` (traffic, utm: webfilter/ips/virus/app-ctrl/dns, event: system/vpn/user).
public struct FortiGatePack: ProtocolPack {
    public let name = "fortinet.firewall"
    public init() {}

    /// FortiOS log ids whose Elastic `event.action` is a fixed name.
    static let actionByLogID: [String: String] = [
        "0100044547": "FortiGate-event-config-objattr",
        "0101037120": "FortiGate-event-neg-generic-p1-notif",
        "0101037121": "FortiGate-event-neg-generic-p1-error",
        "0101037141": "FortiGate-event-conn-stats",
    ]

    /// Keys mapped to ECS; everything else stays under `fortinet.firewall.*`.
    static let mapped: Set<String> = [
        "date", "time", "tz", "eventtime", "devname", "devid", "logid", "srcip", "dstip", "srcport", "dstport",
        "proto", "user", "msg", "level", "logdesc", "remip", "locip", "remport", "locport", "hostname", "url",
        "qname", "qtype", "sentbyte", "rcvdbyte", "sentpkt", "rcvdpkt", "policyid", "service", "srcintf", "dstintf",
        "srcmac", "dstmac", "filename", "virus", "attack", "duration",
    ]

    public func normalize(_ input: PackInput) -> PackResult? {
        guard input.document == nil else { return nil }
        if input.body.containsBytes("CEF:"), let cef = CEFRecord.parse(input.body), cef.vendor == "Fortinet" {
            var b = cef.ecs()
            b.set("observer.vendor", string: "Fortinet")
            b.set("observer.product", string: "Fortigate")
            b.set("observer.type", string: "firewall")
            b.set("fortinet.firewall.type", string: cef.extensions["FTNTFGTtype"])
            b.set("fortinet.firewall.subtype", string: cef.extensions["FTNTFGTsubtype"])
            return PackResult(dataset: "fortinet.firewall", fields: b.object, timestamp: cef.timestamp(), parseFailure: !cef.complete)
        }
        let body = input.body
        guard body.containsBytes("devid="), body.containsBytes("type="), body.containsBytes("logid=") || body.containsBytes("date=") else { return nil }
        let kv = Record(KeyValueParser.parse(body))
        guard kv[.devid] != nil, let type = kv[.type] else { return nil }
        let subtype = kv[.subtype] ?? ""
        var b = ECSBuilder()
        b.set("observer.vendor", string: "Fortinet")
        b.set("observer.product", string: "Fortigate")
        b.set("observer.type", string: "firewall")
        b.set("observer.name", string: kv[.devname])
        b.set("observer.serial_number", string: kv[.devid])
        b.set("event.code", string: kv[.logid])
        b.set("log.level", string: kv[.level])
        b.set("rule.description", string: kv[.logdesc])
        b.set("rule.id", string: kv[.policyid])
        b.set("event.reason", string: kv[.msg])
        b.set("source.ip", ip: kv[.srcip] ?? kv[.remip])
        b.set("destination.ip", ip: kv[.dstip] ?? kv[.locip])
        b.set("source.port", int: kv[.srcport] ?? kv[.remport])
        b.set("destination.port", int: kv[.dstport] ?? kv[.locport])
        b.set("source.mac", string: kv[.srcmac])
        b.set("destination.mac", string: kv[.dstmac])
        b.set("observer.ingress.interface.name", string: kv[.srcintf])
        b.set("observer.egress.interface.name", string: kv[.dstintf])
        b.set("source.bytes", int: kv[.sentbyte])
        b.set("destination.bytes", int: kv[.rcvdbyte])
        b.set("source.packets", int: kv[.sentpkt])
        b.set("destination.packets", int: kv[.rcvdpkt])
        if let proto = kv[.proto] { b.set("network.transport", string: CEFRecord.transport(proto)) }
        b.set("network.protocol", string: kv[.service]?.lowercased())
        if let d = kv[.duration].flatMap(ECSBuilder.parseInt) { b.set("event.duration", .int(d &* 1_000_000_000)) }
        let action = kv[.action]
        b.set("event.action", string: kv[.logid].flatMap { Self.actionByLogID[$0] } ?? action)
        let status = (kv[.status] ?? "").lowercased()
        let user = kv[.user]
        let vpnUser = kv[.eapuser] ?? kv[.xauthuser]
        switch type {
        case "traffic":
            b.set("event.category", strings: ["network"])
            let denied = ["deny", "block", "blocked", "dropped", "server-rst", "client-rst"].contains(action?.lowercased() ?? "")
            b.set("event.type", strings: ["connection", denied ? "denied" : (action == "start" ? "start" : "end")])
            b.set("event.outcome", string: denied ? "failure" : "success")
            b.set("user.name", string: user)
        case "utm":
            b.set("event.kind", string: "alert")
            let blocked = ["blocked", "block", "deny", "dropped", "reset"].contains(action?.lowercased() ?? "")
            b.set("event.type", strings: [blocked ? "denied" : "allowed"])
            b.set("event.outcome", string: blocked ? "failure" : "success")
            b.set("user.name", string: user)
            switch subtype {
            case "webfilter":
                b.set("event.category", strings: ["network"])
                let url = kv[.url].map { u in (kv[.hostname].map { "\($0)" } ?? "") + u }
                URLFields.apply(url, to: &b)
                b.set("url.domain", string: kv[.hostname])
            case "ips", "anomaly":
                b.set("event.category", strings: ["network", "intrusion_detection"])
                b.set("rule.name", string: kv[.attack])
            case "virus":
                b.set("event.category", strings: ["malware", "network"])
                b.set("file.name", string: kv[.filename])
                b.set("rule.name", string: kv[.virus])
            case "app-ctrl":
                b.set("event.category", strings: ["network"])
                b.set("network.application", string: kv[.app]?.lowercased())
            case "dns":
                b.set("event.category", strings: ["network"])
                b.set("dns.question.name", string: kv[.qname])
                b.set("dns.question.type", string: kv[.qtype])
            default:
                b.set("event.category", strings: ["network"])
            }
        default:  // "event"
            if action == "login" || (kv[.logdesc] ?? "").lowercased().containsBytes("login") {
                b.set("event.category", strings: ["authentication"])
                b.set("event.type", strings: [status == "success" ? "start" : "info"])
                b.set("user.name", string: user)
            } else if subtype == "vpn" {
                b.set("event.category", strings: ["network"])
                b.set("event.type", strings: ["connection"])
            }
            b.set("source.user.name", string: vpnUser ?? user)
            if status == "success" { b.set("event.outcome", string: "success") }
            if status == "failed" || status == "failure" { b.set("event.outcome", string: "failure") }
        }
        for (k, v) in kv.unmapped {
            b.set("fortinet.firewall.\(k)", string: v)
        }
        for path in ["source.ip", "destination.ip"] { b.append("related.ip", b.string(path)) }
        let ts = Self.timestamp(date: kv[.date], time: kv[.time], tz: kv[.tz], eventtime: kv[.eventtime])
        return PackResult(dataset: "fortinet.firewall", fields: b.object, timestamp: ts?.0, timestampHasZone: ts?.1 ?? true)
    }

    /// `date` + `time` + `tz` (`-0700`); without `tz`, `eventtime` (ns/µs/s since epoch).
    static func timestamp(date: String?, time: String?, tz: String?, eventtime: String?) -> (EpochMillis, Bool)? {
        if let date, let time {
            var zone = "Z"
            var hasZone = false
            if let tz, tz.count == 5, tz.first == "+" || tz.first == "-" {
                zone = String(tz.prefix(3)) + ":" + String(tz.suffix(2))
                hasZone = true
            }
            if let t = Timestamp.parseRFC3339("\(date)T\(time)\(zone)") { return (t, hasZone) }
        }
        if let et = eventtime, let n = ECSBuilder.parseInt(et) {
            switch et.count {
            case 19...: return (n / 1_000_000, true)
            case 16...18: return (n / 1000, true)
            case 13...15: return (n, true)
            default: return (n &* 1000, true)
            }
        }
        return nil
    }
}

extension FortiGatePack {
    /// The keys the pack reads, each a slot of `Record`.
    enum Field: Int, CaseIterable {
        case action, app, attack, date, devid, devname, dstintf, dstip, dstmac, dstport, duration, eapuser, eventtime, filename, hostname, level, locip, locport, logdesc, logid, msg, policyid, proto, qname, qtype, rcvdbyte, rcvdpkt, remip, remport, sentbyte, sentpkt, service, srcintf, srcip, srcmac, srcport, status, subtype, time, type, tz, url, user, virus, xauthuser

        static let byName: [String: Field] = Dictionary(uniqueKeysWithValues: allCases.map { (String(describing: $0), $0) })
        /// Per field, whether its key is in `mapped` (every key of `mapped` is a field).
        static let isMapped: [Bool] = allCases.map { FortiGatePack.mapped.contains(String(describing: $0)) }
    }

    /// A line's key=value pairs as `KeyValueParser.dictionary` keeps them (the last value of a
    /// key wins), with the keys the pack reads in slots: one hash per pair while filling, none
    /// per read. Keys outside `mapped` are kept for `fortinet.firewall.*`, sorted.
    struct Record {
        private var values = [String?](repeating: nil, count: Field.allCases.count)
        /// Distinct keys outside `mapped`, sorted, with their last values.
        let unmapped: [(key: String, value: String)]

        init(_ pairs: [(key: String, value: String)]) {
            var others: [(key: String, value: String, order: Int)] = []
            for (order, pair) in pairs.enumerated() {
                let field = Field.byName[pair.key]
                if let field { values[field.rawValue] = pair.value }
                if !(field.map { Field.isMapped[$0.rawValue] } ?? false) { others.append((pair.key, pair.value, order)) }
            }
            // By key, the last of each key kept (a dictionary's view of repeated keys).
            others.sort { $0.key == $1.key ? $0.order < $1.order : $0.key < $1.key }
            var unmapped: [(key: String, value: String)] = []
            unmapped.reserveCapacity(others.count)
            for other in others {
                if let last = unmapped.last, last.key == other.key { unmapped[unmapped.count - 1].value = other.value } else { unmapped.append((other.key, other.value)) }
            }
            self.unmapped = unmapped
        }

        subscript(_ field: Field) -> String? { values[field.rawValue] }
    }
}
