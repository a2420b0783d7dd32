import Testing
@testable import VigilParsing

struct SplitterTests {
    /// Random lines over the bytes the splitters care about, with multi-byte scalars.
    static func lines(_ count: Int, alphabet: [String]) -> [String] {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in
            (0..<Int.random(in: 0..<30, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! }.joined()
        }
    }

    @Test func csvLinesWithoutQuotesSplitAsTheQuoteAwareSplitterSplitsThem() {
        for line in Self.lines(5_000, alphabet: ["a", "1", ",", " ", "é", "漢", ",,", "\t"]) {
            let bytes = Array(line.utf8)
            let expected = bytes.withUnsafeBufferPointer { CSVSplitter.splitQuoted($0, separator: UInt8(ascii: ",")) }
            #expect(CSVSplitter.split(line) == expected, "\(line.debugDescription)")
        }
    }

    /// The byte-copying parser `KeyValueParser.parse` had before values were made from ranges:
    /// the test's oracle, kept apart from the code on purpose.
    static func referencePairs(_ text: String) -> [(key: String, value: String)] {
        let b = Array(text.utf8)
        var i = 0
        var pairs: [(key: String, value: String)] = []
        func isKeyByte(_ c: UInt8) -> Bool {
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || "_-.:".utf8.contains(c)
        }
        while i < b.count {
            while i < b.count, " ,\t;".utf8.contains(b[i]) { i += 1 }
            let keyStart = i
            while i < b.count, isKeyByte(b[i]) { i += 1 }
            guard i < b.count, b[i] == UInt8(ascii: "="), i > keyStart else {
                while i < b.count, b[i] != 0x20 { i += 1 }
                continue
            }
            let key = String(decoding: b[keyStart..<i], as: UTF8.self)
            i += 1
            var value: [UInt8] = []
            if i < b.count, b[i] == UInt8(ascii: "\"") {
                i += 1
                while i < b.count {
                    let c = b[i]
                    if c == UInt8(ascii: "\\"), i + 1 < b.count, b[i + 1] == UInt8(ascii: "\"") || b[i + 1] == UInt8(ascii: "\\") {
                        value.append(b[i + 1])
                        i += 2
                        continue
                    }
                    i += 1
                    if c == UInt8(ascii: "\"") { break }
                    value.append(c)
                }
            } else {
                while i < b.count, b[i] != 0x20, b[i] != 0x09 { value.append(b[i]); i += 1 }
            }
            pairs.append((key, String(decoding: value, as: UTF8.self)))
        }
        return pairs
    }

    @Test func keyValuePairsAgreeWithCopyingEveryByte() {
        for line in Self.lines(20_000, alphabet: ["k", "=", "\"", "\\", " ", ",", ";", "\t", "é", "v1", "a=b", "x=\"y z\""]) {
            let actual = KeyValueParser.parse(line), expected = Self.referencePairs(line)
            #expect(actual.map(\.key) == expected.map(\.key) && actual.map(\.value) == expected.map(\.value), "\(line.debugDescription)")
        }
    }
}

/// The FortiGate record keeps what `KeyValueParser.dictionary` kept: the last value of each
/// key in the pack's slots, and the other keys sorted, each once, with its last value.
struct FortiGateRecordTests {
    @Test func recordAgreesWithTheDictionaryItReplaced() {
        #expect(FortiGatePack.mapped.allSatisfy { FortiGatePack.Field.byName[$0] != nil })
        let keys = ["srcip", "dstip", "type", "action", "vd", "sessionid", "devid", "zz", "a-b", "status", "srcport"]
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2_000 {
            let line = (0..<Int.random(in: 0..<12, using: &generator)).map { n in
                "\(keys.randomElement(using: &generator)!)=\(["v\(n)", "\"q \(n)\"", ""].randomElement(using: &generator)!)"
            }.joined(separator: " ")
            let dictionary = KeyValueParser.dictionary(line)
            let record = FortiGatePack.Record(KeyValueParser.parse(line))
            for field in FortiGatePack.Field.allCases {
                #expect(record[field] == dictionary[String(describing: field)], "\(field) in \(line)")
            }
            let expected = dictionary.sorted { $0.key < $1.key }.filter { !FortiGatePack.mapped.contains($0.key) }
            #expect(record.unmapped.map(\.key) == expected.map(\.key), "\(line)")
            #expect(record.unmapped.map(\.value) == expected.map(\.value), "\(line)")
        }
    }
}

