import VigilCore

/// An IPv4 or IPv6 address as 16 bytes (IPv4 as `::ffff:a.b.c.d`), parsed without Foundation.
public struct IPAddress: Sendable, Hashable, CustomStringConvertible {
    public var bytes: [UInt8]
    public var isIPv4: Bool

    /// Parses `10.1.2.3`, `2001:db8::1`, `::ffff:10.1.2.3`; a zone (`%eth0`) is ignored.
    public init?(_ text: some StringProtocol) {
        var body = Substring(text)
        if let percent = body.utf8.firstIndex(of: UInt8(ascii: "%")) { body = body[..<percent] }
        if let v4 = body.ipv4Value {
            bytes = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, UInt8(v4 >> 24), UInt8(v4 >> 16 & 0xFF), UInt8(v4 >> 8 & 0xFF), UInt8(v4 & 0xFF)]
            isIPv4 = true
        } else if let v6 = Self.parseIPv6(body) {
            bytes = v6
            isIPv4 = v6[0..<12].elementsEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF])
        } else {
            return nil
        }
    }

    public var description: String {
        if isIPv4 { return bytes[12...].map(String.init).joined(separator: ".") }
        return stride(from: 0, to: 16, by: 2).map { String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16) }.joined(separator: ":")
    }

    static func parseIPv4(_ text: Substring) -> [UInt8]? {
        text.ipv4Value.map { [UInt8($0 >> 24), UInt8($0 >> 16 & 0xFF), UInt8($0 >> 8 & 0xFF), UInt8($0 & 0xFF)] }
    }

    static func parseIPv6(_ text: Substring) -> [UInt8]? {
        guard text.utf8.contains(UInt8(ascii: ":")), text.count <= 45 else { return nil }
        var head: [UInt8] = []
        var tail: [UInt8] = []
        let characters = Array(text)
        var halves: [String] = []
        var current = ""
        var i = 0
        while i < characters.count {
            if characters[i] == ":", i + 1 < characters.count, characters[i + 1] == ":" {
                halves.append(current)
                current = ""
                i += 2
            } else {
                current.append(characters[i])
                i += 1
            }
        }
        halves.append(current)
        guard halves.count <= 2 else { return nil }
        func groups(_ part: String, into out: inout [UInt8], allowIPv4Tail: Bool) -> Bool {
            guard !part.isEmpty else { return true }
            let pieces = part.split(separator: ":", omittingEmptySubsequences: false)
            for (i, piece) in pieces.enumerated() {
                if allowIPv4Tail, i == pieces.count - 1, piece.contains(".") {
                    guard let v4 = parseIPv4(piece) else { return false }
                    out += v4
                    continue
                }
                guard (1...4).contains(piece.count), let value = UInt16(piece, radix: 16) else { return false }
                out += [UInt8(value >> 8), UInt8(value & 0xFF)]
            }
            return true
        }
        if halves.count == 1 {
            guard groups(halves[0], into: &head, allowIPv4Tail: true), head.count == 16 else { return nil }
            return head
        }
        guard groups(halves[0], into: &head, allowIPv4Tail: false), groups(halves[1], into: &tail, allowIPv4Tail: true),
              head.count + tail.count <= 14 else { return nil }
        return head + Array(repeating: 0, count: 16 - head.count - tail.count) + tail
    }
}

/// A CIDR block such as `10.0.0.0/8` or `2001:db8::/32`.
public struct IPNetwork: Sendable, Hashable, CustomStringConvertible {
    public var address: IPAddress
    /// Prefix length over the 128-bit form (IPv4 prefixes are stored plus 96).
    public var prefixBits: Int

    /// Parses `address/prefix`; the prefix must fit the address family.
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let address = IPAddress(parts[0]), parts[1].allSatisfy(\.isASCIIDigit),
              (1...3).contains(parts[1].count), let prefix = Int(parts[1]) else { return nil }
        let maxBits = address.isIPv4 ? 32 : 128
        guard prefix <= maxBits else { return nil }
        self.address = address
        self.prefixBits = address.isIPv4 ? prefix + 96 : prefix
    }

    public var description: String { "\(address)/\(address.isIPv4 ? prefixBits - 96 : prefixBits)" }

    public func contains(_ other: IPAddress) -> Bool {
        guard other.isIPv4 == address.isIPv4 else { return false }
        var bits = prefixBits
        var i = 0
        while bits >= 8 {
            if other.bytes[i] != address.bytes[i] { return false }
            bits -= 8
            i += 1
        }
        guard bits > 0 else { return true }
        let mask = UInt8(0xFF) << (8 - bits)
        return other.bytes[i] & mask == address.bytes[i] & mask
    }

    /// True when `text` is an address inside the block; false for anything else.
    public func contains(text: some StringProtocol) -> Bool {
        guard let address = IPAddress(text) else { return false }
        return contains(address)
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}
