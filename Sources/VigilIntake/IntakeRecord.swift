import VigilCore
import VigilStorage

/// What the spool carries: an event encoded for storage, or a quarantined input.
///
/// Binary layout: `u8 kind` then, for kind 3, a `StoredEvent` (see `StoredEvent.encode`); for
/// kind 4, the same followed by `i64 count` and that many `i64` tags of the rules it matched
/// at admission (`StoredEvent.matched`); kinds 5 and 6 are 3 and 4 for an event whose key
/// is unique (`StoredEvent.keyIsUnique`); for kind 2 `str tenant, str reason, str detail, str
/// source, i64 received, bytes raw`.
/// `str` and `bytes` are a little-endian `u32` length and the bytes.
public enum IntakeRecord: Sendable, Equatable {
    case event(StoredEvent)
    case quarantine(QuarantineItem)

    static let eventKind: UInt8 = 3
    static let matchedEventKind: UInt8 = 4
    static let quarantineKind: UInt8 = 2
    /// Added to an event kind when its key is unique.
    static let uniqueKeyOffset: UInt8 = 2

    public func encoded() -> [UInt8] {
        switch self {
        case .event(let event):
            return Self.encoded(event)
        case .quarantine(let item):
            var writer = BinaryWriter(out: [Self.quarantineKind])
            writer.string(item.tenant.rawValue)
            writer.string(item.reason.rawValue)
            writer.string(item.detail)
            writer.string(item.source)
            writer.int64(item.received)
            writer.bytes(item.raw)
            return writer.out
        }
    }

    /// The record of an event, without wrapping (copying) it in a record first.
    public static func encoded(_ event: borrowing StoredEvent) -> [UInt8] {
        var out: [UInt8] = [(event.matched.isEmpty ? eventKind : matchedEventKind) + (event.keyIsUnique ? uniqueKeyOffset : 0)]
        // The whole record, columns' texts included: a record grown past its first capacity
        // was copied whole.
        func size(_ text: String?) -> Int { text?.utf8.count ?? 0 }
        let texts = size(event.columns.dataset) + size(event.columns.hostName) + size(event.columns.sourceIP)
            + size(event.columns.destinationIP) + size(event.columns.networkTransport) + size(event.columns.userName)
            + size(event.columns.eventAction) + size(event.columns.eventOutcome) + size(event.columns.observerVendor)
        out.reserveCapacity(event.document.count + (event.message?.utf8.count ?? 0) + event.tenant.rawValue.utf8.count + texts
                            + 168 + 8 * event.matched.count)
        event.encode(into: &out)
        guard !event.matched.isEmpty else { return out }
        var writer = BinaryWriter(out: consume out)
        writer.int64(Int64(event.matched.count))
        for tag in event.matched { writer.int64(Int64(bitPattern: tag)) }
        return writer.out
    }

    /// Decodes a record; nil when the bytes are not a record this version wrote.
    public static func decode(_ bytes: [UInt8]) -> IntakeRecord? {
        var reader = BinaryReader(bytes)
        let kind = reader.byte()
        switch kind {
        case eventKind?, (eventKind + uniqueKeyOffset)?:
            guard var event = StoredEvent.decode(&reader) else { return nil }
            event.keyIsUnique = kind != eventKind
            return .event(event)
        case matchedEventKind?, (matchedEventKind + uniqueKeyOffset)?:
            guard var event = StoredEvent.decode(&reader), let count = reader.int64(), count > 0, count <= 1_000_000 else { return nil }
            var tags: [UInt64] = []
            for _ in 0..<count {
                guard let tag = reader.int64() else { return nil }
                tags.append(UInt64(bitPattern: tag))
            }
            event.matched = tags
            event.keyIsUnique = kind != matchedEventKind
            return .event(event)
        case quarantineKind?:
            guard let tenantText = reader.string(), let tenant = TenantName(tenantText),
                  let reasonText = reader.string(), let reason = QuarantineReason(rawValue: reasonText),
                  let detail = reader.string(), let source = reader.string(), let received = reader.int64(), let raw = reader.bytes()
            else { return nil }
            return .quarantine(QuarantineItem(tenant: tenant, reason: reason, detail: detail, source: source, received: received, raw: raw))
        default:
            return nil
        }
    }
}
