/// Lower-case hexadecimal, by byte: event keys, address tokens, API keys and their hashes,
/// and JSON's `\u00XX` escapes all write it this way.
public enum Hex {
    /// `nibble` (0–15) as a lower-case hex digit's byte.
    @inlinable
    public static func digit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
    }

    /// `prefix`, then each of `bytes` as two lower-case hex digits, written straight into the
    /// string's storage (no array of bytes first, no string per byte).
    @inlinable
    public static func string(prefix: String = "", _ bytes: some Collection<UInt8>) -> String {
        String(unsafeUninitializedCapacity: prefix.utf8.count + 2 * bytes.count) { out in
            var n = 0
            for byte in prefix.utf8 {
                out[n] = byte
                n += 1
            }
            for byte in bytes {
                out[n] = digit(byte >> 4)
                out[n + 1] = digit(byte & 15)
                n += 2
            }
            return n
        }
    }
}
