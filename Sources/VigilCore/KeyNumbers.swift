#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Strings numbered once and looked up many times, by their UTF-8 bytes: a hash of eight bytes
/// at a time and a byte compare, instead of `Dictionary`'s SipHash over the `String` and a
/// `String` compare.
///
/// Bytes decide equality only for keys that pass `JSONObject.lengthDecides` (ASCII without
/// `K`, `` ` `` or `;`): a string canonically equivalent to such a key is that key, byte for
/// byte. Any other key is looked up in a `Dictionary`, which compares as `String` does, so
/// the answers are a `Dictionary`'s.
///
/// A class: a lookup through a value kept in an array or a buffer copied the table first
/// (four retains and releases); a class reference is one.
public final class KeyNumbers: Sendable {
    struct Entry {
        let hash: UInt64
        /// The key's bytes are `bytes[start..<start + length]`.
        let start: Int
        let length: Int
        let number: Int
    }

    let byString: [String: Int]
    /// Open addressing, linear probing: per slot, an entry's index + 1 (0: empty).
    let slots: [Int32]
    let mask: Int
    let entries: [Entry]
    let bytes: [UInt8]

    /// The numbers of the strings of `numbers` (String equality, as a `Dictionary` keys them).
    public init(_ numbers: [String: Int]) {
        byString = numbers
        var entries: [Entry] = []
        var bytes: [UInt8] = []
        // Only keys whose bytes decide equality: no other key can equal one that reaches the table.
        for (key, number) in numbers where JSONObject.lengthDecides(key) {
            let utf8 = Array(key.utf8)
            entries.append(Entry(hash: utf8.withUnsafeBufferPointer { Self.hash($0).hash }, start: bytes.count, length: utf8.count, number: number))
            bytes += utf8
        }
        var size = 8
        while size < entries.count * 2 { size *= 2 }
        var slots = [Int32](repeating: 0, count: size)
        for entry in entries.indices {
            var slot = Int(truncatingIfNeeded: entries[entry].hash) & (size - 1)
            while slots[slot] != 0 { slot = (slot + 1) & (size - 1) }
            slots[slot] = Int32(entry + 1)
        }
        self.slots = slots
        mask = size - 1
        self.entries = entries
        self.bytes = bytes
    }

    public var count: Int { byString.count }

    /// The number of `key`, as `numbers[key]` of the dictionary it was made from answers.
    public subscript(key: String) -> Int? {
        var found: Int?
        let decided = key.utf8.withContiguousStorageIfAvailable { utf8 -> Bool in
            let (hash, decides) = Self.hash(utf8)
            guard decides else { return false }
            found = find(utf8, hash)
            return true
        }
        return decided == true ? found : byString[key]
    }

    func find(_ key: UnsafeBufferPointer<UInt8>, _ hash: UInt64) -> Int? {
        slots.withUnsafeBufferPointer { slots in
            entries.withUnsafeBufferPointer { entries in
                bytes.withUnsafeBufferPointer { bytes in
                    var slot = Int(truncatingIfNeeded: hash) & mask
                    while slots[slot] != 0 {
                        let entry = entries[Int(slots[slot]) - 1]
                        if entry.hash == hash, entry.length == key.count,
                           key.count == 0 || memcmp(bytes.baseAddress! + entry.start, key.baseAddress!, key.count) == 0 {
                            return entry.number
                        }
                        slot = (slot + 1) & mask
                    }
                    return nil
                }
            }
        }
    }

    /// A hash of the bytes, eight at a time, and whether they pass `JSONObject.lengthDecides`.
    @inline(__always)
    static func hash(_ key: UnsafeBufferPointer<UInt8>) -> (hash: UInt64, decides: Bool) {
        let count = key.count
        var hash = UInt64(truncatingIfNeeded: count) &* 0x9E37_79B9_7F4A_7C15
        guard count > 0, let base = key.baseAddress else { return (hash, true) }
        let raw = UnsafeRawPointer(base)
        var bad: UInt64 = 0
        @inline(__always) func mix(_ word: UInt64) {
            let ones: UInt64 = 0x0101_0101_0101_0101, highs: UInt64 = 0x8080_8080_8080_8080
            // Non-ASCII bytes, and bytes equal to K, ` or ; (zero bytes of padding are none).
            let k = word ^ (ones &* 0x4B), tick = word ^ (ones &* 0x60), semicolon = word ^ (ones &* 0x3B)
            bad |= (word | ((k &- ones) & ~k) | ((tick &- ones) & ~tick) | ((semicolon &- ones) & ~semicolon)) & highs
            hash = (hash ^ word) &* 0xFF51_AFD7_ED55_8CCD
            hash ^= hash >> 32
        }
        var i = 0
        while i + 8 <= count {
            mix(raw.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            i += 8
        }
        if i < count {
            if count >= 8 {
                // The last eight bytes, overlapping the word before.
                mix(raw.loadUnaligned(fromByteOffset: count - 8, as: UInt64.self))
            } else {
                mix(JSONBytes.partialWord(raw, count: count))
            }
        }
        return (hash, bad == 0)
    }
}
