import Testing
@testable import VigilCore

@Suite struct KeyNumbersTests {
    /// Pieces that make keys of every length around the eight-byte words (0 to 40 bytes),
    /// plain ASCII, the three ASCII characters with canonically equivalent non-ASCII forms and
    /// those forms (Kelvin sign, Greek question mark, U+1FEF), a precomposed and a decomposed
    /// `é`, a long `ſ`, a NUL and a multi-byte emoji.
    static let pieces = ["a", "b", "ab", "event", "process", "Image", "K", "\u{212A}", ";", "\u{37E}", "`", "\u{1FEF}",
                         "\u{E9}", "e\u{301}", "\u{17F}", "s", "\0", "_", ".", "0123456", "\u{1F600}"]

    static func randomKey(_ generator: inout some RandomNumberGenerator) -> String {
        (0..<Int.random(in: 0...8, using: &generator)).map { _ in pieces.randomElement(using: &generator)! }.joined()
    }

    @Test func answersAsTheDictionaryItWasMadeFrom() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            var numbers: [String: Int] = [:]
            for _ in 0..<Int.random(in: 0..<40, using: &generator) {
                let key = Self.randomKey(&generator)
                if numbers[key] == nil { numbers[key] = numbers.count }
            }
            let table = KeyNumbers(numbers)
            #expect(table.count == numbers.count)
            // Every key, its canonically equivalent spellings, and random strings.
            var queries = Array(numbers.keys)
            for key in numbers.keys {
                queries.append(key.replacingOccurrences(of: "\u{212A}", with: "K"))
                queries.append(key.replacingOccurrences(of: "K", with: "\u{212A}"))
                queries.append(key.replacingOccurrences(of: ";", with: "\u{37E}"))
                queries.append(key.replacingOccurrences(of: "\u{37E}", with: ";"))
                queries.append(key.replacingOccurrences(of: "`", with: "\u{1FEF}"))
                queries.append(key.replacingOccurrences(of: "\u{E9}", with: "e\u{301}"))
                queries.append(key + "a")
                queries.append(String(key.dropLast()))
            }
            for _ in 0..<50 { queries.append(Self.randomKey(&generator)) }
            for query in queries {
                #expect(table[query] == numbers[query], "\(Array(query.unicodeScalars)) among \(numbers.keys.map { Array($0.unicodeScalars) })")
            }
        }
    }

    @Test func findsKeysThatShareWordsAndDifferInTheirLastBytes() {
        // Same first eight bytes, same length, one differing byte in the overlapping last word.
        let keys = ["abcdefghij", "abcdefghik", "abcdefghjj", "abcdefgh", "abcdefg", "abcdefghijklmnopq", "abcdefghijklmnopr"]
        let table = KeyNumbers(Dictionary(uniqueKeysWithValues: keys.enumerated().map { ($1, $0) }))
        for (number, key) in keys.enumerated() { #expect(table[key] == number) }
        #expect(table["abcdefghil"] == nil)
        #expect(table["abcdefghijklmnops"] == nil)
        #expect(table[""] == nil)
    }
}
