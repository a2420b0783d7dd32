import Foundation
import VigilCore
import VigilQuery

/// One indicator of compromise.
public struct Indicator: Sendable, Equatable {
    public enum Kind: String, Sendable {
        case ip, cidr, domain, url, md5, sha1, sha256
    }

    public var kind: Kind
    /// Normalized value (lower-cased domain/hash, canonical address, normalized URL).
    public var value: String
    public var provider: String
    public var confidence: String?

    public init(kind: Kind, value: String, provider: String, confidence: String? = nil) {
        self.kind = kind
        self.value = value
        self.provider = provider
        self.confidence = confidence
    }

    /// `ip`, `ipv4-addr`, `ip-dst`, `domain-name`, `hostname`, `file-sha256`, ... → a kind.
    public static func kind(named name: String, value: String) -> Kind? {
        switch name.lowercased() {
        case "ip", "ipv4", "ipv6", "ipv4-addr", "ipv6-addr", "ip-src", "ip-dst", "ip-src|port", "ip-dst|port", "address":
            return value.contains("/") ? .cidr : .ip
        case "cidr", "network", "subnet": return .cidr
        case "domain", "domain-name", "hostname", "fqdn", "domain|ip": return .domain
        case "url", "uri", "link": return .url
        case "md5", "file-md5", "filename|md5": return .md5
        case "sha1", "sha-1", "file-sha1", "filename|sha1": return .sha1
        case "sha256", "sha-256", "file-sha256", "filename|sha256": return .sha256
        default: return nil
        }
    }

    /// Canonical text of an IP address; nil when it is not one.
    static func canonicalIP(_ text: String) -> String? {
        IPAddress(text.trimmedWhitespace).map(\.description)
    }

    /// Lower-cased domain without a trailing dot.
    static func canonicalDomain(_ text: String) -> String {
        var domain = text.trimmedWhitespace.lowercased()
        while domain.hasSuffix(".") { domain.removeLast() }
        return domain
    }

    /// Scheme and host lower-cased, default ports dropped, no fragment.
    static func canonicalURL(_ text: String) -> String {
        var url = text.trimmedWhitespace
        if let hash = url.utf8.firstIndex(of: UInt8(ascii: "#")) { url = String(url[..<hash]) }
        guard let schemeEnd = url.byteRange(of: "://") else { return url.lowercased() }
        let scheme = url[..<schemeEnd.lowerBound].lowercased()
        let rest = url[schemeEnd.upperBound...]
        let hostEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        var host = rest[..<hostEnd].lowercased()
        if (scheme == "http" && host.hasSuffix(":80")) || (scheme == "https" && host.hasSuffix(":443")) {
            host = String(host[..<host.lastIndex(of: ":")!])
        }
        var path = String(rest[hostEnd...])
        if path.isEmpty { path = "/" }
        return scheme + "://" + host + path
    }

    /// An indicator from a type name and a raw value; nil when the value does not fit.
    public static func make(type: String, value raw: String, provider: String, confidence: String?) -> Indicator? {
        var value = raw
        // MISP composite types: `filename|sha256`, `ip-dst|port`, `domain|ip`.
        if type.contains("|"), let bar = raw.firstIndex(of: "|") {
            value = type.hasPrefix("filename|") ? String(raw[raw.index(after: bar)...]) : String(raw[..<bar])
        }
        guard let kind = kind(named: type, value: value) else { return nil }
        switch kind {
        case .ip:
            guard let ip = canonicalIP(value) else { return nil }
            return Indicator(kind: .ip, value: ip, provider: provider, confidence: confidence)
        case .cidr:
            guard let network = IPNetwork(value.trimmedWhitespace) else { return nil }
            return Indicator(kind: .cidr, value: network.description, provider: provider, confidence: confidence)
        case .domain:
            let domain = canonicalDomain(value)
            guard !domain.isEmpty, !domain.contains(" "), domain.contains(".") else { return nil }
            return Indicator(kind: .domain, value: domain, provider: provider, confidence: confidence)
        case .url:
            guard value.contains("://") else { return nil }
            return Indicator(kind: .url, value: canonicalURL(value), provider: provider, confidence: confidence)
        case .md5, .sha1, .sha256:
            let hash = value.trimmedWhitespace.lowercased()
            let length = kind == .md5 ? 32 : kind == .sha1 ? 40 : 64
            guard hash.utf8.count == length, hash.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }) else { return nil }
            return Indicator(kind: kind, value: hash, provider: provider, confidence: confidence)
        }
    }
}

/// What loading a feed did: indicators kept, and what was skipped, by reason.
public struct FeedReport: Sendable, Equatable {
    public var path: String
    public var loaded = 0
    public var skipped: [String: Int] = [:]
    public var error: String?

    public init(path: String) { self.path = path }
}

/// An immutable, indexed set of indicators. Lookups are hash lookups: IPs exactly, CIDRs per
/// prefix length present, domains and every parent domain, URLs normalized, hashes.
public struct IndicatorSet: Sendable {
    /// An address as two integers (the 16-byte form): hashing it is cheap.
    struct AddressKey: Hashable, Sendable {
        var high: UInt64
        var low: UInt64
        init(_ bytes: [UInt8]) {
            var h: UInt64 = 0, l: UInt64 = 0
            for i in 0..<16 {
                let b = i < bytes.count ? UInt64(bytes[i]) : 0
                if i < 8 { h = h << 8 | b } else { l = l << 8 | b }
            }
            high = h
            low = l
        }

        /// An IPv4 address, in the 16-byte form `IPAddress` gives it (`::ffff:a.b.c.d`).
        init(v4: UInt32) {
            high = 0
            low = 0xFFFF_0000_0000 | UInt64(v4)
        }
    }

    var ips: [AddressKey: Indicator] = [:]
    /// Per prefix length (128-bit form): masked address bytes → indicator.
    var networks: [Int: [AddressKey: Indicator]] = [:]
    var domains: [String: Indicator] = [:]
    var urls: [String: Indicator] = [:]
    var hashes: [String: Indicator] = [:]

    public init(_ indicators: [Indicator] = []) {
        for indicator in indicators { insert(indicator) }
    }

    public var count: Int { ips.count + networks.values.reduce(0) { $0 + $1.count } + domains.count + urls.count + hashes.count }

    mutating func insert(_ indicator: Indicator) {
        switch indicator.kind {
        case .ip: if let address = IPAddress(indicator.value) { ips[AddressKey(address.bytes)] = indicator }
        case .cidr:
            if let network = IPNetwork(indicator.value) { networks[network.prefixBits, default: [:]][AddressKey(Self.masked(network.address, network.prefixBits))] = indicator }
        case .domain: domains[indicator.value] = indicator
        case .url: urls[indicator.value] = indicator
        case .md5, .sha1, .sha256: hashes[indicator.value] = indicator
        }
    }

    /// The address bytes with everything after the first `bits` bits cleared.
    static func masked(_ address: IPAddress, _ bits: Int) -> [UInt8] {
        var bytes = address.bytes
        let full = bits / 8
        for i in 0..<bytes.count where i > full || (i == full && bits % 8 == 0) { bytes[i] = 0 }
        if full < bytes.count, bits % 8 != 0 { bytes[full] &= UInt8(0xFF) << (8 - bits % 8) }
        return bytes
    }

    public func match(ip text: String) -> Indicator? {
        guard !ips.isEmpty || !networks.isEmpty else { return nil }
        // IPv4 without the 16-byte array `IPAddress` allocates: nearly every address is one.
        if networks.isEmpty, let v4 = text.ipv4Value { return ips[AddressKey(v4: v4)] }
        guard let address = IPAddress(text) else { return nil }
        if let hit = ips[AddressKey(address.bytes)] { return hit }
        for (bits, table) in networks {
            if let hit = table[AddressKey(Self.masked(address, bits))] { return hit }
        }
        return nil
    }

    public func match(domain text: String) -> Indicator? {
        guard !domains.isEmpty else { return nil }
        var domain = Indicator.canonicalDomain(text)
        while true {
            if let hit = domains[domain] { return hit }
            guard let dot = domain.utf8.firstIndex(of: UInt8(ascii: ".")) else { return nil }
            domain = String(domain[domain.index(after: dot)...])
        }
    }

    public func match(url text: String) -> Indicator? { urls.isEmpty ? nil : urls[Indicator.canonicalURL(text)] }
    public func match(hash text: String) -> Indicator? { hashes.isEmpty ? nil : hashes[text.lowercased()] }
}

extension StringProtocol {
    /// `trimmingCharacters(in: .whitespaces)`, without Foundation when there is nothing to
    /// trim: the first and last bytes are ASCII and neither a space nor a tab (no other ASCII
    /// character is in that set). Feeds and events are matched value by value, and that is
    /// nearly every value.
    var trimmedWhitespace: String {
        let utf8 = Substring(self).utf8
        guard let first = utf8.first, let last = utf8.last else { return String(self) }
        if first < 0x80, last < 0x80, first != 0x20, first != 0x09, last != 0x20, last != 0x09 { return String(self) }
        return trimmingCharacters(in: .whitespaces)
    }

    /// Spaces and double quotes trimmed from both ends (a CSV feed's fields), by byte.
    var trimmedSpacesAndQuotes: String {
        var utf8 = Substring(self).utf8[...]
        while let first = utf8.first, first == 0x20 || first == 0x22 { utf8 = utf8.dropFirst() }
        while let last = utf8.last, last == 0x20 || last == 0x22 { utf8 = utf8.dropLast() }
        return String(Substring(utf8))
    }
}
