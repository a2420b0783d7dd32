/// Splits a syslog TCP byte stream into frames (RFC 6587).
///
/// Two framings share one port: octet counting (`LEN SP MSG`, what rsyslog, Cisco and Palo Alto
/// send when told to) and non-transparent framing (`MSG LF`, what `logger` and most devices
/// send). The framing is decided at the start of every frame: a frame that begins with digits
/// followed by a space is octet-counted, anything else ends at the next LF. Deciding per frame
/// rather than once per connection costs nothing and survives senders that switch.
///
/// The framer is pure: it never touches a socket, so every split of the input can be tested.
public struct SyslogFramer: Sendable {
    public enum DropReason: String, Sendable, Equatable {
        /// A frame longer than the limit; its bytes are skipped.
        case oversize
        /// The connection ended inside an octet-counted frame.
        case truncated
    }

    public enum Output: Sendable, Equatable {
        case frame([UInt8])
        case dropped(DropReason, bytes: Int)
    }

    public let maxFrameBytes: Int
    var buffer: [UInt8] = []
    /// Where the next frame starts in `buffer`.
    var start = 0
    /// Bytes of an oversize frame still to skip: a count for octet framing, or "until LF".
    var skipping: Skip = .none

    enum Skip: Sendable, Equatable {
        case none
        case bytes(Int, total: Int)
        case untilLF(total: Int)
    }

    /// The longest length prefix accepted (9 digits, < 1 GB); longer digit runs are text.
    static let maxLengthDigits = 9

    public init(maxFrameBytes: Int) {
        self.maxFrameBytes = max(1, maxFrameBytes)
    }

    /// Feeds bytes as they arrive; returns the frames (and drops) they complete.
    public mutating func feed(_ bytes: some Sequence<UInt8>) -> [Output] {
        buffer.append(contentsOf: bytes)
        var out: [Output] = []
        drain(into: &out)
        compact()
        return out
    }

    /// The connection ended: an unterminated LF frame is still a frame; a partial
    /// octet-counted frame is reported as truncated.
    public mutating func finish() -> [Output] {
        var out: [Output] = []
        drain(into: &out)
        switch skipping {
        case .bytes(_, let total), .untilLF(let total):
            out.append(.dropped(.oversize, bytes: total))
        case .none:
            if start < buffer.count {
                let rest = buffer[start...]
                if let header = Self.octetHeader(rest), header.complete {
                    out.append(.dropped(.truncated, bytes: rest.count))
                } else {
                    let frame = Self.trimmed(rest)
                    if !frame.isEmpty { out.append(.frame(Array(frame))) }
                }
            }
        }
        buffer.removeAll()
        start = 0
        skipping = .none
        return out
    }

    /// Bytes held, waiting for the rest of a frame.
    public var bufferedBytes: Int { buffer.count - start }

    mutating func drain(into out: inout [Output]) {
        while true {
            switch skipping {
            case .bytes(let remaining, let total):
                let available = buffer.count - start
                if available < remaining {
                    start = buffer.count
                    skipping = .bytes(remaining - available, total: total)
                    return
                }
                start += remaining
                skipping = .none
                out.append(.dropped(.oversize, bytes: total))
                continue
            case .untilLF(let total):
                if let lf = buffer[start...].firstIndex(of: 0x0A) {
                    out.append(.dropped(.oversize, bytes: total + (lf - start)))
                    start = lf + 1
                    skipping = .none
                    continue
                }
                skipping = .untilLF(total: total + (buffer.count - start))
                start = buffer.count
                return
            case .none:
                break
            }
            // Skip separators between frames (a stray LF after an octet-counted frame, NULs).
            while start < buffer.count, buffer[start] == 0x0A || buffer[start] == 0x0D || buffer[start] == 0x00 { start += 1 }
            guard start < buffer.count else { return }
            let rest = buffer[start...]
            if let header = Self.octetHeader(rest) {
                guard header.complete else { return }  // wait for the space after the digits
                let bodyStart = start + header.headerBytes
                if header.length > maxFrameBytes {
                    start = bodyStart
                    skipping = .bytes(header.length, total: header.length)
                    continue
                }
                guard buffer.count - bodyStart >= header.length else { return }
                let frame = Self.trimmed(buffer[bodyStart..<(bodyStart + header.length)])
                start = bodyStart + header.length
                if !frame.isEmpty { out.append(.frame(Array(frame))) }
                continue
            }
            if let lf = rest.firstIndex(of: 0x0A) {
                let length = lf - start
                if length > maxFrameBytes {
                    out.append(.dropped(.oversize, bytes: length))
                } else {
                    let frame = Self.trimmed(buffer[start..<lf])
                    if !frame.isEmpty { out.append(.frame(Array(frame))) }
                }
                start = lf + 1
                continue
            }
            if rest.count > maxFrameBytes {
                skipping = .untilLF(total: rest.count)
                start = buffer.count
            }
            return
        }
    }

    /// Drops consumed bytes once they are a good share of the buffer.
    mutating func compact() {
        if start == buffer.count {
            buffer.removeAll(keepingCapacity: buffer.capacity <= 1 << 20)
            start = 0
        } else if start > 4096, start > buffer.count / 2 {
            buffer.removeSubrange(0..<start)
            start = 0
        }
    }

    struct OctetHeader {
        var length: Int
        var headerBytes: Int
        /// False while only digits have arrived (the space may still come).
        var complete: Bool
    }

    /// `LEN SP` at the start of `bytes`: nil when the frame is not octet-counted.
    static func octetHeader(_ bytes: ArraySlice<UInt8>) -> OctetHeader? {
        guard let first = bytes.first, first >= 0x31, first <= 0x39 else { return nil }  // no leading zero
        var length = 0
        var digits = 0
        for byte in bytes {
            if byte >= 0x30, byte <= 0x39 {
                digits += 1
                guard digits <= maxLengthDigits else { return nil }
                length = length * 10 + Int(byte - 0x30)
                continue
            }
            guard byte == 0x20 else { return nil }
            return OctetHeader(length: length, headerBytes: digits + 1, complete: true)
        }
        return OctetHeader(length: length, headerBytes: digits, complete: false)
    }

    /// A frame without its trailing CR, LF and NUL bytes.
    static func trimmed(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        var end = bytes.endIndex
        while end > bytes.startIndex, [0x0A, 0x0D, 0x00].contains(bytes[end - 1]) { end -= 1 }
        return bytes[bytes.startIndex..<end]
    }
}
