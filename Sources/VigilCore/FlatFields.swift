import Synchronization

/// The output paths of one kind of event (a pack's log type), fixed when the pack is built:
/// the order the stored document lists them in, their keys pre-encoded, and the literal values
/// the pack sets (pre-encoded too).
///
/// Every object's paths are contiguous (`source.ip`, `source.port`, then `destination.*`), so
/// a document is written in one pass over the paths with a stack of open objects.
public final class FlatSchema: Sendable {
    public let paths: [String]
    /// Each path's keys, from the top level down.
    let parts: [[String]]
    /// The first part of every path (the document's top-level keys).
    public let topLevelKeys: Set<String>
    /// The paths of the document's objects (`source` and `source.nat` for `source.nat.ip`).
    public let objects: Set<String>
    let index: [String: Int]
    /// `"key":` of each path's components, by `keyOffsets[path * maxDepth + level]`.
    let keyBytes: [UInt8]
    let keyOffsets: [Int32]
    let keyLengths: [Int32]
    let depths: [Int32]
    /// For two paths, how many leading object components (not the last, the member) they share.
    let shared: [Int32]
    let literalBytes: [[UInt8]]
    let literalValues: [JSONValue]
    static let maxDepth = 8

    public struct Invalid: Error, CustomStringConvertible {
        public let description: String
    }

    /// - Parameters:
    ///   - paths: dotted paths, each object's contiguous, none of them also an object's path
    ///     (`a.b` and `a.b.c`), none repeated, at most eight parts each, no empty part.
    ///   - literals: the values `FlatFields.set(_:literal:)` refers to by position.
    public init(paths: [String], literals: [JSONValue] = []) throws(Invalid) {
        var index: [String: Int] = [:]
        var keys: [[String]] = []
        for (position, path) in paths.enumerated() {
            let parts = path.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            guard !parts.contains(where: \.isEmpty), parts.count <= Self.maxDepth else {
                throw Invalid(description: "path '\(path)' has an empty part or more than \(Self.maxDepth) parts")
            }
            guard index.updateValue(position, forKey: path) == nil else { throw Invalid(description: "path '\(path)' is listed twice") }
            keys.append(parts)
        }
        // An object's paths must be contiguous: once a prefix is left, it never comes back.
        var closed = Set<String>()
        var open: [String] = []
        for (position, parts) in keys.enumerated() {
            let objects = parts.dropLast()
            var common = 0
            while common < open.count, common < objects.count, open[common] == objects[objects.startIndex + common] { common += 1 }
            for level in stride(from: open.count - 1, through: common, by: -1) { closed.insert(open[...level].joined(separator: ".")) }
            open = Array(objects)
            for level in 0..<objects.count {
                let prefix = objects[...(objects.startIndex + level)].joined(separator: ".")
                if level >= common, closed.contains(prefix) {
                    throw Invalid(description: "path '\(paths[position])' comes after '\(prefix)' was left: an object's paths must be contiguous")
                }
                if index[prefix] != nil { throw Invalid(description: "'\(prefix)' is both a value and an object") }
            }
        }
        var keyBytes: [UInt8] = []
        var offsets = [Int32](repeating: 0, count: paths.count * Self.maxDepth), lengths = offsets
        for (position, parts) in keys.enumerated() {
            for (level, part) in parts.enumerated() {
                var sink = ByteSink(capacity: part.utf8.count + 8)
                JSONWriter.writeString(part, into: &sink)
                sink.append(UInt8(ascii: ":"))
                let encoded = sink.array()
                offsets[position * Self.maxDepth + level] = Int32(keyBytes.count)
                lengths[position * Self.maxDepth + level] = Int32(encoded.count)
                keyBytes += encoded
            }
        }
        var shared = [Int32](repeating: 0, count: paths.count * paths.count)
        for a in keys.indices {
            for b in keys.indices {
                var common = 0
                while common < keys[a].count - 1, common < keys[b].count - 1, keys[a][common] == keys[b][common] { common += 1 }
                shared[a * paths.count + b] = Int32(common)
            }
        }
        self.paths = paths
        parts = keys
        topLevelKeys = Set(keys.map { $0[0] })
        objects = Set(keys.flatMap { parts in (1..<parts.count).map { parts[..<$0].joined(separator: ".") } })
        self.index = index
        self.keyBytes = keyBytes
        keyOffsets = offsets
        keyLengths = lengths
        depths = keys.map { Int32($0.count) }
        self.shared = shared
        literalValues = literals
        literalBytes = literals.map { JSONWriter.bytes($0) }
    }

    /// The position of a path (looked up once, when a pack is built).
    public func path(_ name: String) -> Int? { index[name] }
}

/// The positions of a fixed list of paths in each schema it is asked about, looked up once per
/// schema (the schema is kept while cached, so its identifier cannot be reused by another).
public final class FlatPathLookup: Sendable {
    public let names: [String]
    let cache = Mutex<[ObjectIdentifier: (schema: FlatSchema, positions: [Int?])]>([:])

    public init(_ names: [String]) { self.names = names }

    /// By `names`: each one's position in `schema`, nil where it has none.
    public func positions(in schema: FlatSchema) -> [Int?] {
        cache.withLock { cache in
            if let known = cache[ObjectIdentifier(schema)] { return known.positions }
            let found = names.map { schema.path($0) }
            cache[ObjectIdentifier(schema)] = (schema, found)
            return found
        }
    }
}

/// One event's fields as values over one byte buffer: the text of a field is a range of the
/// line it was parsed from (or of bytes appended after it), a number is a number, and a value
/// every event of a kind shares (`"firewall"`, `["network"]`) is a literal of the schema. No
/// `String` or nested `JSONObject` is made per field: the stored document is written from the
/// ranges (`write`), and the nested document is built only for what needs one (`object()`).
public struct FlatFields: Sendable {
    public struct Value: Sendable, Equatable {
        enum Kind: UInt8, Sendable { case none, text, int, literal, texts, members }
        var kind: Kind = .none
        /// `.text`: the range's start in `bytes`; `.texts`: the first range in `lists`;
        /// `.members`: the first key's range in `lists` (each key is followed by its value's).
        var start: Int32 = 0
        /// `.text`: the range's length; `.texts`: the number of ranges; `.members`: of members.
        var count: Int32 = 0
        /// `.int`: the number; `.literal`: its position in the schema's literals.
        var number: Int64 = 0
    }

    public let schema: FlatSchema
    /// The line the fields were parsed from, then any bytes the fields needed that it does not
    /// hold (a lower-cased copy, a mapped name).
    public private(set) var bytes: [UInt8]
    var values: [Value]
    var lists: [Range<Int32>] = []

    /// - Parameter bytes: valid UTF-8 (the fields' texts are written as they are).
    public init(schema: FlatSchema, bytes: [UInt8]) {
        self.schema = schema
        self.bytes = bytes
        values = [Value](repeating: Value(), count: schema.paths.count)
    }

    public func isSet(_ path: Int) -> Bool { values[path].kind != .none }

    /// Sets the text at `range` of `bytes`.
    public mutating func set(_ path: Int, text range: Range<Int>) {
        values[path] = Value(kind: .text, start: Int32(range.lowerBound), count: Int32(range.count))
    }

    /// Appends `text` to `bytes` and sets it.
    public mutating func set(_ path: Int, copying text: some Collection<UInt8>) {
        set(path, text: append(text))
    }

    /// Appends `text` to `bytes`; returns its range there.
    public mutating func append(_ text: some Collection<UInt8>) -> Range<Int> {
        let start = bytes.count
        // Called from the packs' module, this is the unspecialized generic: `append(contentsOf:)`
        // on the collection itself then found its type at run time and copied byte by byte
        // through witness calls. Its contiguous bytes (a String's, an array's) are one copy.
        if text.withContiguousStorageIfAvailable({ bytes.append(contentsOf: UnsafeRawBufferPointer($0)) }) == nil {
            bytes.append(contentsOf: text)
        }
        return start..<bytes.count
    }

    public mutating func set(_ path: Int, int: Int64) {
        values[path] = Value(kind: .int, number: int)
    }

    /// Sets the schema's literal at `literal`.
    public mutating func set(_ path: Int, literal: Int) {
        values[path] = Value(kind: .literal, number: Int64(literal))
    }

    /// Sets an array of the texts at `ranges` of `bytes`.
    public mutating func set(_ path: Int, texts ranges: [Range<Int>]) {
        let first = lists.count
        for range in ranges { lists.append(Int32(range.lowerBound)..<Int32(range.upperBound)) }
        values[path] = Value(kind: .texts, start: Int32(first), count: Int32(ranges.count))
    }

    /// Sets an object whose members are the keys and texts at `members`' ranges of `bytes`, in
    /// that order (the fields a vendor sends that have no ECS name, under one object). The
    /// keys must be distinct; an object with no members is set as an empty object.
    public mutating func set(_ path: Int, members: [(key: Range<Int>, value: Range<Int>)]) {
        let first = lists.count
        for member in members {
            lists.append(Int32(member.key.lowerBound)..<Int32(member.key.upperBound))
            lists.append(Int32(member.value.lowerBound)..<Int32(member.value.upperBound))
        }
        values[path] = Value(kind: .members, start: Int32(first), count: Int32(members.count))
    }

    public mutating func remove(_ path: Int) { values[path] = Value() }

    /// The range of the text at `path`; nil when it holds no text.
    public func textRange(_ path: Int) -> Range<Int>? {
        let value = values[path]
        guard value.kind == .text else { return nil }
        return Int(value.start)..<Int(value.start + value.count)
    }

    /// Whether `body` returns true for the bytes of the text at `path`, or of any text of the
    /// list there (tried in order); false when `path` is not set. Nil when it holds a number, a
    /// literal or an object: read those through `value`.
    public func containsText(_ path: Int, where body: (UnsafeBufferPointer<UInt8>) -> Bool) -> Bool? {
        let value = values[path]
        switch value.kind {
        case .none:
            return false
        case .text:
            return bytes.withUnsafeBufferPointer { body(UnsafeBufferPointer(rebasing: $0[Int(value.start)..<Int(value.start + value.count)])) }
        case .texts:
            return bytes.withUnsafeBufferPointer { bytes in
                lists[Int(value.start)..<Int(value.start + value.count)].contains { body(UnsafeBufferPointer(rebasing: bytes[Int($0.lowerBound)..<Int($0.upperBound)])) }
            }
        case .int, .literal, .members:
            return nil
        }
    }

    public func text(_ path: Int) -> String? {
        textRange(path).map { range in bytes.withUnsafeBufferPointer { String(decoding: UnsafeBufferPointer(rebasing: $0[range]), as: UTF8.self) } }
    }

    public func int(_ path: Int) -> Int64? {
        values[path].kind == .int ? values[path].number : nil
    }

    /// The value at `path` as a document would hold it.
    public func value(_ path: Int) -> JSONValue? {
        let value = values[path]
        switch value.kind {
        case .none: return nil
        case .text: return text(path).map(JSONValue.string)
        case .int: return .int(value.number)
        case .literal: return schema.literalValues[Int(value.number)]
        case .texts:
            return bytes.withUnsafeBufferPointer { bytes in
                .array(lists[Int(value.start)..<Int(value.start + value.count)].map {
                    .string(String(decoding: UnsafeBufferPointer(rebasing: bytes[Int($0.lowerBound)..<Int($0.upperBound)]), as: UTF8.self))
                })
            }
        case .members:
            return bytes.withUnsafeBufferPointer { bytes in
                func text(_ range: Range<Int32>) -> String {
                    String(decoding: UnsafeBufferPointer(rebasing: bytes[Int(range.lowerBound)..<Int(range.upperBound)]), as: UTF8.self)
                }
                let first = Int(value.start)
                return .object(JSONObject((0..<Int(value.count)).map { (text(lists[first + 2 * $0]), .string(text(lists[first + 2 * $0 + 1]))) }))
            }
        }
    }

    /// Whether setting `members` in the document (`object(setting:)`) would replace one of
    /// its own top-level members: then only that document tells what it holds.
    public func isReplaced(by members: JSONObject) -> Bool {
        members.members.contains { schema.topLevelKeys.contains($0.key) }
    }

    /// What the fields say of the value at a dotted path of their document with `members` set
    /// in it (none replacing one of its own, `isReplaced(by:)`): `.some` of a path they hold,
    /// `.some(nil)` for one that document cannot hold, and nil where only the document can
    /// tell: a path under one of `members`, one naming an object of theirs, one inside one of
    /// their values (a list, an object of the line's keys). Their document has no dotted key
    /// outside their values (a schema's paths are split at every dot), so it is read part by
    /// part: what `JSONValue.value(atPath:)` finds there.
    public func documentValue(atPath path: String, setting members: JSONObject) -> JSONValue?? {
        let utf8 = path.utf8
        let firstDot = utf8.firstIndex(of: UInt8(ascii: "."))
        let first = path[..<(firstDot ?? path.endIndex)]
        if members.members.contains(where: { $0.key == first }) { return nil }
        if let position = schema.path(path) { return .some(value(position)) }
        if schema.objects.contains(path) { return nil }
        guard var dot = firstDot, schema.topLevelKeys.contains(String(first)) else { return .some(nil) }
        while true {
            if schema.path(String(path[..<dot])) != nil { return nil }
            guard let next = utf8[utf8.index(after: dot)...].firstIndex(of: UInt8(ascii: ".")) else { return .some(nil) }
            dot = next
        }
    }

    /// The nested document with members set at its top level (replaced where it has them,
    /// else added after its own).
    public func object(setting members: JSONObject) -> JSONObject {
        var fields = object()
        for member in members.members { fields[member.key] = member.value }
        return fields
    }

    /// The nested document, members in schema order.
    ///
    /// In one pass over the paths with a stack of open objects, as `write` does (every
    /// object's paths are contiguous): a `FieldTree` split each path and looked each of its
    /// keys up again, which per-event rules paid for on every line.
    public func object() -> JSONObject {
        let schema = schema, count = schema.paths.count
        // The members of each open object, the top level first, and the keys of all but it.
        var open: [[(key: String, value: JSONValue)]] = [[]]
        var keys: [String] = []
        open[0].reserveCapacity(8)
        func close(to level: Int) {
            while keys.count > level {
                let members = open.removeLast()
                open[open.count - 1].append((keys.removeLast(), .object(JSONObject(members))))
            }
        }
        var previous = -1
        for path in 0..<count {
            guard let value = value(path) else { continue }
            let parts = schema.parts[path]
            close(to: previous >= 0 ? min(keys.count, Int(schema.shared[path * count + previous])) : 0)
            for level in keys.count..<(parts.count - 1) {
                keys.append(parts[level])
                open.append([])
            }
            open[open.count - 1].append((parts[parts.count - 1], value))
            previous = path
        }
        close(to: 0)
        return JSONObject(open[0])
    }

    /// The document as compact JSON, members in schema order.
    ///
    /// - Parameters:
    ///   - omitting: paths left out; the objects that hold them are still written (even
    ///     empty), as the stored form leaves out the columns' fields (`IndexedColumns`).
    ///   - appending: members added at the top level, after the fields.
    public func write(omitting: [Bool]? = nil, appending: [(key: String, value: JSONValue)] = []) -> [UInt8] {
        // Everything the loop changes is a local of the closure (a nested function capturing
        // the sink or the depth made every access to them a checked, boxed one).
        bytes.withUnsafeBufferPointer { bytes in
            var writer = Writer(capacity: bytes.count * 2 + 256)
            let schema = schema, count = schema.paths.count, maxDepth = FlatSchema.maxDepth
            var previous = -1
            for path in 0..<count {
                let value = values[path]
                guard value.kind != .none else { continue }
                let levels = Int(schema.depths[path])
                let common = previous >= 0 ? min(writer.depth, Int(schema.shared[path * count + previous])) : 0
                writer.close(to: common)
                for level in common..<(levels - 1) {
                    writer.key(schema, path * maxDepth + level)
                    writer.open()
                }
                previous = path
                if let omitting, omitting[path] { continue }
                writer.key(schema, path * maxDepth + levels - 1)
                switch value.kind {
                case .none: break
                case .text:
                    JSONWriter.writeEscaped(UnsafeBufferPointer(rebasing: bytes[Int(value.start)..<Int(value.start + value.count)]), into: &writer.out)
                case .int: JSONWriter.writeInt(value.number, into: &writer.out)
                case .literal: schema.literalBytes[Int(value.number)].withUnsafeBytes { writer.out.append($0) }
                case .texts:
                    writer.out.append(UInt8(ascii: "["))
                    for index in Int(value.start)..<Int(value.start + value.count) {
                        if index > Int(value.start) { writer.out.append(UInt8(ascii: ",")) }
                        let range = lists[index]
                        JSONWriter.writeEscaped(UnsafeBufferPointer(rebasing: bytes[Int(range.lowerBound)..<Int(range.upperBound)]), into: &writer.out)
                    }
                    writer.out.append(UInt8(ascii: "]"))
                case .members:
                    writer.out.append(UInt8(ascii: "{"))
                    for member in 0..<Int(value.count) {
                        if member > 0 { writer.out.append(UInt8(ascii: ",")) }
                        let key = lists[Int(value.start) + 2 * member], text = lists[Int(value.start) + 2 * member + 1]
                        JSONWriter.writeEscaped(UnsafeBufferPointer(rebasing: bytes[Int(key.lowerBound)..<Int(key.upperBound)]), into: &writer.out)
                        writer.out.append(UInt8(ascii: ":"))
                        JSONWriter.writeEscaped(UnsafeBufferPointer(rebasing: bytes[Int(text.lowerBound)..<Int(text.upperBound)]), into: &writer.out)
                    }
                    writer.out.append(UInt8(ascii: "}"))
                }
            }
            writer.close(to: 0)
            for (key, value) in appending {
                writer.comma()
                JSONWriter.writeString(key, into: &writer.out)
                writer.out.append(UInt8(ascii: ":"))
                JSONWriter.write(value, into: &writer.out)
            }
            writer.out.append(UInt8(ascii: "}"))
            return writer.out.array()
        }
    }

    /// The output and the objects open in it.
    struct Writer: ~Copyable {
        var out: ByteSink
        var depth = 0
        /// Bit d: nothing written yet in the object open at depth d (the top level is 0).
        var fresh: UInt64 = 1

        init(capacity: Int) {
            out = ByteSink(capacity: capacity)
            out.append(UInt8(ascii: "{"))
        }

        mutating func comma() {
            if fresh & (1 << UInt64(depth)) == 0 { out.append(UInt8(ascii: ",")) } else { fresh &= ~(1 << UInt64(depth)) }
        }

        /// A member's `"key":`, from the schema's encoded keys (`FlatSchema.keyOffsets` slot).
        mutating func key(_ schema: FlatSchema, _ slot: Int) {
            comma()
            let offset = Int(schema.keyOffsets[slot])
            schema.keyBytes.withUnsafeBytes { out.append(UnsafeRawBufferPointer(rebasing: $0[offset..<(offset + Int(schema.keyLengths[slot]))])) }
        }

        mutating func open() {
            out.append(UInt8(ascii: "{"))
            depth += 1
            fresh |= 1 << UInt64(depth)
        }

        mutating func close(to level: Int) {
            while depth > level {
                out.append(UInt8(ascii: "}"))
                depth -= 1
            }
        }
    }
}
