import Foundation
import VigilCore

/// Generic `key=value` lines (at least three pairs): dataset `kv`, values under `kv.*`, plus
/// ECS fields for the common key names (`src`, `dst`, `sport`/`spt`, `user`, `action`, ...).
public struct KeyValuePack: ProtocolPack {
    public let name = "kv"
    public init() {}

    public func normalize(_ input: PackInput) -> PackResult? {
        guard input.document == nil else { return nil }
        let pairs = KeyValueParser.parse(input.body)
        guard pairs.count >= 3 else { return nil }
        var b = ECSBuilder()
        var d: [String: String] = [:]
        for (k, v) in pairs {
            d[k] = v
            b.set("kv.\(k.replacingOccurrences(of: ".", with: "_"))", string: v)
        }
        b.set("source.ip", ip: d["src"] ?? d["srcip"] ?? d["src_ip"])
        b.set("destination.ip", ip: d["dst"] ?? d["dstip"] ?? d["dst_ip"])
        b.set("source.port", int: d["spt"] ?? d["sport"] ?? d["srcport"] ?? d["src_port"])
        b.set("destination.port", int: d["dpt"] ?? d["dport"] ?? d["dstport"] ?? d["dst_port"])
        b.set("user.name", string: d["user"] ?? d["suser"] ?? d["usrName"])
        b.set("event.action", string: d["action"] ?? d["act"])
        b.set("network.transport", string: (d["proto"] ?? d["protocol"]).map(CEFRecord.transport))
        return PackResult(dataset: "kv", fields: b.object)
    }
}
