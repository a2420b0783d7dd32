import Testing
import VigilCore
@testable import VigilThreatIntel

/// `Enrichment.matches` reads flat fields' bytes (IPv4 addresses without a `String`, kinds the
/// set holds none of not at all); it must say what enriching their nested document says.
struct FlatMatchTests {
    static let indicators: [(type: String, value: String)] = [
        ("ip", "203.0.113.9"), ("ip", "::ffff:198.51.100.7"), ("ip", "2001:db8::1"), ("ip", "0.0.0.0"),
        ("ip", "192.0.2.0/24"), ("ip", "10.20.0.0/16"),
        ("domain", "evil.example"), ("url", "http://bad.example/x"), ("md5", "d41d8cd98f00b204e9800998ecf8427e"),
    ]

    /// Values of every kind the fields' paths can hold: matching and not, IPv4 and IPv6
    /// spellings, near-addresses, subdomains, URLs and hashes in other cases.
    static let texts = [
        "203.0.113.9", "203.0.113.90", "198.51.100.7", "::ffff:203.0.113.9", "2001:db8::1", "2001:DB8:0::1", "0.0.0.0",
        "192.0.2.77", "10.20.30.40", "10.21.0.1", "10.1.2", "10.1.2.3.4", "256.1.1.1", "010.020.000.001", "203.0.113.9%eth0",
        "www.evil.example", "evil.example", "EVIL.example", "notevil.example", "http://bad.example/x", "HTTP://BAD.example/x",
        "D41D8CD98F00B204E9800998ECF8427E", "d41d8cd98f00b204e9800998ecf8427e", "", "é", "-",
    ]

    @Test func flatMatchingAgreesWithEnrichingTheDocument() throws {
        // Every path enrichment reads, one it does not, and literals that match and do not.
        let paths = (Enrichment.split.map(\.path) + ["event.action"]).sorted()  // an object's paths together
        let literals: [JSONValue] = [.string("203.0.113.9"), .string("www.evil.example"), .string("10.9.9.9"), .int(7),
                                     .array([.string("198.51.100.7")]), .array([.string("1.1.1.1"), .int(3)])]
        let schema = try FlatSchema(paths: paths, literals: literals)
        // Sets that hold each kind alone, addresses with and without networks, everything, nothing.
        let everything = Self.indicators.compactMap { Indicator.make(type: $0.type, value: $0.value, provider: "t", confidence: nil) }
        #expect(everything.count == Self.indicators.count)
        let sets: [IndicatorSet] = [
            IndicatorSet(everything),
            IndicatorSet(everything.filter { $0.kind == .ip }),
            IndicatorSet(everything.filter { $0.kind == .ip || $0.kind == .cidr }),
            IndicatorSet(everything.filter { $0.kind == .cidr }),
            IndicatorSet(everything.filter { $0.kind == .domain }),
            IndicatorSet(everything.filter { $0.kind == .url }),
            IndicatorSet(everything.filter { $0.kind == .md5 }),
            IndicatorSet(everything.filter { $0.kind != .ip && $0.kind != .cidr }),
            IndicatorSet(),
        ]
        var generator = SplitMix64(seed: 0x5EED)  // a failure replays
        var compared = 0, matched = 0
        for _ in 0..<2_000 {
            let fields = FlatFields.random(schema, texts: Self.texts, integers: [0, 7, 203], density: Double.random(in: 0.05...0.6, using: &generator),
                                           using: &generator)
            for (number, set) in sets.enumerated() {
                var document = fields.object()
                let expected = Enrichment.enrich(&document, with: set) > 0
                #expect(Enrichment.matches(fields, with: set) == expected, "set \(number): \(JSONValue.object(fields.object()))")
                compared += 1
                if expected { matched += 1 }
            }
        }
        // Both answers were common: the comparison is not of two constant answers.
        #expect(matched > compared / 10 && matched < compared * 9 / 10, "\(matched) of \(compared)")
    }

    @Test func addressesAreReadFromBytesAsFromText() {
        for text in Self.texts + ["1.2.3.4", "255.255.255.255", "1.2.3.", ".1.2.3", "1..2.3", "1.2.3.4 ", "1234.1.1.1", "0001.1.1.1"] {
            #expect(ByteScan.ipv4(Array(text.utf8)) == IPv4Reference.parse(text), "\(text)")
        }
    }
}

/// The dotted-quad reading spelled out as the definition says: four parts split on dots, each
/// one to three ASCII digits at most 255.
enum IPv4Reference {
    static func parse(_ text: String) -> UInt32? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for part in parts {
            guard (1...3).contains(part.utf8.count), part.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let number = UInt32(part), number <= 255 else { return nil }
            value = value << 8 | number
        }
        return value
    }
}
