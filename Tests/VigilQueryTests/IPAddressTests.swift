import Testing
@testable import VigilQuery

struct IPAddressTests {
    /// The reading by byte agrees with the reading by parts (split on dots, one to three ASCII
    /// digits each, a value that fits a byte) on random texts near and far from addresses.
    @Test func ipv4ByByteAgreesWithSplittingIntoParts() {
        func byParts(_ text: Substring) -> [UInt8]? {
            let parts = text.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 4 else { return nil }
            var out: [UInt8] = []
            for part in parts {
                guard (1...3).contains(part.count), part.allSatisfy(\.isASCIIDigit), let value = UInt8(part) else { return nil }
                out.append(value)
            }
            return out
        }
        var generator = SystemRandomNumberGenerator()
        let alphabet: [String] = ["0", "1", "2", "5", "9", ".", ".", "25", "255", "256", "010", "a", " ", "-", "+", "\u{0663}", "1\u{301}", "%"]
        var valid = 0
        for _ in 0..<20_000 {
            // Half random tokens, half three to five parts joined by dots (mostly valid).
            let text = Bool.random(using: &generator)
                ? (0..<Int.random(in: 0...10, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! }.joined()
                : (0..<Int.random(in: 3...5, using: &generator)).map { _ in Bool.random(using: &generator) ? String(Int.random(in: 0...300, using: &generator)) : alphabet.randomElement(using: &generator)! }.joined(separator: ".")
            let expected = byParts(text[...])
            #expect(IPAddress.parseIPv4(text[...]) == expected, "\(text)")
            if expected != nil { valid += 1 }
        }
        for text in ["0.0.0.0", "255.255.255.255", "10.01.002.3", "192.168.1.1"] {
            #expect(IPAddress.parseIPv4(text[...]) == byParts(text[...]))
            #expect(IPAddress(text)?.description == byParts(text[...])?.map(String.init).joined(separator: "."))
        }
        #expect(valid > 500)
        #expect(IPAddress("10.1.2.3%eth0")?.isIPv4 == true)
        #expect(IPAddress("1.2.3.256") == nil && IPAddress("1.2.3") == nil && IPAddress("1.2.3.4.5") == nil && IPAddress("1..2.3") == nil)
    }
}
