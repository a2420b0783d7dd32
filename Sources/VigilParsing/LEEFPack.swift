import Foundation
import VigilCore

/// A parsed IBM LEEF record: `LEEF:1.0|vendor|product|version|eventID|k=v<TAB>k=v`
/// (LEEF 2.0 adds a delimiter field: a character, `x09` or `^`).
struct LEEFRecord: Sendable {
    var version: String
    var vendor: String
    var product: String
    var deviceVersion: String
    var eventID: String
    var attributes: [String: String]
    var complete: Bool

    static func parse(_ body: String) -> LEEFRecord? {
        guard let r = body.byteRange(of: "LEEF:") else { return nil }
        let text = body[r.upperBound...]
        var parts = text.split(separator: "|", maxSplits: 5, omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 2 else { return nil }
        let complete = parts.count >= 6
        while parts.count < 6 { parts.append("") }
        var delimiter: Character = "\t"
        var ext = parts[5]
        if parts[0].hasPrefix("2") {
            // LEEF 2.0: parts[5] starts with the delimiter spec, then '|', then attributes.
            let sub = ext.split(separator: "|", maxSplits: 1, omittingEmptySubsequences: false)
            let spec = sub.first.map(String.init) ?? ""
            ext = sub.count > 1 ? String(sub[1]) : ""
            if spec.lowercased().hasPrefix("x"), let code = UInt8(spec.dropFirst(), radix: 16) {
                delimiter = Character(Unicode.Scalar(code))
            } else if spec.hasPrefix("0x"), let code = UInt8(spec.dropFirst(2), radix: 16) {
                delimiter = Character(Unicode.Scalar(code))
            } else if let c = spec.first {
                delimiter = c
            }
        }
        var attributes: [String: String] = [:]
        for item in ext.split(separator: delimiter) {
            guard let eq = item.firstIndex(of: "=") else { continue }
            attributes[String(item[..<eq]).trimmedASCII] = String(item[item.index(after: eq)...])
        }
        return LEEFRecord(
            version: parts[0], vendor: parts[1], product: parts[2], deviceVersion: parts[3], eventID: parts[4],
            attributes: attributes, complete: complete)
    }

    func ecs() -> ECSBuilder {
        var b = ECSBuilder()
        let a = attributes
        b.set("observer.vendor", string: vendor)
        b.set("observer.product", string: product)
        b.set("observer.version", string: deviceVersion)
        b.set("event.code", string: eventID)
        b.set("event.action", string: a["action"] ?? a["act"] ?? eventID)
        b.set("source.ip", ip: a["src"])
        b.set("destination.ip", ip: a["dst"])
        b.set("source.port", int: a["srcPort"])
        b.set("destination.port", int: a["dstPort"])
        b.set("source.nat.ip", ip: a["srcPreNAT"] != nil ? a["srcPostNAT"] : nil)
        b.set("destination.nat.ip", ip: a["dstPostNAT"])
        b.set("source.mac", string: a["srcMAC"])
        b.set("destination.mac", string: a["dstMAC"])
        b.set("network.transport", string: a["proto"].map(CEFRecord.transport))
        b.set("user.name", string: a["usrName"] ?? a["suser"])
        b.set("source.user.name", string: a["usrName"] ?? a["suser"])
        b.set("destination.user.name", string: a["duser"])
        b.set("source.bytes", int: a["srcBytes"])
        b.set("destination.bytes", int: a["dstBytes"])
        b.set("event.severity", int: a["sev"])
        URLFields.apply(a["url"], to: &b)
        b.set("observer.hostname", string: a["identHostName"])
        for (k, v) in a.sorted(by: { $0.key < $1.key }) { b.set("leef.attributes.\(k)", string: v) }
        return b
    }

    func timestamp() -> EpochMillis? {
        guard let t = attributes["devTime"] else { return nil }
        if let ms = ECSBuilder.parseInt(t), t.count >= 10 { return t.count <= 10 ? ms &* 1000 : ms }
        if let ts = Timestamp.parseRFC3339(t) { return ts }
        let m = SyslogParser().parse(t, referenceTime: 0)
        return m.timestampHasYear ? m.timestamp : nil
    }
}

/// Generic LEEF: dataset `leef`.
public struct LEEFPack: ProtocolPack {
    public let name = "leef"
    public init() {}

    public func normalize(_ input: PackInput) -> PackResult? {
        guard input.document == nil, let record = LEEFRecord.parse(input.body) else { return nil }
        return PackResult(dataset: "leef", fields: record.ecs().object, timestamp: record.timestamp(), parseFailure: !record.complete)
    }
}
