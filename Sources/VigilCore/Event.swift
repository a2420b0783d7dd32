/// A 128-bit idempotency key. Two events with the same key in one tenant are the same event.
public struct EventKey: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var high: UInt64
    public var low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// Builds a key from the first 16 bytes of a digest (big endian).
    public init(digest: some Sequence<UInt8>) {
        self.init(bytes: Array(digest.prefix(16)))
    }

    /// A key that sorts by time: the second (five bytes, big endian) then the first eleven
    /// bytes of a digest (88 bits: a collision needs some 2^44 events in one second).
    ///
    /// For keys whose digest covers the timestamp (content keys): a copy of the event has the
    /// same second, so deduplication loses nothing, and a batch of recent events lands in a
    /// few pages at the end of the tenant's key table instead of one page each all over it.
    /// With uniform keys a batch rewrites nearly every leaf page once the table outgrows the
    /// batch (a million keys: some 30 MiB of write-ahead log per 20,000-event batch), so the
    /// cost of a key grew with the table.
    ///
    /// Takes an array, not any sequence: this runs for every ingested event, and a generic
    /// sequence (a digest type) iterated across modules cost more than the hash itself.
    public init(second: Int64, digest: [UInt8]) {
        self = digest.withUnsafeBytes { EventKey(second: second, digest: $0) }
    }

    /// `init(second:digest:)` over the digest's bytes where they are (a digest type's
    /// `withUnsafeBytes`), without copying them into an array first.
    public init(second: Int64, digest: UnsafeRawBufferPointer) {
        let seconds = UInt64(clamping: max(0, second)) & 0xFF_FFFF_FFFF
        var high = seconds << 24, low: UInt64 = 0
        for i in 0..<11 {
            let byte = UInt64(i < digest.count ? digest[i] : 0)
            if i < 3 { high |= byte << (16 - 8 * UInt64(i)) } else { low = low << 8 | byte }
        }
        self.init(high: high, low: low)
    }

    /// Builds a key from 16 bytes (big endian); missing bytes count as zero.
    public init(bytes: [UInt8]) {
        var h: UInt64 = 0, l: UInt64 = 0
        for i in 0..<16 {
            let b = i < bytes.count ? UInt64(bytes[i]) : 0
            if i < 8 { h = h << 8 | b } else { l = l << 8 | b }
        }
        high = h
        low = l
    }

    /// The 16 bytes, big endian: the form stored in databases.
    public var bytes: [UInt8] {
        withUnsafeBytes { Array($0) }
    }

    /// The 16 bytes of `bytes`, without making an array: this runs several times for every
    /// ingested event, and an array is an allocation (`Array(repeating:count:)` also looked
    /// its storage type up in the runtime's metadata cache on every call).
    @inlinable
    public func withUnsafeBytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        var bigEndian = (high.bigEndian, low.bigEndian)
        return try Swift.withUnsafeBytes(of: &bigEndian) { try body($0) }
    }

    public var description: String {
        withUnsafeBytes { Hex.string($0) }
    }

    public static func < (lhs: EventKey, rhs: EventKey) -> Bool {
        (lhs.high, lhs.low) < (rhs.high, rhs.low)
    }
}

/// A tenant name: lower-case letters, digits, `-` and `_`, 1 to 64 characters, starting with a
/// letter or digit. Tenant names become file names, so nothing else is allowed.
public struct TenantName: Hashable, Sendable, CustomStringConvertible, Comparable {
    public let rawValue: String

    public init?(_ raw: String) {
        let bytes = Array(raw.utf8)
        guard (1...64).contains(bytes.count) else { return nil }
        for (i, b) in bytes.enumerated() {
            let ok = (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39) || (i > 0 && (b == 0x2D || b == 0x5F))
            guard ok else { return nil }
        }
        rawValue = raw
    }

    public static let defaultTenant = TenantName("default")!

    public var description: String { rawValue }
    public static func < (lhs: TenantName, rhs: TenantName) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// A normalized event, ready to store.
///
/// `fields` holds the document without `@timestamp` and `event.ingested` (those live in
/// `timestamp` and `ingested`); nested objects follow ECS (`host.name` is `{"host":{"name":..}}`).
public struct Event: Sendable, Equatable {
    public var tenant: TenantName
    public var key: EventKey
    public var timestamp: EpochMillis
    public var ingested: EpochMillis
    public var fields: JSONObject

    public init(tenant: TenantName, key: EventKey, timestamp: EpochMillis, ingested: EpochMillis, fields: JSONObject) {
        self.tenant = tenant
        self.key = key
        self.timestamp = timestamp
        self.ingested = ingested
        self.fields = fields
    }

    /// The full document as search returns it: `@timestamp` first, then the fields, with
    /// `event.ingested` added under `event`.
    public var document: JSONObject {
        var doc = JSONObject()
        doc.members.reserveCapacity(fields.count + 1)
        doc.members.append(("@timestamp", .string(Timestamp.formatRFC3339(timestamp))))
        doc.members.append(contentsOf: fields.members)
        var eventObject = doc["event"]?.objectValue ?? JSONObject()
        eventObject["ingested"] = .string(Timestamp.formatRFC3339(ingested))
        doc["event"] = .object(eventObject)
        return doc
    }
}

/// Turns flat dotted keys into nested objects, the shape ECS documents have.
public enum FieldNesting {
    /// `{"host.name":"a","host":{"ip":"1"}}` becomes `{"host":{"name":"a","ip":"1"}}`.
    /// Where a dotted key collides with a scalar (`{"a":1,"a.b":2}`) the dotted key is kept as
    /// it is, so nothing is lost.
    public static func nest(_ object: JSONObject) -> JSONObject {
        // Most shippers already send nested documents: leave those untouched.
        guard needsNesting(object) else { return object }
        var result = JSONObject()
        result.members.reserveCapacity(object.count)
        for (key, value) in object.members {
            let nestedValue: JSONValue
            if case .object(let child) = value { nestedValue = .object(nest(child)) } else { nestedValue = value }
            if isNestableDottedKey(key) {
                let parts = key.splitBytes(UInt8(ascii: ".")).map(String.init)
                if insert(nestedValue, path: parts[...], into: &result) { continue }
            }
            merge(key, nestedValue, into: &result)
        }
        return result
    }

    static func needsNesting(_ object: JSONObject) -> Bool {
        // Through the buffer: reading each member out of the array would retain its key and
        // value, and this runs on every ingested event; keys are searched with `memchr`.
        object.members.withUnsafeBufferPointer { members in
            for index in 0..<members.count {
                if members[index].key.firstIndex(ofByte: UInt8(ascii: ".")) != nil { return true }
                if case .object(let child) = members[index].value, needsNesting(child) { return true }
            }
            return false
        }
    }

    /// A key like `a.b` (not `.a`, `a.` or `a..b`).
    static func isNestableDottedKey(_ key: String) -> Bool {
        var sawDot = false
        var previousWasDot = true  // a leading dot is not nestable
        for byte in key.utf8 {
            if byte == UInt8(ascii: ".") {
                if previousWasDot { return false }
                sawDot = true
                previousWasDot = true
            } else {
                previousWasDot = false
            }
        }
        return sawDot && !previousWasDot
    }

    /// Sets the value at a path, creating objects on the way. Returns false on a collision.
    static func insert(_ value: JSONValue, path: ArraySlice<String>, into object: inout JSONObject) -> Bool {
        guard let head = path.first else { return false }
        if path.count == 1 {
            if let existing = object[head] {
                if case .object(let a) = existing, case .object(let b) = value {
                    var merged = a
                    for (k, v) in b.members { merge(k, v, into: &merged) }
                    object[head] = .object(merged)
                    return true
                }
                return false
            }
            object.members.append((head, value))
            return true
        }
        var child: JSONObject
        if let existing = object[head] {
            guard case .object(let o) = existing else { return false }
            child = o
        } else {
            child = JSONObject()
        }
        guard insert(value, path: path.dropFirst(), into: &child) else { return false }
        object[head] = .object(child)
        return true
    }

    /// Deep-merges `source` into `object`: nested objects merge, anything else from `source`
    /// replaces what is there.
    public static func merge(_ source: JSONObject, into object: inout JSONObject) {
        for (key, value) in source.members { merge(key, value, into: &object) }
    }

    static func merge(_ key: String, _ value: JSONValue, into object: inout JSONObject) {
        if let index = object.members.firstIndex(where: { $0.key == key }) {
            if case .object(var merged) = object.members[index].value, case .object(let b) = value {
                object.members[index].value = .null  // the parent lets go: merged in place, not copied
                for (k, v) in b.members { merge(k, v, into: &merged) }
                object.members[index].value = .object(merged)
            } else {
                // A duplicate key: JSON says the last one wins.
                object.members[index].value = value
            }
        } else {
            object.members.append((key, value))
        }
    }

    /// Sets `value` at a dotted path, replacing what is there. Empty components are skipped
    /// (`a..b` is `a.b`).
    ///
    /// Packs set a few dozen paths per event, so this walks the path in place: no array of
    /// components, and each object on the way is changed, not copied.
    public static func set(_ value: JSONValue, at path: String, in object: inout JSONObject) {
        // Over the path's bytes: slicing a `Substring` by UTF-8 index checks scalar alignment
        // at every step, and that was a third of this function's time.
        var path = path
        path.withUTF8 { setPath(value, $0, from: 0, in: &object) }
    }

    static func setPath(_ value: JSONValue, _ path: UnsafeBufferPointer<UInt8>, from: Int, in object: inout JSONObject) {
        let dot = UInt8(ascii: ".")
        var start = from
        while start < path.count, path[start] == dot { start += 1 }
        guard start < path.count else { return }
        var end = start
        while end < path.count, path[end] != dot { end += 1 }
        var next = end
        while next < path.count, path[next] == dot { next += 1 }
        // A part between ASCII dots of valid UTF-8 is valid UTF-8.
        let head = String(decoding: UnsafeBufferPointer(rebasing: path[start..<end]), as: UTF8.self)
        if next == path.count {
            object[head] = value
            return
        }
        if let index = object.members.firstIndex(where: { $0.key == head }), case .object(var child) = object.members[index].value {
            // Drop the parent's reference first, so the child is changed in place, not copied.
            object.members[index].value = .null
            setPath(value, path, from: next, in: &child)
            object.members[index].value = .object(child)
        } else {
            var child = JSONObject()
            setPath(value, path, from: next, in: &child)
            object[head] = .object(child)
        }
    }
}
