import Foundation
import Testing
import VigilCore

struct ByteSearchTests {
    /// Random texts over a small alphabet with multi-byte scalars and combining marks, so
    /// separators and needles land next to them.
    func texts(_ count: Int) -> [String] {
        let alphabet: [String] = ["a", "b", " ", ",", ".", "é", "e\u{301}", "漢", "🙂", "%ASA-", "ab"]
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in
            (0..<Int.random(in: 0..<24, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! }.joined()
        }
    }

    @Test func splittingOnAnASCIIByteAgreesWithTheStandardLibrary() {
        for text in texts(2_000) {
            for separator in [" ", ",", "."] {
                let byte = separator.utf8.first!
                for maxSplits in [0, 1, 2, Int.max] {
                    for omitting in [true, false] {
                        let expected = text.split(separator: Character(separator), maxSplits: maxSplits, omittingEmptySubsequences: omitting)
                        let actual = text.splitBytes(byte, maxSplits: maxSplits, omittingEmptySubsequences: omitting)
                        #expect(actual == expected, "\(text.debugDescription) on \(separator.debugDescription) max \(maxSplits) omitting \(omitting)")
                        // A substring splits its own bytes.
                        let sub = text.dropFirst()
                        #expect(sub.splitBytes(byte, maxSplits: maxSplits, omittingEmptySubsequences: omitting)
                                    == sub.split(separator: Character(separator), maxSplits: maxSplits, omittingEmptySubsequences: omitting), "\(text.debugDescription)")
                    }
                }
            }
        }
    }

    /// On texts without combining marks the byte replacement equals Foundation's (with them,
    /// Foundation may keep a separator that carries a mark; device timestamps have none).
    @Test func replacingAnASCIIByteAgreesWithFoundation() {
        for text in texts(2_000) where !text.unicodeScalars.contains("\u{301}") {
            #expect(text.replacingByte(UInt8(ascii: " "), with: UInt8(ascii: "T")) == text.replacingOccurrences(of: " ", with: "T"), "\(text.debugDescription)")
            #expect(text.replacingByte(UInt8(ascii: "."), with: UInt8(ascii: "-")) == text.replacingOccurrences(of: ".", with: "-"), "\(text.debugDescription)")
        }
        #expect("2018/11/30 16:44:36".replacingByte(UInt8(ascii: "/"), with: UInt8(ascii: "-")) == "2018-11-30 16:44:36")
    }

    @Test func byteRangeFindsTheFirstOccurrenceOfASCIINeedles() {
        for text in texts(2_000) {
            for needle in ["ab", "%ASA-", "a b", ",.", "b"] {
                let found = text.byteRange(of: needle)
                #expect(text.containsBytes(needle) == (found != nil))
                guard let found else {
                    #expect(!Array(text.utf8).indices.contains { Array(text.utf8)[$0...].starts(with: Array(needle.utf8)) }, "\(text.debugDescription) has \(needle)")
                    continue
                }
                #expect(String(text[found]) == needle)
                // Nothing earlier matches.
                let before = text.utf8.distance(from: text.startIndex, to: found.lowerBound)
                #expect(!Array(text.utf8).prefix(before + needle.utf8.count - 1).indices.contains { i in
                    Array(text.utf8)[i...].starts(with: Array(needle.utf8)) && i < before
                })
            }
            // A substring searches its own bytes only.
            let sub = text.dropFirst(2)
            if let r = sub.byteRange(of: "ab") { #expect(String(sub[r]) == "ab" && r.lowerBound >= sub.startIndex) }
        }
        #expect("abc".byteRange(of: "") == "abc".startIndex..<"abc".startIndex)
        #expect("".byteRange(of: "a") == nil)
    }

    @Test func equalsBytesIsStringEqualityForASCIIWords() {
        for text in texts(2_000) {
            for word in ["ab", "a", "", "%ASA-", "a b", ",."] {
                #expect(text.equalsBytes(word) == (text == word), "\(text.debugDescription)")
                let sub = text.dropFirst()
                #expect(sub.equalsBytes(word) == (sub == word), "\(text.debugDescription)")
            }
        }
    }

    @Test func firstIndexOfByteIsTheUTF8ViewsFirstIndex() {
        for text in texts(2_000) {
            for byte in Array(",ab .%".utf8) {
                #expect(text.firstIndex(ofByte: byte) == text.utf8.firstIndex(of: byte), "\(text.debugDescription)")
                // A substring searches its own bytes, and answers with its own indices.
                let sub = text.dropFirst(2)
                #expect(sub.firstIndex(ofByte: byte) == sub.utf8.firstIndex(of: byte), "\(text.debugDescription)")
            }
        }
    }
}

struct FieldNestingSetTests {
    /// The component-array algorithm `set` had before it walked paths in place.
    static func reference(_ value: JSONValue, _ parts: ArraySlice<String>, in object: inout JSONObject) {
        guard let head = parts.first else { return }
        if parts.count == 1 {
            object[head] = value
            return
        }
        var child = object[head]?.objectValue ?? JSONObject()
        reference(value, parts.dropFirst(), in: &child)
        object[head] = .object(child)
    }

    @Test func settingPathsAgreesWithSettingTheirComponents() {
        let components = ["a", "b", "source", "ip", "", "é"]
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<500 {
            var actual = JSONObject([("a", .int(1)), ("source", .object(JSONObject([("port", .int(22))])))])
            var expected = actual
            for step in 0..<8 {
                let path = (0..<Int.random(in: 1...4, using: &generator)).map { _ in components.randomElement(using: &generator)! }.joined(separator: ".")
                let value = JSONValue.int(Int64(step))
                FieldNesting.set(value, at: path, in: &actual)
                Self.reference(value, path.split(separator: ".").map(String.init)[...], in: &expected)
                #expect(actual == expected, "after setting \(path.debugDescription)")
            }
        }
    }
}

struct JSONWriterStringTests {
    @Test func everyStringRoundTripsAndOnlyWhatMustBeEscapedIs() throws {
        let pieces = ["a", "\"", "\\", "\n", "\r", "\t", "\u{1}", "\u{1F}", " ", "é", "漢", "🙂", "/", "\u{7F}"]
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2_000 {
            let text = (0..<Int.random(in: 0..<20, using: &generator)).map { _ in pieces.randomElement(using: &generator)! }.joined()
            let written = JSONWriter.string(.string(text))
            #expect(try JSONParser.parse(written) == .string(text), "\(text.debugDescription)")
            // No raw control character or lone quote inside.
            #expect(!written.utf8.dropFirst().dropLast().contains { $0 < 0x20 })
        }
        #expect(JSONWriter.string(.string("a\"b\\c\u{1}")) == #""a\"b\\c\u0001""#)
    }

    /// The writer finds escapes eight bytes at a time: strings long enough for several words,
    /// with what must be escaped at every offset, against escaping byte by byte.
    @Test func wordAtATimeScanEscapesTheSameBytesAsAByteLoop() {
        func reference(_ text: String) -> [UInt8] {
            var out: [UInt8] = [0x22]
            for byte in text.utf8 {
                switch byte {
                case 0x22: out += [0x5C, 0x22]
                case 0x5C: out += [0x5C, 0x5C]
                case 0x0A: out += Array("\\n".utf8)
                case 0x0D: out += Array("\\r".utf8)
                case 0x09: out += Array("\\t".utf8)
                case ..<0x20: out += Array(String(format: "\\u%04x", byte).utf8)
                default: out.append(byte)
                }
            }
            return out + [0x22]
        }
        // Bytes next to the special ones (0x1F/0x20, 0x21/0x23, 0x5B/0x5D) and multi-byte UTF-8.
        let pieces = ["a", "\"", "\\", "\n", "\u{0}", "\u{1F}", " ", "!", "#", "[", "]", "\u{7F}", "é", "🙂", "abcdefgh"]
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<5_000 {
            let text = (0..<Int.random(in: 0..<60, using: &generator)).map { _ in pieces.randomElement(using: &generator)! }.joined()
            #expect(JSONWriter.bytes(.string(text)) == reference(text), "\(text.debugDescription)")
        }
        // Every length around the two-word path for short strings, clean and with one byte to
        // escape at each offset, alone and as a key among other members.
        for length in 0...40 {
            let clean = String((0..<length).map { Character(Unicode.Scalar(UInt8(0x61 + $0 % 26))) })
            var texts = [clean]
            for offset in 0..<length {
                for special in ["\"", "\\", "\u{1}", "\u{1F}"] {
                    var characters = Array(clean)
                    characters[offset] = Character(special)
                    texts.append(String(characters))
                }
            }
            for text in texts {
                #expect(JSONWriter.bytes(.string(text)) == reference(text), "\(text.debugDescription)")
                let object = JSONValue.object(JSONObject([(text, .string(text)), ("k", .int(1))]))
                #expect(JSONWriter.bytes(object) == [0x7B] + reference(text) + [0x3A] + reference(text) + Array(#","k":1}"#.utf8))
            }
        }
    }

    @Test func integersAreWrittenAsTheirDecimalSpelling() {
        var generator = SystemRandomNumberGenerator()
        let edges: [Int64] = [0, 1, -1, 9, 10, -10, Int64.max, Int64.min, Int64.min + 1]
        for value in edges + (0..<5_000).map({ _ in Int64.random(in: Int64.min...Int64.max, using: &generator) >> Int64.random(in: 0...63, using: &generator) }) {
            #expect(JSONWriter.string(.int(value)) == String(value))
        }
    }
}
