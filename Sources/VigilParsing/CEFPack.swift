import Foundation
import VigilCore

/// A parsed ArcSight CEF record: `CEF:0|vendor|product|version|signature|name|severity|ext`.
struct CEFRecord: Sendable {
    var version: String
    var vendor: String
    var product: String
    var deviceVersion: String
    var signatureID: String
    var name: String
    var severity: String
    var extensions: [String: String]
    /// False when the header was cut short.
    var complete: Bool

    /// Finds `CEF:` in a body (after any syslog header) and parses it.
    static func parse(_ body: String) -> CEFRecord? {
        guard let r = body.byteRange(of: "CEF:") else { return nil }
        let b = Array(body[r.upperBound...].utf8)
        var header: [String] = []
        var current: [UInt8] = []
        var i = 0
        while i < b.count, header.count < 7 {
            let c = b[i]
            if c == UInt8(ascii: "\\"), i + 1 < b.count, b[i + 1] == UInt8(ascii: "|") || b[i + 1] == UInt8(ascii: "\\") {
                current.append(b[i + 1])
                i += 2
                continue
            }
            if c == UInt8(ascii: "|") {
                header.append(String(decoding: current, as: UTF8.self))
                current.removeAll()
            } else {
                current.append(c)
            }
            i += 1
        }
        guard header.count >= 2 else { return nil }
        let complete = header.count == 7
        if !complete { header.append(String(decoding: current, as: UTF8.self)) }
        while header.count < 7 { header.append("") }
        let ext = i < b.count ? extensions(Array(b[i...])) : [:]
        return CEFRecord(
            version: header[0], vendor: header[1], product: header[2], deviceVersion: header[3],
            signatureID: header[4], name: header[5], severity: header[6], extensions: ext, complete: complete)
    }

    /// `k=v k2=v with spaces` — a value runs to the last space before the next unescaped `=`.
    static func extensions(_ b: [UInt8]) -> [String: String] {
        var result: [String: String] = [:]
        var key: String?
        var value: [UInt8] = []
        var i = 0
        func flush() {
            guard let k = key else { return }
            var v = value
            while v.last == 0x20 { v.removeLast() }
            result[k] = String(decoding: v, as: UTF8.self)
        }
        while i < b.count {
            let c = b[i]
            if c == UInt8(ascii: "\\"), i + 1 < b.count {
                let n = b[i + 1]
                switch n {
                case UInt8(ascii: "n"): value.append(0x0A)
                case UInt8(ascii: "r"): value.append(0x0D)
                default: value.append(n)
                }
                i += 2
                continue
            }
            if c == UInt8(ascii: "=") {
                // The new key is the word before '='.
                var start = value.count
                while start > 0, value[start - 1] != 0x20 { start -= 1 }
                let newKey = String(decoding: value[start...], as: UTF8.self)
                if !newKey.isEmpty {
                    value.removeSubrange(start...)
                    flush()
                    key = newKey
                    value = []
                    i += 1
                    continue
                }
            }
            value.append(c)
            i += 1
        }
        flush()
        return result
    }

    /// Maps the record to ECS the way Elastic's CEF decoder does.
    func ecs() -> ECSBuilder {
        var b = ECSBuilder()
        let e = extensions
        b.set("observer.vendor", string: vendor)
        b.set("observer.product", string: product)
        b.set("observer.version", string: deviceVersion)
        b.set("event.code", string: signatureID)
        b.set("event.reason", string: name)
        b.set("cef.name", string: name)
        b.set("cef.version", string: version)
        b.set("event.severity", int: severity)
        b.set("source.ip", ip: e["src"] ?? e["c6a2"])
        b.set("destination.ip", ip: e["dst"] ?? e["c6a3"])
        b.set("source.port", int: e["spt"])
        b.set("destination.port", int: e["dpt"])
        b.set("source.nat.ip", ip: e["sourceTranslatedAddress"])
        b.set("destination.nat.ip", ip: e["destinationTranslatedAddress"])
        b.set("source.nat.port", int: e["sourceTranslatedPort"])
        b.set("destination.nat.port", int: e["destinationTranslatedPort"])
        b.set("source.mac", string: e["smac"])
        b.set("destination.mac", string: e["dmac"])
        b.set("source.domain", string: e["shost"])
        b.set("destination.domain", string: e["dhost"])
        b.set("source.user.name", string: e["suser"])
        b.set("destination.user.name", string: e["duser"])
        b.set("user.name", string: e["suser"] ?? e["duser"])
        b.set("source.bytes", int: e["in"])
        b.set("destination.bytes", int: e["out"])
        b.set("event.action", string: e["act"])
        b.set("event.outcome", string: e["outcome"].map { $0.lowercased() })
        b.set("network.transport", string: e["proto"].map(Self.transport))
        b.set("network.protocol", string: e["app"]?.lowercased())
        URLFields.apply(e["request"], to: &b)
        b.set("http.request.method", string: e["requestMethod"])
        b.set("user_agent.original", string: e["requestClientApplication"])
        b.set("file.name", string: e["fname"])
        b.set("file.path", string: e["filePath"])
        b.set("file.size", int: e["fsize"])
        b.set("file.hash.sha256", string: e["fileHash"])
        b.set("process.name", string: e["sproc"] ?? e["dproc"])
        b.set("process.pid", int: e["spid"] ?? e["dpid"])
        b.set("observer.hostname", string: e["dvchost"])
        b.set("observer.ip", ip: e["dvc"])
        b.set("observer.serial_number", string: e["deviceExternalId"])
        b.set("observer.ingress.interface.name", string: e["deviceInboundInterface"])
        b.set("observer.egress.interface.name", string: e["deviceOutboundInterface"])
        b.set("rule.name", string: e["cs1Label"] == "Rule" ? e["cs1"] : nil)
        if let dir = e["deviceDirection"] { b.set("network.direction", string: dir == "0" ? "inbound" : dir == "1" ? "outbound" : nil) }
        for (k, v) in e.sorted(by: { $0.key < $1.key }) { b.set("cef.extensions.\(k)", string: v) }
        return b
    }

    /// `rt` / `end`: epoch milliseconds or `MMM dd yyyy HH:mm:ss[.SSS][ zone]`.
    func timestamp() -> EpochMillis? {
        guard let rt = extensions["rt"] ?? extensions["end"] ?? extensions["start"] else { return nil }
        if let ms = ECSBuilder.parseInt(rt), rt.count >= 10 { return rt.count <= 10 ? ms &* 1000 : ms }
        if let t = Timestamp.parseRFC3339(rt) { return t }
        let m = SyslogParser().parse(rt, referenceTime: 0)
        return m.timestampHasYear ? m.timestamp : nil
    }

    static func transport(_ proto: String) -> String {
        switch proto.lowercased() {
        case "6": return "tcp"
        case "17": return "udp"
        case "1": return "icmp"
        case "58": return "ipv6-icmp"
        default: return proto.lowercased()
        }
    }
}

/// Generic CEF: dataset `cef`, with the header in `observer.*` and extensions mapped to ECS.
public struct CEFPack: ProtocolPack {
    public let name = "cef"
    public init() {}

    public func normalize(_ input: PackInput) -> PackResult? {
        guard input.document == nil, let record = CEFRecord.parse(input.body) else { return nil }
        let b = record.ecs()
        return PackResult(dataset: "cef", fields: b.object, timestamp: record.timestamp(), parseFailure: !record.complete)
    }
}
