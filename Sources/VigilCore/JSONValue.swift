/// A JSON value that keeps object members in their original order.
///
/// Vigil parses every ingested line with its own parser instead of Foundation's: it is
/// faster on Linux, never traps on hostile input, and reports the byte offset where a
/// document stopped being JSON (used in quarantine details).
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    /// An integer that fits in 64 bits, kept exact.
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)
}

/// An ordered JSON object. Lookups are linear: events have tens of keys, not thousands.
public struct JSONObject: Sendable, Equatable {
    public var members: [(key: String, value: JSONValue)]

    public init() { members = [] }
    public init(_ members: [(key: String, value: JSONValue)]) { self.members = members }

    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        guard lhs.members.count == rhs.members.count else { return false }
        for (l, r) in zip(lhs.members, rhs.members) where l.key != r.key || l.value != r.value {
            return false
        }
        return true
    }

    public var isEmpty: Bool { members.isEmpty }
    public var count: Int { members.count }

    public subscript(key: String) -> JSONValue? {
        get { members.first(where: { $0.key == key })?.value }
        set {
            if let index = members.firstIndex(where: { $0.key == key }) {
                if let newValue { members[index].value = newValue } else { members.remove(at: index) }
            } else if let newValue {
                members.append((key, newValue))
            }
        }
    }

    @discardableResult
    public mutating func removeValue(forKey key: String) -> JSONValue? {
        guard let index = members.firstIndex(where: { $0.key == key }) else { return nil }
        return members.remove(at: index).value
    }
}

extension JSONValue {
    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    public var objectValue: JSONObject? {
        if case .object(let o) = self { return o }
        return nil
    }

    /// The value as text for indexing and comparisons: strings as they are, numbers and
    /// booleans in their JSON spelling, `nil` for null, arrays and objects.
    public var scalarText: String? {
        switch self {
        case .string(let s): return s
        case .int(let i): return String(i)
        case .double(let d): return JSONWriter.formatDouble(d)
        case .bool(let b): return b ? "true" : "false"
        case .null, .array, .object: return nil
        }
    }

    /// Looks up a dotted path (`host.name`) in nested objects; a literal dotted key at any
    /// level is found too, so `{"host.name": "a"}` and `{"host": {"name": "a"}}` agree.
    public func value(atPath path: String) -> JSONValue? { value(atPath: Substring(path)) }

    /// The same on a part of a path, without allocating (fields absent from most events are
    /// looked up often, e.g. by detection rules).
    func value(atPath path: Substring) -> JSONValue? {
        guard case .object(let object) = self else { return nil }
        if let nested = value(atDottedKeys: path) { return nested }
        if let direct = object.member(path) { return direct }
        var rest = path
        while let dot = rest.utf8.firstIndex(of: UInt8(ascii: ".")) {
            if let child = object.member(path[path.startIndex..<dot]), case .object = child,
               let found = child.value(atPath: path[path.index(after: dot)...]) {
                return found
            }
            rest = rest[rest.index(after: dot)...]
        }
        return nil
    }

    /// Nested objects, one key per non-empty dot-separated part.
    func value(atDottedKeys path: Substring) -> JSONValue? {
        var current = self
        var start = path.startIndex
        while true {
            // By byte: a Character search walks grapheme clusters, and rules look paths up
            // for every event they see.
            let end = path[start...].utf8.firstIndex(of: UInt8(ascii: ".")) ?? path.endIndex
            if start < end {
                guard case .object(let object) = current, let next = object.member(path[start..<end]) else { return nil }
                current = next
            }
            guard end < path.endIndex else { return current }
            start = path.index(after: end)
        }
    }
}

extension JSONObject {
    /// Whether only a string of the same UTF-8 length can equal `key`: plain ASCII without
    /// `K`, `` ` `` or `;`, which alone have canonically equivalent forms of other lengths
    /// (the Kelvin sign, U+1FEF, the Greek question mark).
    static func lengthDecides(_ key: String) -> Bool {
        key.utf8.allSatisfy { $0 < 0x80 && $0 != UInt8(ascii: "K") && $0 != UInt8(ascii: "`") && $0 != UInt8(ascii: ";") }
    }

    /// The value of the first member named each of `keys`, as the subscript finds it, in one
    /// pass over the members. Each key must pass `lengthDecides` (lower-case ECS names do), so
    /// a member of another length is ruled out without comparing.
    public func firstValues(of keys: [String]) -> [JSONValue?] {
        var values: [JSONValue?] = []
        values.reserveCapacity(keys.count)
        for _ in 0..<keys.count { values.append(nil) }
        values.withUnsafeMutableBufferPointer { firstValues(of: keys, into: $0) }
        return values
    }

    /// `firstValues(of:)` into `values` (one per key, nil on entry).
    func firstValues(of keys: [String], into values: UnsafeMutableBufferPointer<JSONValue?>) {
        members.withUnsafeBufferPointer { members in
            for m in 0..<members.count {
                let count = members[m].key.utf8.count
                for k in 0..<keys.count where values[k] == nil && keys[k].utf8.count == count && members[m].key == keys[k] {
                    values[k] = members[m].value
                }
            }
        }
    }

    /// The value at each of `paths`, as `JSONValue.value(atKeys:)` finds it, with the roots
    /// looked up in one pass over the top level.
    public func values(at paths: KeyPathSet) -> [JSONValue?] {
        // The roots on the stack: `Array(repeating:count:)` looked its storage type up in the
        // runtime's metadata cache on every call, and this runs for every ingested event.
        withUnsafeTemporaryAllocation(of: JSONValue?.self, capacity: paths.roots.count) { roots in
            roots.initialize(repeating: nil)
            defer { roots.deinitialize() }
            firstValues(of: paths.roots, into: roots)
            // Through the buffers, the keys below each root in one flat array: a set's tables
            // are shared by every thread that reads documents, and a per-path array of keys was
            // retained and released for every document (an atomic write to shared memory).
            return paths.below.withUnsafeBufferPointer { below in
                paths.belowKeys.withUnsafeBufferPointer { keys in
                    var values: [JSONValue?] = []
                    values.reserveCapacity(below.count)
                    for path in 0..<below.count {
                        let rest = UnsafeBufferPointer(rebasing: keys[Int(below[path].start)..<Int(below[path].end)])
                        values.append(roots[Int(below[path].root)].flatMap { $0.value(atKeys: rest) })
                    }
                    return values
                }
            }
        }
    }

    func member(_ key: Substring) -> JSONValue? {
        members.first(where: { $0.key == key })?.value
    }
}

/// Key paths read together from many documents (threat-intel fields, stored columns): their
/// distinct first keys, and per path its first key's index and the keys below it. First keys
/// must pass `JSONObject.lengthDecides`, as `firstValues(of:)` needs (lower-case ECS names do).
public struct KeyPathSet: Sendable {
    public let paths: [[String]]
    let roots: [String]
    /// Per path, its first key's index in `roots` and its other keys, `belowKeys[start..<end]`.
    let below: [(root: Int32, start: Int32, end: Int32)]
    let belowKeys: [String]

    public init(_ paths: [[String]]) {
        self.paths = paths
        var roots: [String] = []
        for keys in paths where !roots.contains(keys[0]) { roots.append(keys[0]) }
        precondition(roots.allSatisfy(JSONObject.lengthDecides), "a first key that another text of another length can equal")
        self.roots = roots
        var below: [(root: Int32, start: Int32, end: Int32)] = []
        var belowKeys: [String] = []
        for keys in paths {
            let start = Int32(belowKeys.count)
            belowKeys += keys.dropFirst()
            below.append((Int32(roots.firstIndex(of: keys[0])!), start, Int32(belowKeys.count)))
        }
        self.below = below
        self.belowKeys = belowKeys
    }
}

extension JSONValue {
    /// Follows nested objects by key (no literal dotted keys): the fast, common case, used
    /// with key lists split once (`["host", "name"]`).
    public func value(atKeys keys: [String]) -> JSONValue? {
        keys.withUnsafeBufferPointer { value(atKeys: $0) }
    }

    func value(atKeys keys: UnsafeBufferPointer<String>) -> JSONValue? {
        var current = self
        for key in keys {
            guard case .object(let object) = current else { return nil }
            guard let next = object.members.first(where: { $0.key == key })?.value else { return nil }
            current = next
        }
        return current
    }
}

// MARK: - Parsing

/// An error raised when bytes are not one valid JSON document.
public struct JSONParseError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case unexpectedEnd = "unexpected_end"
        case unexpectedCharacter = "unexpected_character"
        case invalidNumber = "invalid_number"
        case invalidString = "invalid_string"
        case invalidEscape = "invalid_escape"
        case tooDeep = "too_deep"
        case trailingData = "trailing_data"
    }
    public var code: Code
    /// Byte offset where parsing stopped.
    public var offset: Int

    public init(code: Code, offset: Int) {
        self.code = code
        self.offset = offset
    }

    // Never includes the input: log lines carry secrets and PII.
    public var description: String { "JSON \(String(code.rawValue.map { $0 == "_" ? " " : $0 })) at byte \(offset)" }
}

/// Parses JSON from UTF-8 bytes.
public struct JSONParser {
    /// Deepest nesting accepted; deeper input is refused instead of exhausting the stack.
    public static let maxDepth = 64

    /// Parses exactly one JSON document (surrounding whitespace allowed).
    ///
    /// Inlinable, so a caller in another module copies its bytes with a specialized copy:
    /// unspecialized, `Array(bytes)` went through a witness call per byte.
    @inlinable
    public static func parse(_ bytes: some Collection<UInt8>) throws(JSONParseError) -> JSONValue {
        try parse(Array(bytes))
    }

    /// Parses exactly one JSON document (surrounding whitespace allowed).
    public static func parse(_ array: [UInt8]) throws(JSONParseError) -> JSONValue {
        try array.withUnsafeBufferPointer { buffer throws(JSONParseError) in
            var parser = Cursor(buffer: buffer)
            parser.skipWhitespace()
            let value = try parser.parseValue(depth: 0)
            parser.skipWhitespace()
            guard parser.index == buffer.count else { throw JSONParseError(code: .trailingData, offset: parser.index) }
            return value
        }
    }

    public static func parse(_ text: String) throws(JSONParseError) -> JSONValue {
        try parse(Array(text.utf8))
    }

    /// Parses a stream of concatenated JSON documents (Splunk HEC style), separated by any
    /// whitespace or nothing at all. On failure the error tells which document (0-based) broke.
    public static func parseConcatenated(_ bytes: [UInt8]) throws(ConcatenatedError) -> [JSONValue] {
        try bytes.withUnsafeBufferPointer { buffer throws(ConcatenatedError) in
            var parser = Cursor(buffer: buffer)
            var values: [JSONValue] = []
            parser.skipWhitespace()
            while parser.index < buffer.count {
                do throws(JSONParseError) {
                    values.append(try parser.parseValue(depth: 0))
                } catch {
                    throw ConcatenatedError(documentIndex: values.count, error: error)
                }
                parser.skipWhitespace()
            }
            return values
        }
    }

    public struct ConcatenatedError: Error, Sendable {
        public var documentIndex: Int
        public var error: JSONParseError
    }

    struct Cursor {
        let buffer: UnsafeBufferPointer<UInt8>
        var index = 0

        init(buffer: UnsafeBufferPointer<UInt8>) { self.buffer = buffer }

        @inline(__always) mutating func skipWhitespace() {
            while index < buffer.count {
                switch buffer[index] {
                case 0x20, 0x0A, 0x0D, 0x09: index += 1
                default: return
                }
            }
        }

        @inline(__always) func fail(_ code: JSONParseError.Code) -> JSONParseError {
            JSONParseError(code: index >= buffer.count ? .unexpectedEnd : code, offset: index)
        }

        mutating func parseValue(depth: Int) throws(JSONParseError) -> JSONValue {
            guard depth < JSONParser.maxDepth else { throw JSONParseError(code: .tooDeep, offset: index) }
            guard index < buffer.count else { throw fail(.unexpectedEnd) }
            switch buffer[index] {
            case UInt8(ascii: "{"): return .object(try parseObject(depth: depth))
            case UInt8(ascii: "["): return try parseArray(depth: depth)
            case UInt8(ascii: "\""): return .string(try parseString())
            case UInt8(ascii: "t"): try expectLiteral("true"); return .bool(true)
            case UInt8(ascii: "f"): try expectLiteral("false"); return .bool(false)
            case UInt8(ascii: "n"): try expectLiteral("null"); return .null
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
            default: throw fail(.unexpectedCharacter)
            }
        }

        mutating func expectLiteral(_ literal: StaticString) throws(JSONParseError) {
            let count = literal.utf8CodeUnitCount
            guard index + count <= buffer.count else { throw JSONParseError(code: .unexpectedEnd, offset: buffer.count) }
            let start = literal.utf8Start
            for i in 0..<count where buffer[index + i] != start[i] {
                index += i
                throw fail(.unexpectedCharacter)
            }
            index += count
        }

        mutating func parseObject(depth: Int) throws(JSONParseError) -> JSONObject {
            index += 1  // {
            var object = JSONObject()
            skipWhitespace()
            // Room for a typical object up front: growing the members array one append at a
            // time (1, 2, 4, 8, 16) was a twentieth of the ingest path's time.
            object.members.reserveCapacity(8)
            if index < buffer.count, buffer[index] == UInt8(ascii: "}") {
                index += 1
                return object
            }
            while true {
                skipWhitespace()
                guard index < buffer.count, buffer[index] == UInt8(ascii: "\"") else { throw fail(.unexpectedCharacter) }
                let key = try parseString()
                skipWhitespace()
                guard index < buffer.count, buffer[index] == UInt8(ascii: ":") else { throw fail(.unexpectedCharacter) }
                index += 1
                skipWhitespace()
                let value = try parseValue(depth: depth + 1)
                object.members.append((key, value))
                skipWhitespace()
                guard index < buffer.count else { throw fail(.unexpectedEnd) }
                if buffer[index] == UInt8(ascii: ",") { index += 1; continue }
                if buffer[index] == UInt8(ascii: "}") { index += 1; return object }
                throw fail(.unexpectedCharacter)
            }
        }

        mutating func parseArray(depth: Int) throws(JSONParseError) -> JSONValue {
            index += 1  // [
            var values: [JSONValue] = []
            skipWhitespace()
            if index < buffer.count, buffer[index] == UInt8(ascii: "]") {
                index += 1
                return .array(values)
            }
            while true {
                skipWhitespace()
                values.append(try parseValue(depth: depth + 1))
                skipWhitespace()
                guard index < buffer.count else { throw fail(.unexpectedEnd) }
                if buffer[index] == UInt8(ascii: ",") { index += 1; continue }
                if buffer[index] == UInt8(ascii: "]") { index += 1; return .array(values) }
                throw fail(.unexpectedCharacter)
            }
        }

        mutating func parseNumber() throws(JSONParseError) -> JSONValue {
            let start = index
            var isInteger = true
            if buffer[index] == UInt8(ascii: "-") { index += 1 }
            guard index < buffer.count else { throw fail(.invalidNumber) }
            if buffer[index] == UInt8(ascii: "0") {
                index += 1
            } else if (UInt8(ascii: "1")...UInt8(ascii: "9")).contains(buffer[index]) {
                while index < buffer.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(buffer[index]) { index += 1 }
            } else {
                throw fail(.invalidNumber)
            }
            if index < buffer.count, buffer[index] == UInt8(ascii: ".") {
                isInteger = false
                index += 1
                let digits = index
                while index < buffer.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(buffer[index]) { index += 1 }
                guard index > digits else { throw fail(.invalidNumber) }
            }
            if index < buffer.count, buffer[index] | 0x20 == UInt8(ascii: "e") {
                isInteger = false
                index += 1
                if index < buffer.count, buffer[index] == UInt8(ascii: "+") || buffer[index] == UInt8(ascii: "-") { index += 1 }
                let digits = index
                while index < buffer.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(buffer[index]) { index += 1 }
                guard index > digits else { throw fail(.invalidNumber) }
            }
            let text = String(decoding: UnsafeBufferPointer(rebasing: buffer[start..<index]), as: UTF8.self)
            if isInteger, let value = Int64(text) { return .int(value) }
            guard let value = Double(text) else { throw JSONParseError(code: .invalidNumber, offset: start) }
            return .double(value)
        }

        mutating func parseString() throws(JSONParseError) -> String {
            index += 1  // opening quote
            let start = index
            // Fast path: no escapes.
            var bits: UInt8 = 0
            // Eight bytes at a time while none is a quote, a backslash or a control character;
            // their high bits are kept for the ASCII check.
            if let base = buffer.baseAddress {
                let raw = UnsafeRawPointer(base)
                var wordBits: UInt64 = 0
                while buffer.count - index >= 8 {
                    let word = raw.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                    if JSONBytes.needsEscaping(word) { break }
                    wordBits |= word
                    index += 8
                }
                if wordBits & 0x8080_8080_8080_8080 != 0 { bits = 0x80 }
            }
            while index < buffer.count {
                let byte = buffer[index]
                if byte == UInt8(ascii: "\"") {
                    let slice = UnsafeBufferPointer(rebasing: buffer[start..<index])
                    index += 1
                    // ASCII needs no validation (and `String(decoding:)` has a fast path for
                    // it); anything else is validated, and refused when it is not UTF-8.
                    if bits < 0x80 { return String(decoding: slice, as: UTF8.self) }
                    guard let string = String(validating: slice, as: UTF8.self) else {
                        throw JSONParseError(code: .invalidString, offset: start)
                    }
                    return string
                }
                if byte == UInt8(ascii: "\\") { break }
                if byte < 0x20 { throw fail(.invalidString) }
                bits |= byte
                index += 1
            }
            // Escapes (Windows paths are full of them). Raw text that is ASCII with simple
            // escapes only (no `\u`) is decoded straight into the string's storage: its end is
            // found first, which bounds the decoded length.
            if bits < 0x80, let decoded = decodeSimpleEscapes(start: start) { return decoded }
            // Otherwise runs between escapes are copied whole, and text whose raw bytes are
            // ASCII needs no validation (what the escapes add is valid UTF-8 by construction).
            var bytes: [UInt8] = []
            bytes.reserveCapacity(index - start + 32)
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: buffer[start..<index]))
            while index < buffer.count {
                let byte = buffer[index]
                switch byte {
                case UInt8(ascii: "\""):
                    index += 1
                    if bits < 0x80 { return String(decoding: bytes, as: UTF8.self) }
                    guard let string = String(validating: bytes, as: UTF8.self) else {
                        throw JSONParseError(code: .invalidString, offset: start)
                    }
                    return string
                case UInt8(ascii: "\\"):
                    index += 1
                    guard index < buffer.count else { throw fail(.unexpectedEnd) }
                    let escape = buffer[index]
                    index += 1
                    switch escape {
                    case UInt8(ascii: "\""): bytes.append(0x22)
                    case UInt8(ascii: "\\"): bytes.append(0x5C)
                    case UInt8(ascii: "/"): bytes.append(0x2F)
                    case UInt8(ascii: "b"): bytes.append(0x08)
                    case UInt8(ascii: "f"): bytes.append(0x0C)
                    case UInt8(ascii: "n"): bytes.append(0x0A)
                    case UInt8(ascii: "r"): bytes.append(0x0D)
                    case UInt8(ascii: "t"): bytes.append(0x09)
                    case UInt8(ascii: "u"):
                        var scalar = try parseHex4()
                        if (0xD800...0xDBFF).contains(scalar) {
                            // A high surrogate must be followed by an escaped low surrogate.
                            if index + 1 < buffer.count, buffer[index] == UInt8(ascii: "\\"), buffer[index + 1] == UInt8(ascii: "u") {
                                index += 2
                                let low = try parseHex4()
                                guard (0xDC00...0xDFFF).contains(low) else { throw JSONParseError(code: .invalidEscape, offset: index - 6) }
                                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                            } else {
                                throw JSONParseError(code: .invalidEscape, offset: index - 6)
                            }
                        } else if (0xDC00...0xDFFF).contains(scalar) {
                            throw JSONParseError(code: .invalidEscape, offset: index - 6)
                        }
                        guard let unicode = Unicode.Scalar(scalar) else { throw JSONParseError(code: .invalidEscape, offset: index - 6) }
                        UTF8.encode(unicode) { bytes.append($0) }
                    default:
                        throw JSONParseError(code: .invalidEscape, offset: index - 1)
                    }
                default:
                    var end = index
                    while end < buffer.count {
                        let next = buffer[end]
                        if next == UInt8(ascii: "\"") || next == UInt8(ascii: "\\") { break }
                        if next < 0x20 {
                            index = end
                            throw fail(.invalidString)
                        }
                        bits |= next
                        end += 1
                    }
                    bytes.append(contentsOf: UnsafeBufferPointer(rebasing: buffer[index..<end]))
                    index = end
                }
            }
            throw fail(.unexpectedEnd)
        }

        /// The string from `index` (at a backslash; what precedes it from `start` is ASCII)
        /// when the rest is ASCII too and its escapes are all single-character ones; nil (and
        /// `index` unmoved) otherwise, or when it is malformed (the general path reports where).
        mutating func decodeSimpleEscapes(start: Int) -> String? {
            var end = index
            while end < buffer.count {
                let byte = buffer[end]
                if byte == UInt8(ascii: "\"") { break }
                if byte >= 0x80 || byte < 0x20 { return nil }
                if byte == UInt8(ascii: "\\") {
                    guard end + 1 < buffer.count else { return nil }
                    switch buffer[end + 1] {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                         UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                        end += 2
                        continue
                    default: return nil
                    }
                }
                end += 1
            }
            guard end < buffer.count else { return nil }
            let buffer = self.buffer
            let first = index
            let decoded = String(unsafeUninitializedCapacity: end - start) { out in
                // The run before the first escape, then escapes and the runs between them.
                var count = first - start
                out.baseAddress!.update(from: buffer.baseAddress! + start, count: count)
                var i = first
                while i < end {
                    var byte = buffer[i]
                    if byte == UInt8(ascii: "\\") {
                        i += 1
                        switch buffer[i] {
                        case UInt8(ascii: "b"): byte = 0x08
                        case UInt8(ascii: "f"): byte = 0x0C
                        case UInt8(ascii: "n"): byte = 0x0A
                        case UInt8(ascii: "r"): byte = 0x0D
                        case UInt8(ascii: "t"): byte = 0x09
                        default: byte = buffer[i]  // ", \\ and /
                        }
                    }
                    out[count] = byte
                    count += 1
                    i += 1
                }
                return count
            }
            index = end + 1
            return decoded
        }

        mutating func parseHex4() throws(JSONParseError) -> UInt32 {
            guard index + 4 <= buffer.count else { throw JSONParseError(code: .unexpectedEnd, offset: buffer.count) }
            var value: UInt32 = 0
            for _ in 0..<4 {
                let byte = buffer[index]
                let digit: UInt32
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
                default: throw JSONParseError(code: .invalidEscape, offset: index)
                }
                value = value << 4 | digit
                index += 1
            }
            return value
        }
    }
}

// MARK: - Writing

/// Serializes `JSONValue`s as compact UTF-8 JSON.
public enum JSONWriter {
    public static func string(_ value: JSONValue) -> String {
        var sink = ByteSink(capacity: 256)
        write(value, into: &sink)
        return sink.string()
    }

    public static func bytes(_ value: JSONValue) -> [UInt8] {
        var sink = ByteSink(capacity: 1024)  // a normalized event is about 1 KB: no regrowing on the way
        write(value, into: &sink)
        return sink.array()
    }

    static func write(_ value: JSONValue, into out: inout ByteSink) {
        switch value {
        case .null: out.append("null")
        case .bool(let b): out.append(b ? "true" : "false")
        case .int(let i): writeInt(i, into: &out)
        case .double(let d): writeString(unquoted: formatDouble(d), into: &out)
        case .string(let s): writeString(s, into: &out)
        case .array(let values):
            out.append(UInt8(ascii: "["))
            values.withUnsafeBufferPointer { values in
                for i in 0..<values.count {
                    if i > 0 { out.append(UInt8(ascii: ",")) }
                    write(values[i], into: &out)
                }
            }
            out.append(UInt8(ascii: "]"))
        case .object(let object):
            out.append(UInt8(ascii: "{"))
            // Through the buffer: reading each member out of the array would retain its key
            // and value.
            object.members.withUnsafeBufferPointer { members in
                for i in 0..<members.count {
                    if i > 0 { out.append(UInt8(ascii: ",")) }
                    writeString(members[i].key, into: &out)
                    out.append(UInt8(ascii: ":"))
                    write(members[i].value, into: &out)
                }
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// Paths of members a write may leave out (`bytes(_:omitting:values:)`), as a tree of
    /// keys built once: a node's children are contiguous, so a write finds a member's node
    /// by comparing its key with a few others, and allocates nothing.
    public struct OmittedPaths: Sendable {
        struct Node: Sendable {
            let key: String
            /// The key's UTF-8 length, and whether a key of another length cannot equal it
            /// (`JSONObject.lengthDecides`): then most members are ruled out without comparing.
            let length: Int
            let lengthDecides: Bool
            /// The index of the path the node ends (into a write's values); -1 for none.
            var path: Int
            var firstChild: Int
            var childCount: Int
        }

        /// `nodes[0]` is the root; it has no key.
        let nodes: [Node]
        /// How many paths (and so values a write takes).
        public let count: Int

        /// No path may be empty or a prefix of another (or equal to one).
        public init(_ paths: [[String]]) {
            // A trie first, then laid out breadth first so that children sit together.
            count = paths.count
            var keys = [""], ends = [-1], children: [[Int]] = [[]]
            for (index, path) in paths.enumerated() {
                precondition(!path.isEmpty, "an omitted path cannot be empty")
                var node = 0
                for key in path {
                    precondition(ends[node] < 0, "an omitted path cannot extend another")
                    if let child = children[node].first(where: { keys[$0] == key }) {
                        node = child
                    } else {
                        keys.append(key)
                        ends.append(-1)
                        children.append([])
                        children[node].append(keys.count - 1)
                        node = keys.count - 1
                    }
                }
                precondition(ends[node] < 0 && children[node].isEmpty, "an omitted path cannot be a prefix of another")
                ends[node] = index
            }
            var order = [0], position = [0: 0]
            var next = 0
            while next < order.count {
                for child in children[order[next]] {
                    position[child] = order.count
                    order.append(child)
                }
                next += 1
            }
            nodes = order.map { old in
                Node(key: keys[old], length: keys[old].utf8.count, lengthDecides: JSONObject.lengthDecides(keys[old]), path: ends[old], firstChild: children[old].first.map { position[$0]! } ?? 0, childCount: children[old].count)
            }
        }
    }

    /// Writes `object` without the members at `paths` whose values equal the write's
    /// (`values[i]` for `paths`' i-th path; nil leaves it): a member goes only when its value
    /// equals and every key on its path is unique in its object; the objects that held it
    /// stay, even empty. The same bytes as removing them first and writing the rest, without
    /// changing (and so copying) the document's nested objects.
    public static func bytes(_ object: JSONObject, omitting paths: OmittedPaths, values: [JSONValue?]) -> [UInt8] {
        precondition(values.count == paths.count, "one value per omitted path")
        var sink = ByteSink(capacity: 1024)
        paths.nodes.withUnsafeBufferPointer { nodes in
            values.withUnsafeBufferPointer { values in
                write(object, omitting: nodes, below: 0, values: values, into: &sink)
            }
        }
        return sink.array()
    }

    static func write(_ object: JSONObject, omitting nodes: UnsafeBufferPointer<OmittedPaths.Node>, below parent: Int,
                      values: UnsafeBufferPointer<JSONValue?>, into out: inout ByteSink) {
        out.append(UInt8(ascii: "{"))
        let children = nodes[parent].firstChild..<(nodes[parent].firstChild + nodes[parent].childCount)
        object.members.withUnsafeBufferPointer { members in
            var written = 0
            for i in 0..<members.count {
                // The member's node, when its key is on a path and unique in this object.
                var node = -1
                let length = members[i].key.utf8.count
                for child in children where (!nodes[child].lengthDecides || nodes[child].length == length) && nodes[child].key == members[i].key {
                    if Self.isUnique(members[i].key, in: members) { node = child }
                    break
                }
                if node >= 0, nodes[node].path >= 0, let value = values[nodes[node].path], members[i].value == value { continue }
                if written > 0 { out.append(UInt8(ascii: ",")) }
                written += 1
                writeString(members[i].key, into: &out)
                out.append(UInt8(ascii: ":"))
                if node >= 0, nodes[node].childCount > 0, case .object(let child) = members[i].value {
                    write(child, omitting: nodes, below: node, values: values, into: &out)
                } else {
                    write(members[i].value, into: &out)
                }
            }
        }
        out.append(UInt8(ascii: "}"))
    }

    static func isUnique(_ key: String, in members: UnsafeBufferPointer<(key: String, value: JSONValue)>) -> Bool {
        var count = 0
        for i in 0..<members.count where members[i].key == key {
            count += 1
            if count > 1 { return false }
        }
        return true
    }

    /// Decimal digits straight into the output, without a `String` in between.
    static func writeInt(_ value: Int64, into out: inout ByteSink) {
        if value < 0 { out.append(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes: enough for 20 digits
        var count = 0
        withUnsafeMutableBytes(of: &digits) { buffer in
            repeat {
                buffer[23 - count] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
                count += 1
            } while magnitude > 0
            out.append(UnsafeRawBufferPointer(rebasing: buffer[(24 - count)...]))
        }
    }

    static func writeString(_ s: String, into out: inout ByteSink) {
        // Native strings lend their bytes; others (bridged, shared) are copied first.
        if s.utf8.withContiguousStorageIfAvailable({ writeEscaped($0, into: &out) }) != nil { return }
        var copy = s
        copy.withUTF8 { writeEscaped($0, into: &out) }
    }

    /// A string whose bytes need no escaping (a formatted number), without quotes.
    static func writeString(unquoted s: String, into out: inout ByteSink) {
        var copy = s
        copy.withUTF8 { out.append(UnsafeRawBufferPointer($0)) }
    }

    /// The string's bytes in quotes, with `"`, `\` and control characters escaped. The bytes
    /// are tested eight at a time (the last few padded with spaces): a clean word is copied
    /// with the run it belongs to, and a word that is not names its first byte to escape, so
    /// no byte is looked at twice.
    static func writeEscaped(_ bytes: UnsafeBufferPointer<UInt8>, into out: inout ByteSink) {
        let raw = UnsafeRawBufferPointer(bytes)
        let count = bytes.count
        // Most keys and many values are short and clean: up to sixteen bytes are tested as two
        // words and stored as they are, between quotes, without the run-by-run copying below.
        if count <= 16, count > 0 {
            let first = count >= 8 ? UInt64(littleEndian: raw.loadUnaligned(as: UInt64.self)) : JSONBytes.tail(raw, from: 0)
            let second = count == 16 ? UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
                : count > 8 ? JSONBytes.tail(raw, from: 8) : JSONBytes.spaces
            if JSONBytes.escapeMask(first) | JSONBytes.escapeMask(second) == 0 {
                out.appendQuoted(first, second, count: count)
                return
            }
        }
        out.reserve(count + 2)
        out.append(UInt8(ascii: "\""))
        var i = 0
        while i < count {
            let word = count - i >= 8 ? UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)) : JSONBytes.tail(raw, from: i)
            let flagged = JSONBytes.escapeMask(word)
            // Clean bytes go out a word at a time: the word is stored whole and the count moves
            // past the bytes that belong to the string (what lies beyond is written over next).
            guard flagged != 0 else {
                let clean = min(8, count - i)
                out.appendWord(word, count: clean)
                i += clean
                continue
            }
            let before = flagged.trailingZeroBitCount / 8
            if before > 0 { out.appendWord(word, count: before) }
            let byte = bytes[i + before]
            i += before + 1
            switch byte {
            case 0x22: out.append(0x5C); out.append(0x22)
            case 0x5C: out.append(0x5C); out.append(0x5C)
            case 0x0A: out.append(0x5C); out.append(UInt8(ascii: "n"))
            case 0x0D: out.append(0x5C); out.append(UInt8(ascii: "r"))
            case 0x09: out.append(0x5C); out.append(UInt8(ascii: "t"))
            default:
                out.append("\\u00")
                out.append(Hex.digit(byte >> 4))
                out.append(Hex.digit(byte & 0xF))
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// Formats a double the way JSON readers expect; non-finite values become `null`.
    public static func formatDouble(_ d: Double) -> String {
        guard d.isFinite else { return "null" }
        if d == d.rounded(), abs(d) < 1e15 { return String(Int64(d)) }
        return "\(d)"
    }
}

/// Word-at-a-time tests on JSON string bytes, shared by the parser and the writer.
enum JSONBytes {
    /// Whether any of the word's eight bytes is `"`, `\` or below 0x20 (what a JSON string
    /// must escape): the classic zero-byte test on the word and on its XORs with `"` and `\`.
    /// It can flag a clean byte only above a byte that matches, so the word's verdict is exact.
    @inline(__always) static func needsEscaping(_ word: UInt64) -> Bool {
        escapeMask(word) != 0
    }

    /// Eight spaces: nothing escapes them.
    static let spaces: UInt64 = 0x2020_2020_2020_2020

    /// The bytes from `start` to the end (fewer than eight) as a word, the first lowest,
    /// padded with spaces (which nothing escapes).
    @inline(__always) static func tail(_ raw: UnsafeRawBufferPointer, from start: Int) -> UInt64 {
        let rest = raw.count - start
        return partialWord(raw.baseAddress! + start, count: rest) | (spaces << UInt64(8 * rest))
    }

    /// `count` bytes (fewer than eight) as a word, the first lowest and zeros above them, in
    /// at most three loads.
    @inline(__always) static func partialWord(_ bytes: UnsafeRawPointer, count: Int) -> UInt64 {
        var value: UInt64 = 0
        var filled = 0
        if count & 4 != 0 {
            value = UInt64(UInt32(littleEndian: bytes.loadUnaligned(as: UInt32.self)))
            filled = 4
        }
        if count & 2 != 0 {
            value |= UInt64(UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: filled, as: UInt16.self))) << UInt64(8 * filled)
            filled += 2
        }
        if count & 1 != 0 { value |= UInt64(bytes.load(fromByteOffset: filled, as: UInt8.self)) << UInt64(8 * filled) }
        return value
    }

    /// The high bit of each byte the test flags, the first byte of the string lowest: the
    /// lowest flagged byte is one to escape (bytes above it may be flagged by the borrow).
    @inline(__always) static func escapeMask(_ word: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101, highs: UInt64 = 0x8080_8080_8080_8080
        let quote = word ^ (ones &* 0x22), backslash = word ^ (ones &* 0x5C)
        let control = (word &- ones &* 0x20) & ~word
        return (control | ((quote &- ones) & ~quote) | ((backslash &- ones) & ~backslash)) & highs
    }
}

/// A growing byte buffer for the JSON writer: appending checks the capacity and nothing else
/// (an array also checks that its storage is unique, on every byte).
struct ByteSink: ~Copyable {
    private var base: UnsafeMutablePointer<UInt8>
    private var count = 0
    private var capacity: Int

    init(capacity: Int) {
        self.capacity = max(capacity, 16)
        base = .allocate(capacity: self.capacity)
    }

    deinit { base.deallocate() }

    @inline(__always) mutating func reserve(_ extra: Int) {
        if count + extra > capacity { grow(to: count + extra) }
    }

    @inline(never) mutating func grow(to needed: Int) {
        var newCapacity = capacity * 2
        while newCapacity < needed { newCapacity *= 2 }
        let newBase = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        newBase.update(from: base, count: count)
        base.deallocate()
        base = newBase
        capacity = newCapacity
    }

    @inline(__always) mutating func append(_ byte: UInt8) {
        if count == capacity { grow(to: count + 1) }
        base[count] = byte
        count += 1
    }

    @inline(__always) mutating func append(_ bytes: UnsafeRawBufferPointer) {
        guard let source = bytes.baseAddress, bytes.count > 0 else { return }
        reserve(bytes.count)
        (base + count).update(from: source.assumingMemoryBound(to: UInt8.self), count: bytes.count)
        count += bytes.count
    }

    /// `"`, the first `count` (1 to 16) bytes of two words (the first byte lowest), `"`: the
    /// words are stored whole, and what lies past the closing quote is left for later writes.
    @inline(__always) mutating func appendQuoted(_ first: UInt64, _ second: UInt64, count bytes: Int) {
        reserve(18)
        let at = UnsafeMutableRawPointer(base + count)
        at.storeBytes(of: UInt8(ascii: "\""), as: UInt8.self)
        at.storeBytes(of: first.littleEndian, toByteOffset: 1, as: UInt64.self)
        at.storeBytes(of: second.littleEndian, toByteOffset: 9, as: UInt64.self)
        at.storeBytes(of: UInt8(ascii: "\""), toByteOffset: 1 + bytes, as: UInt8.self)
        count += bytes + 2
    }

    /// The first `bytes` (1 to 8) bytes of a word, the first byte lowest: the word is stored
    /// whole, and what lies past those bytes is left for later writes.
    @inline(__always) mutating func appendWord(_ word: UInt64, count bytes: Int) {
        reserve(8)
        UnsafeMutableRawPointer(base + count).storeBytes(of: word.littleEndian, as: UInt64.self)
        count += bytes
    }

    @inline(__always) mutating func append(_ literal: StaticString) {
        append(UnsafeRawBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount))
    }

    func array() -> [UInt8] { Array(UnsafeBufferPointer(start: base, count: count)) }

    func string() -> String { String(decoding: UnsafeBufferPointer(start: base, count: count), as: UTF8.self) }
}
