import Testing
import VigilCore

struct HexTests {
    /// Every byte as two lower-case digits, after the prefix, as `String(_:radix:)` spells it.
    @Test func writesEachByteAsTwoLowerCaseDigitsAfterThePrefix() {
        let bytes = (0...255).map { UInt8($0) }
        let expected = bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
        #expect(Hex.string(bytes) == expected)
        #expect(Hex.string(prefix: "vsip", bytes) == "vsip" + expected)
        #expect(Hex.string(prefix: "née", [0xAB]) == "néeab")
        #expect(Hex.string([UInt8]()) == "")
        #expect((0..<16).map { Hex.digit(UInt8($0)) } == Array("0123456789abcdef".utf8))
        #expect(EventKey(high: 0x0123_4567_89AB_CDEF, low: 0xFEDC_BA98_7654_3210).description == "0123456789abcdeffedcba9876543210")
    }
}
