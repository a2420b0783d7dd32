import Foundation
import VigilCore
/// Splits `key=value key2="quoted value"` text (FortiGate, F5 ASM `key="v",key2="v"`,
/// generic syslog). Quoted values unescape `\"` and `\\`; anything unparseable is skipped.
enum KeyValueParser {
    static func parse(_ text: String) -> [(key: String, value: String)] {
        var text = text
        return text.withUTF8(parse)
    }

    /// Values are made straight from the line's bytes; only a quoted value with an escape in
    /// it is copied byte by byte.
    static func parse(_ b: UnsafeBufferPointer<UInt8>) -> [(key: String, value: String)] {
        var pairs: [(key: String, value: String)] = []
        pairs.reserveCapacity(16)
        func text(_ range: Range<Int>) -> String { String(decoding: UnsafeBufferPointer(rebasing: b[range]), as: UTF8.self) }
        var scanner = Scanner(b, 0..<b.count)
        while let pair = scanner.next() {
            pairs.append((text(pair.key), pair.escaped ? String(decoding: unescaped(b, pair.value), as: UTF8.self) : text(pair.value)))
        }
        return pairs
    }

    /// One pair as ranges of the text: the key, and the value without its quotes (still
    /// escaped when `escaped`: see `unescaped`).
    struct Pair {
        var key: Range<Int>
        var value: Range<Int>
        var escaped: Bool
    }

    /// The pairs of `range` of `b`, one by one, without copying anything (the flat FortiGate
    /// path reads them as ranges; `parse` makes them strings).
    struct Scanner {
        let b: UnsafeBufferPointer<UInt8>
        let end: Int
        var i: Int

        init(_ b: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) {
            self.b = b
            end = range.upperBound
            i = range.lowerBound
        }

        static func isKeyByte(_ c: UInt8) -> Bool {
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A)
                || c == UInt8(ascii: "_") || c == UInt8(ascii: "-") || c == UInt8(ascii: ".") || c == UInt8(ascii: ":")
        }

        mutating func next() -> Pair? {
            while i < end {
                while i < end, b[i] == 0x20 || b[i] == UInt8(ascii: ",") || b[i] == 0x09 || b[i] == UInt8(ascii: ";") { i += 1 }
                let keyStart = i
                while i < end, Self.isKeyByte(b[i]) { i += 1 }
                guard i < end, b[i] == UInt8(ascii: "="), i > keyStart else {
                    // Not a pair: skip to the next separator.
                    while i < end, b[i] != 0x20 { i += 1 }
                    continue
                }
                let key = keyStart..<i
                i += 1
                if i < end, b[i] == UInt8(ascii: "\"") {
                    i += 1
                    let start = i
                    var close = end  // an unclosed quote runs to the end
                    var escaped = false
                    while i < end {
                        let c = b[i]
                        if c == UInt8(ascii: "\\"), i + 1 < end, b[i + 1] == UInt8(ascii: "\"") || b[i + 1] == UInt8(ascii: "\\") {
                            escaped = true
                            i += 2
                            continue
                        }
                        i += 1
                        if c == UInt8(ascii: "\"") { close = i - 1; break }
                    }
                    return Pair(key: key, value: start..<close, escaped: escaped)
                }
                let start = i
                while i < end, b[i] != 0x20, b[i] != 0x09 { i += 1 }
                return Pair(key: key, value: start..<i, escaped: false)
            }
            return nil
        }
    }

    /// A quoted value's bytes with `\"` and `\\` unescaped.
    static func unescaped(_ b: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(range.count)
        var i = range.lowerBound
        while i < range.upperBound {
            if b[i] == UInt8(ascii: "\\"), i + 1 < range.upperBound, b[i + 1] == UInt8(ascii: "\"") || b[i + 1] == UInt8(ascii: "\\") {
                out.append(b[i + 1])
                i += 2
            } else {
                out.append(b[i])
                i += 1
            }
        }
        return out
    }

    /// Last value wins, as most vendors' own parsers do.
    static func dictionary(_ text: String) -> [String: String] {
        let pairs = parse(text)
        var d: [String: String] = [:]
        d.reserveCapacity(pairs.count)  // growing a dictionary rehashes every key
        for (k, v) in pairs { d[k] = v }
        return d
    }
}

/// Splits one CSV record (PAN-OS, F5); `"a,b"` and `""` escapes are honoured.
enum CSVSplitter {
    static func split(_ text: String, separator: UInt8 = UInt8(ascii: ",")) -> [String] {
        var text = text
        return text.withUTF8 { b in
            // No quote anywhere (most lines): fields are the ranges between separators.
            guard b.contains(UInt8(ascii: "\"")) else {
                var fields: [String] = []
                fields.reserveCapacity(32)
                var start = 0
                for i in 0..<b.count where b[i] == separator {
                    fields.append(String(decoding: UnsafeBufferPointer(rebasing: b[start..<i]), as: UTF8.self))
                    start = i + 1
                }
                fields.append(String(decoding: UnsafeBufferPointer(rebasing: b[start...]), as: UTF8.self))
                return fields
            }
            return splitQuoted(b, separator: separator)
        }
    }

    static func splitQuoted(_ b: UnsafeBufferPointer<UInt8>, separator: UInt8) -> [String] {
        var fields: [String] = []
        var current: [UInt8] = []
        var inQuotes = false
        var i = 0
        while i < b.count {
            let c = b[i]
            if inQuotes {
                if c == UInt8(ascii: "\"") {
                    if i + 1 < b.count, b[i + 1] == UInt8(ascii: "\"") { current.append(c); i += 2; continue }
                    inQuotes = false
                } else {
                    current.append(c)
                }
            } else if c == UInt8(ascii: "\"") && current.isEmpty {
                inQuotes = true
            } else if c == separator {
                fields.append(String(decoding: current, as: UTF8.self))
                current.removeAll(keepingCapacity: true)
            } else {
                current.append(c)
            }
            i += 1
        }
        fields.append(String(decoding: current, as: UTF8.self))
        return fields
    }
}

/// Splits URLs the way ECS wants them (`url.domain`, `url.path`, `url.query`, `url.scheme`).
enum URLFields {
    static func apply(_ original: String?, to b: inout ECSBuilder) {
        guard let original, !ECSBuilder.isPlaceholder(original) else { return }
        b.set("url.original", .string(original))
        var rest = Substring(original)
        if let r = rest.byteRange(of: "://") {
            b.set("url.scheme", string: String(rest[..<r.lowerBound]))
            rest = rest[r.upperBound...]
        }
        let hostEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? rest.endIndex
        var host = rest[..<hostEnd]
        if let at = host.lastIndex(of: "@") { host = host[host.index(after: at)...] }
        if !host.hasPrefix("["), let colon = host.lastIndex(of: ":") {
            b.set("url.port", int: String(host[host.index(after: colon)...]))
            host = host[..<colon]
        }
        b.set("url.domain", string: String(host))
        let pathAndQuery = rest[hostEnd...]
        if let q = pathAndQuery.firstIndex(of: "?") {
            b.set("url.path", string: String(pathAndQuery[..<q]))
            b.set("url.query", string: String(pathAndQuery[pathAndQuery.index(after: q)...]))
        } else {
            b.set("url.path", string: String(pathAndQuery))
        }
    }
}
