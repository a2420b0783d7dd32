import VigilCore
import VigilStorage

/// What the spool carries: a normalized event or a quarantined input.
///
/// Binary layout (little endian): `u8 kind`, then for an event `str tenant, 16 key bytes,
/// i64 timestamp, i64 ingested, bytes document`; for quarantine `str tenant, str reason,
/// str detail, str source, i64 received, bytes raw`. `str` and `bytes` are `u32 length` + bytes.
public enum IntakeRecord: Sendable, Equatable {
    case event(Event)
    case quarantine(QuarantineItem)

    public func encoded() -> [UInt8] {
        var out: [UInt8] = []
        switch self {
        case .event(let event):
            let doc = JSONWriter.bytes(.object(event.fields))
            out.reserveCapacity(doc.count + 64)
            out.append(1)
            Self.put(Array(event.tenant.rawValue.utf8), into: &out)
            out.append(contentsOf: event.key.bytes)
            Self.put(event.timestamp, into: &out)
            Self.put(event.ingested, into: &out)
            Self.put(doc, into: &out)
        case .quarantine(let item):
            out.append(2)
            Self.put(Array(item.tenant.rawValue.utf8), into: &out)
            Self.put(Array(item.reason.rawValue.utf8), into: &out)
            Self.put(Array(item.detail.utf8), into: &out)
            Self.put(Array(item.source.utf8), into: &out)
            Self.put(item.received, into: &out)
            Self.put(item.raw, into: &out)
        }
        return out
    }

    /// Decodes a record; nil when the bytes are not a record this version wrote.
    public static func decode(_ bytes: [UInt8]) -> IntakeRecord? {
        var reader = Reader(bytes: bytes)
        guard let kind = reader.byte() else { return nil }
        switch kind {
        case 1:
            guard let tenantBytes = reader.sized(), let tenant = TenantName(String(decoding: tenantBytes, as: UTF8.self)),
                  let keyBytes = reader.fixed(16), let timestamp = reader.int64(), let ingested = reader.int64(),
                  let doc = reader.sized(), case .object(let fields) = (try? JSONParser.parse(doc)) ?? .null
            else { return nil }
            return .event(Event(tenant: tenant, key: EventKey(digest: keyBytes), timestamp: timestamp, ingested: ingested, fields: fields))
        case 2:
            guard let tenantBytes = reader.sized(), let tenant = TenantName(String(decoding: tenantBytes, as: UTF8.self)),
                  let reasonBytes = reader.sized(), let reason = QuarantineReason(rawValue: String(decoding: reasonBytes, as: UTF8.self)),
                  let detail = reader.sized(), let source = reader.sized(), let received = reader.int64(), let raw = reader.sized()
            else { return nil }
            return .quarantine(QuarantineItem(tenant: tenant, reason: reason, detail: String(decoding: detail, as: UTF8.self),
                                              source: String(decoding: source, as: UTF8.self), received: received, raw: raw))
        default:
            return nil
        }
    }

    static func put(_ bytes: [UInt8], into out: inout [UInt8]) {
        let count = UInt32(bytes.count)
        for shift in stride(from: 0, to: 32, by: 8) { out.append(UInt8(truncatingIfNeeded: count >> UInt32(shift))) }
        out.append(contentsOf: bytes)
    }

    static func put(_ value: Int64, into out: inout [UInt8]) {
        let bits = UInt64(bitPattern: value)
        for shift in stride(from: 0, to: 64, by: 8) { out.append(UInt8(truncatingIfNeeded: bits >> UInt64(shift))) }
    }

    struct Reader {
        let bytes: [UInt8]
        var index = 0

        mutating func byte() -> UInt8? {
            guard index < bytes.count else { return nil }
            defer { index += 1 }
            return bytes[index]
        }

        mutating func fixed(_ count: Int) -> [UInt8]? {
            guard count >= 0, index + count <= bytes.count else { return nil }
            defer { index += count }
            return Array(bytes[index..<(index + count)])
        }

        mutating func int64() -> Int64? {
            guard let raw = fixed(8) else { return nil }
            var bits: UInt64 = 0
            for (i, b) in raw.enumerated() { bits |= UInt64(b) << UInt64(8 * i) }
            return Int64(bitPattern: bits)
        }

        mutating func sized() -> [UInt8]? {
            guard let raw = fixed(4) else { return nil }
            let count = Int(raw[0]) | Int(raw[1]) << 8 | Int(raw[2]) << 16 | Int(raw[3]) << 24
            return fixed(count)
        }
    }
}
