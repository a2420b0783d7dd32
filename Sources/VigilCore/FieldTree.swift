#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Builds a nested document from dotted paths, with the meaning of calling
/// `FieldNesting.set` once per path, in order, on `base`.
///
/// Protocol packs set 30 to 80 paths per line. Setting each one straight into a
/// `JSONObject` made a `String` per path part, copied each object on the way out of its
/// parent and back, and grew every members array one append at a time. Here a path part is
/// a byte range in one buffer, an object is a list of nodes in one array, and the nested
/// `JSONObject`s are made once, at their final size, by `object()`.
///
/// ```swift
/// var tree = FieldTree()
/// tree.set(.string("10.0.0.1"), at: "source.ip")
/// tree.set(.int(443), at: "source.port")
/// tree.object() // {"source": {"ip": "10.0.0.1", "port": 443}}
/// ```
public struct FieldTree: Sendable {
    struct Node: Sendable {
        /// The key's UTF-8 bytes in `keys`.
        var keyStart: Int32
        var keyCount: Int32
        /// False when the key has a byte ≥ 0x80: such keys compare as `String`s (canonical
        /// equivalence), as `JSONObject`'s subscript does.
        var keyIsASCII: Bool
        /// A member's value; nil for an object made of child nodes.
        var value: JSONValue?
        var firstChild: Int32 = -1
        var lastChild: Int32 = -1
        var next: Int32 = -1
        var childCount: Int32 = 0
    }

    var nodes: [Node]
    var keys: [UInt8] = []
    /// A member of `base` had a dotted key: lookups go through the built object, where
    /// `value(atPath:)` also finds literal dotted keys.
    var baseHasDottedKey = false

    public init() {
        nodes = [Node(keyStart: 0, keyCount: 0, keyIsASCII: true, value: nil)]
        nodes.reserveCapacity(64)
        keys.reserveCapacity(512)
    }

    /// Starts from an existing document: its members are kept, in order, as they are.
    public init(_ base: JSONObject) {
        self.init()
        for (key, value) in base.members {
            let node = appendNode(key: key.utf8, to: 0)
            nodes[node].value = value
            if key.utf8.contains(UInt8(ascii: ".")) { baseHasDottedKey = true }
        }
    }

    public var isEmpty: Bool { nodes[0].firstChild < 0 }

    /// Sets `value` at a dotted path, replacing what is there; empty parts are skipped
    /// (`a..b` is `a.b`), as `FieldNesting.set` does.
    public mutating func set(_ value: JSONValue, at path: String) {
        var path = path
        path.withUTF8 { set(value, $0) }
    }

    mutating func set(_ value: JSONValue, _ path: UnsafeBufferPointer<UInt8>) {
        var node = 0
        var cursor = PathCursor(path)
        guard var part = cursor.next() else { return }
        while true {
            let found = child(of: node, named: path, part)
            guard let following = cursor.next() else {
                // The last part: replace the member's value, or add the member.
                let target = found ?? appendNode(key: UnsafeBufferPointer(rebasing: path[part.range]), ascii: part.isASCII, to: node)
                nodes[target].value = value
                nodes[target].firstChild = -1
                nodes[target].lastChild = -1
                nodes[target].childCount = 0
                return
            }
            guard let existing = found else {
                node = appendNode(key: UnsafeBufferPointer(rebasing: path[part.range]), ascii: part.isASCII, to: node)
                part = following
                continue
            }
            // An object made of nodes, the usual case: looked at without copying (and
            // retaining) the value to switch over it.
            if nodes.withUnsafeBufferPointer({ $0[existing].value == nil }) {
                node = existing
                part = following
                continue
            }
            switch nodes[existing].value {
            case nil:
                node = existing
            case .object(var object)?:
                // A document set as a value: the rest of the path goes into it, as it would
                // have in the nested form. Taken out first so it is changed in place.
                nodes[existing].value = .null
                FieldNesting.setPath(value, path, from: following.range.lowerBound, in: &object)
                nodes[existing].value = .object(object)
                return
            case .some:
                // A scalar on the way is replaced by an object, at its place.
                nodes[existing].value = nil
                node = existing
            }
            part = following
        }
    }

    /// The value at a dotted path, as `JSONValue.value(atPath:)` finds it in `object()`.
    public func value(atPath path: String) -> JSONValue? {
        if baseHasDottedKey { return JSONValue.object(object()).value(atPath: path) }
        var copy = path
        return copy.withUTF8 { bytes -> JSONValue? in
            // `value(atPath:)` treats an empty part differently when it meets a literal dotted
            // key (`a..b` does not find `{"a": {".b": 1}}`'s sibling forms): ask it directly.
            if Self.hasEmptyPart(bytes) { return JSONValue.object(object()).value(atPath: path) }
            var node = 0
            var cursor = PathCursor(bytes)
            guard var part = cursor.next() else { return .object(object()) }
            while true {
                guard let found = child(of: node, named: bytes, part) else { return nil }
                let following = cursor.next()
                guard let value = nodes[found].value else {
                    guard let following else { return .object(object(of: found)) }
                    node = found
                    part = following
                    continue
                }
                guard let following else { return value }
                guard case .object = value else { return nil }
                let rest = path.utf8.index(path.utf8.startIndex, offsetBy: following.range.lowerBound)
                return value.value(atPath: path[rest...])
            }
        }
    }

    static func hasEmptyPart(_ path: UnsafeBufferPointer<UInt8>) -> Bool {
        let dot = UInt8(ascii: ".")
        guard let first = path.first, let last = path.last else { return true }
        if first == dot || last == dot { return true }
        var previous: UInt8 = 0
        for byte in path {
            if byte == dot, previous == dot { return true }
            previous = byte
        }
        return false
    }

    /// The nested document.
    public func object() -> JSONObject { object(of: 0) }

    func object(of parent: Int) -> JSONObject {
        var members: [(key: String, value: JSONValue)] = []
        members.reserveCapacity(Int(nodes[parent].childCount))
        var index = nodes[parent].firstChild
        keys.withUnsafeBufferPointer { keys in
            while index >= 0 {
                let start = Int(nodes[Int(index)].keyStart)
                let key = String(decoding: UnsafeBufferPointer(rebasing: keys[start..<(start + Int(nodes[Int(index)].keyCount))]), as: UTF8.self)
                members.append((key, nodes[Int(index)].value ?? .object(object(of: Int(index)))))
                index = nodes[Int(index)].next
            }
        }
        return JSONObject(members)
    }

    // MARK: - Nodes

    /// The first child of `parent` whose key is the path part, as `JSONObject`'s subscript
    /// finds the first member with a key.
    func child(of parent: Int, named path: UnsafeBufferPointer<UInt8>, _ part: PathCursor.Part) -> Int? {
        var index = nodes[parent].firstChild
        let count = part.range.count
        return keys.withUnsafeBufferPointer { keys -> Int? in
            nodes.withUnsafeBufferPointer { nodes -> Int? in
                while index >= 0 {
                    // Fields by pointer: copying a node would retain its value.
                    let node = nodes.baseAddress! + Int(index)
                    let start = Int(node.pointee.keyStart), keyCount = Int(node.pointee.keyCount)
                    if keyCount == count, memcmp(keys.baseAddress! + start, path.baseAddress! + part.range.lowerBound, count) == 0 {
                        return Int(index)
                    }
                    if !(node.pointee.keyIsASCII && part.isASCII) {
                        let key = String(decoding: UnsafeBufferPointer(rebasing: keys[start..<(start + keyCount)]), as: UTF8.self)
                        if key == String(decoding: UnsafeBufferPointer(rebasing: path[part.range]), as: UTF8.self) { return Int(index) }
                    }
                    index = node.pointee.next
                }
                return nil
            }
        }
    }

    mutating func appendNode(key: some Collection<UInt8>, to parent: Int) -> Int {
        var ascii = true
        for byte in key where byte >= 0x80 { ascii = false; break }
        let start = keys.count
        keys.append(contentsOf: key)
        return appendNode(keyStart: start, keyCount: keys.count - start, ascii: ascii, to: parent)
    }

    mutating func appendNode(key: UnsafeBufferPointer<UInt8>, ascii: Bool, to parent: Int) -> Int {
        let start = keys.count
        keys.append(contentsOf: key)
        return appendNode(keyStart: start, keyCount: key.count, ascii: ascii, to: parent)
    }

    mutating func appendNode(keyStart: Int, keyCount: Int, ascii: Bool, to parent: Int) -> Int {
        let index = nodes.count
        nodes.append(Node(keyStart: Int32(keyStart), keyCount: Int32(keyCount), keyIsASCII: ascii, value: nil))
        if nodes[parent].lastChild >= 0 {
            nodes[Int(nodes[parent].lastChild)].next = Int32(index)
        } else {
            nodes[parent].firstChild = Int32(index)
        }
        nodes[parent].lastChild = Int32(index)
        nodes[parent].childCount += 1
        return index
    }
}

/// The non-empty, dot-separated parts of a path, as byte ranges.
struct PathCursor {
    struct Part {
        var range: Range<Int>
        var isASCII: Bool
    }

    let path: UnsafeBufferPointer<UInt8>
    var position = 0

    init(_ path: UnsafeBufferPointer<UInt8>) { self.path = path }

    mutating func next() -> Part? {
        let dot = UInt8(ascii: ".")
        while position < path.count, path[position] == dot { position += 1 }
        guard position < path.count else { return nil }
        let start = position
        var ascii = true
        while position < path.count, path[position] != dot {
            if path[position] >= 0x80 { ascii = false }
            position += 1
        }
        return Part(range: start..<position, isASCII: ascii)
    }
}
