import Foundation
import VigilCore

/// Accumulates ECS fields at dotted paths; skips empty and placeholder values so packs can
/// map vendor fields without a guard per line.
struct ECSBuilder: Sendable {
    var tree: FieldTree

    init() { tree = FieldTree() }
    init(_ object: JSONObject) { tree = FieldTree(object) }

    /// The nested document (built on each call: read it once, when done).
    var object: JSONObject { tree.object() }

    /// Values vendors use for "nothing here".
    static func isPlaceholder(_ s: String) -> Bool {
        var s = s
        return s.withUTF8 { isPlaceholder(utf8: $0) }
    }

    /// `isPlaceholder` on UTF-8 bytes (the flat syslog paths read ranges of the line).
    static func isPlaceholder(utf8 b: UnsafeBufferPointer<UInt8>) -> Bool {
        // The placeholders are ASCII and short: anything longer is none of them.
        switch b.count {
        case 0: return true
        case 1: return b[0] == UInt8(ascii: "-")
        case 3: return b.elementsEqual("N/A".utf8) || b.elementsEqual("n/a".utf8)
        default: return false
        }
    }

    mutating func set(_ path: String, _ value: JSONValue?) {
        guard let value else { return }
        tree.set(value, at: path)
    }

    mutating func set(_ path: String, string: String?) {
        guard let string, !ECSBuilder.isPlaceholder(string) else { return }
        tree.set(.string(string), at: path)
    }

    mutating func set(_ path: String, strings: [String]) {
        tree.set(.array(strings.map { .string($0) }), at: path)
    }

    /// Sets an integer parsed from text; leaves the field out when the text is no integer.
    mutating func set(_ path: String, int text: String?) {
        guard let text, let value = ECSBuilder.parseInt(text) else { return }
        tree.set(.int(value), at: path)
    }

    /// Sets an address only when the text is an IPv4 or IPv6 literal.
    mutating func set(_ path: String, ip text: String?) {
        guard let text, let ip = ECSBuilder.normalizedIP(text) else { return }
        tree.set(.string(ip), at: path)
    }

    /// Appends to an array field (`related.ip`), skipping duplicates.
    mutating func append(_ path: String, _ text: String?) {
        guard let text, !ECSBuilder.isPlaceholder(text) else { return }
        var items: [JSONValue] = []
        if case .array(let existing)? = tree.value(atPath: path) { items = existing }
        guard !items.contains(.string(text)) else { return }
        items.append(.string(text))
        tree.set(.array(items), at: path)
    }

    func get(_ path: String) -> JSONValue? { tree.value(atPath: path) }
    func string(_ path: String) -> String? { get(path)?.stringValue }

    // MARK: - Text helpers

    /// Parses a decimal integer without trapping on overflow.
    static func parseInt(_ text: some StringProtocol) -> Int64? {
        var text = Substring(text)
        return text.withUTF8 { parseInt(utf8: $0) }
    }

    /// `parseInt` on UTF-8 bytes: spaces around, an optional sign, at most 18 digits.
    static func parseInt(utf8 b: UnsafeBufferPointer<UInt8>) -> Int64? {
        var lower = 0, upper = b.count
        while lower < upper, b[lower] == 0x20 { lower += 1 }
        while upper > lower, b[upper - 1] == 0x20 { upper -= 1 }
        var negative = false
        if lower < upper, b[lower] == UInt8(ascii: "-") || b[lower] == UInt8(ascii: "+") {
            negative = b[lower] == UInt8(ascii: "-")
            lower += 1
        }
        guard lower < upper, upper - lower <= 18 else { return nil }
        var value: Int64 = 0
        for i in lower..<upper {
            guard b[i] >= 0x30, b[i] <= 0x39 else { return nil }
            value = value &* 10 &+ Int64(b[i] &- 0x30)
        }
        return negative ? -value : value
    }

    /// The address if `text` is an IPv4 or IPv6 literal (an IPv6 zone `%eth0` is kept).
    static func normalizedIP(_ text: some StringProtocol) -> String? {
        let s = String(text)
        return isIP(s) ? s : nil
    }

    static func isIP(_ s: some StringProtocol) -> Bool {
        if s.ipv4Value != nil { return true }
        guard s.utf8.count >= 2, s.utf8.count <= 64, s.containsBytes(":") else { return false }
        // IPv6: hex digits, colons and dots (an embedded IPv4), up to a `%zone`; by byte.
        var colons = 0
        for byte in s.utf8 {
            switch byte {
            case UInt8(ascii: "%"): return colons >= 2
            case UInt8(ascii: ":"): colons += 1
            case UInt8(ascii: "."), UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "f"), UInt8(ascii: "A")...UInt8(ascii: "F"): continue
            default: return false
            }
        }
        return colons >= 2
    }

    /// Splits `ip/port` (ASA), `ip:port` (IPv4 only) or `[v6]:port`.
    static func splitHostPort(_ text: some StringProtocol, separator: Character = "/") -> (String, String?) {
        let s = String(text)
        guard let i = s.lastIndex(of: separator) else { return (s, nil) }
        return (String(s[..<i]), String(s[s.index(after: i)...]))
    }
}

extension String {
    /// Trims ASCII spaces, tabs and line ends.
    var trimmedASCII: String {
        var sub = Substring(self)
        while let f = sub.first, f.isWhitespace { sub = sub.dropFirst() }
        while let l = sub.last, l.isWhitespace { sub = sub.dropLast() }
        return String(sub)
    }
}
