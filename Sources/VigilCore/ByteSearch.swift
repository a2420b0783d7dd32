#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The offsets of one byte in raw memory, found with `memchr` (a vector at a time, where a
/// Swift loop looks at every byte): line ends of request bodies and of files being counted.
public enum ByteScan {
    /// Calls `body` with the offset of each `byte` in `bytes`, in order.
    @inlinable
    public static func forEachOffset(of byte: UInt8, in bytes: UnsafeRawBufferPointer, _ body: (Int) throws -> Void) rethrows {
        guard let base = bytes.baseAddress else { return }
        var offset = 0
        while offset < bytes.count, let hit = memchr(base + offset, Int32(byte), bytes.count - offset) {
            let at = UnsafeRawPointer(hit) - base
            try body(at)
            offset = at + 1
        }
    }

    /// How many times `byte` occurs in `bytes`.
    @inlinable
    public static func count(of byte: UInt8, in bytes: UnsafeRawBufferPointer) -> Int {
        var count = 0
        forEachOffset(of: byte, in: bytes) { _ in count += 1 }
        return count
    }

    /// The offset of the first occurrence of a non-empty `needle` in `haystack`: `memchr` for
    /// its first byte, `memcmp` for the rest.
    @inlinable
    public static func firstOffset(of needle: UnsafeBufferPointer<UInt8>, in haystack: UnsafeBufferPointer<UInt8>) -> Int? {
        guard let base = haystack.baseAddress, let wanted = needle.baseAddress, needle.count <= haystack.count else { return nil }
        let last = haystack.count - needle.count
        var offset = 0
        while offset <= last {
            guard let hit = memchr(base + offset, Int32(wanted.pointee), last - offset + 1) else { return nil }
            let at = UnsafeRawPointer(hit) - UnsafeRawPointer(base)
            if memcmp(base + at, wanted, needle.count) == 0 { return at }
            offset = at + 1
        }
        return nil
    }

    /// The IPv4 address `bytes` spell, as a number: four dot-separated decimal parts of one to
    /// three ASCII digits, each at most 255 (leading zeros allowed). Nil for anything else.
    @inlinable
    public static func ipv4(_ bytes: some Sequence<UInt8>) -> UInt32? {
        var value: UInt32 = 0, part: UInt32 = 0, digits = 0, dots = 0
        for byte in bytes {
            if byte == UInt8(ascii: ".") {
                guard digits > 0, dots < 3 else { return nil }
                value = value << 8 | part
                dots += 1
                part = 0
                digits = 0
            } else if byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") {
                guard digits < 3 else { return nil }
                part = part * 10 + UInt32(byte - UInt8(ascii: "0"))
                guard part <= 255 else { return nil }
                digits += 1
            } else {
                return nil
            }
        }
        guard digits > 0, dots == 3 else { return nil }
        return value << 8 | part
    }
}

/// Byte-level (UTF-8) searching and splitting for the parsing hot paths.
///
/// `String.contains(_:)` and `range(of:)` from Foundation convert to UTF-16 and compare
/// characters with canonical equivalence; `split(separator:)` on a `Character` walks grapheme
/// clusters. On the syslog path those were most of a pack's time. Log formats are defined on
/// bytes: an ASCII separator or marker can only match ASCII bytes in UTF-8 (continuation bytes
/// are all ≥ 0x80), so these give the same results on scalar boundaries, much faster.
extension StringProtocol {
    /// The IPv4 address this text spells, as a number: four dot-separated decimal parts of one
    /// to three ASCII digits, each at most 255 (leading zeros allowed), read by byte. Parsing
    /// (`IPAddress`) and recognising (`ECSBuilder.isIP`) addresses both use it: one reading.
    @inlinable
    public var ipv4Value: UInt32? { ByteScan.ipv4(utf8) }

    /// Every `byte` (ASCII) replaced by `replacement` (ASCII), by byte: `replacingOccurrences`
    /// without Foundation, for the separators of device timestamps (`2018/11/30` → `2018-11-30`).
    @inlinable
    public func replacingByte(_ byte: UInt8, with replacement: UInt8) -> String {
        String(decoding: utf8.map { $0 == byte ? replacement : $0 }, as: UTF8.self)
    }

    /// The first occurrence of `needle`'s UTF-8 bytes, as a range of indices of `self`.
    @inlinable
    public func byteRange(of needle: String) -> Range<Index>? {
        var needle = needle
        let offsets: Range<Int>? = needle.withUTF8 { wanted in
            guard !wanted.isEmpty else { return 0..<0 }
            let found: Int?? = utf8.withContiguousStorageIfAvailable { ByteScan.firstOffset(of: wanted, in: $0) }
            // Not contiguous (a bridged string): search a copy.
            guard let start = found ?? Array(utf8).withUnsafeBufferPointer({ ByteScan.firstOffset(of: wanted, in: $0) }) else { return nil }
            return start..<(start + wanted.count)
        }
        guard let offsets else { return nil }
        let lower = utf8.index(startIndex, offsetBy: offsets.lowerBound)
        return lower..<utf8.index(lower, offsetBy: offsets.count)
    }

    /// The index of the first `byte` (ASCII), found with `memchr`: `utf8.firstIndex(of:)`
    /// steps through the view one index at a time, over the whole text when the byte is absent.
    @inlinable
    public func firstIndex(ofByte byte: UInt8) -> Index? {
        let offset: Int?? = utf8.withContiguousStorageIfAvailable { buffer -> Int? in
            guard let base = buffer.baseAddress, let hit = memchr(base, Int32(byte), buffer.count) else { return nil }
            return UnsafeRawPointer(hit) - UnsafeRawPointer(base)
        }
        guard let offset else { return utf8.firstIndex(of: byte) }  // not contiguous (bridged)
        return offset.map { utf8.index(startIndex, offsetBy: $0) }
    }

    /// True when the text is exactly `word`'s UTF-8 bytes. For an ASCII `word` without `K`,
    /// `` ` `` or `;` that is `String` equality (only those three have canonically equivalent
    /// non-ASCII forms: the Kelvin sign, U+1FEF, U+037E), without comparing by `Character`.
    @inlinable
    public func equalsBytes(_ word: String) -> Bool {
        let count = utf8.count
        guard count == word.utf8.count else { return false }
        var word = word
        return word.withUTF8 { wanted in
            let same: Bool? = utf8.withContiguousStorageIfAvailable { bytes in
                count == 0 || memcmp(bytes.baseAddress!, wanted.baseAddress!, count) == 0
            }
            return same ?? utf8.elementsEqual(wanted)
        }
    }

    /// True when `needle`'s UTF-8 bytes occur in `self`.
    @inlinable
    public func containsBytes(_ needle: String) -> Bool {
        byteRange(of: needle) != nil
    }

    /// Splits on an ASCII byte, like `split(separator:maxSplits:omittingEmptySubsequences:)`.
    @inlinable
    public func splitBytes(_ separator: UInt8, maxSplits: Int = .max, omittingEmptySubsequences: Bool = true) -> [SubSequence] {
        // Over the contiguous bytes, by offset: stepping the UTF-8 view index by index cost
        // several times the work of finding the separators.
        let split: [SubSequence]? = utf8.withContiguousStorageIfAvailable { bytes in
            var parts: [SubSequence] = []
            var start = 0, splits = 0
            func part(_ range: Range<Int>) -> SubSequence {
                let lower = utf8.index(startIndex, offsetBy: range.lowerBound)
                return self[lower..<utf8.index(lower, offsetBy: range.count)]
            }
            for i in 0..<bytes.count where bytes[i] == separator && splits < maxSplits {
                if !omittingEmptySubsequences || start < i {
                    parts.append(part(start..<i))
                    splits += 1
                }
                start = i + 1
            }
            if !omittingEmptySubsequences || start < bytes.count { parts.append(part(start..<bytes.count)) }
            return parts
        }
        if let split { return split }
        var parts: [SubSequence] = []
        var start = startIndex
        var index = utf8.startIndex
        let end = utf8.endIndex
        var splits = 0
        while index < end {
            if utf8[index] == separator, splits < maxSplits {
                if !omittingEmptySubsequences || start < index {
                    parts.append(self[start..<index])
                    splits += 1
                }
                index = utf8.index(after: index)
                start = index
            } else {
                index = utf8.index(after: index)
            }
        }
        if !omittingEmptySubsequences || start < endIndex { parts.append(self[start..<endIndex]) }
        return parts
    }
}
