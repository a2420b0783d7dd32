import Testing
@testable import VigilCore

struct JSONParserTests {
    @Test func parsesNestedDocumentKeepingKeyOrder() throws {
        let value = try JSONParser.parse(#"{"b":1,"a":[true,null,-2.5e3,"x\n\u00e9\ud83d\ude00"],"c":{"d":9223372036854775807}}"#)
        guard case .object(let object) = value else { Issue.record("not an object"); return }
        #expect(object.members.map(\.key) == ["b", "a", "c"])
        #expect(object["b"] == .int(1))
        #expect(object["a"] == .array([.bool(true), .null, .double(-2500), .string("x\né😀")]))
        #expect(value.value(atPath: "c.d") == .int(Int64.max))
    }

    @Test(arguments: [
        ("{", JSONParseError.Code.unexpectedEnd, 1),
        ("{\"a\" 1}", .unexpectedCharacter, 5),
        ("[1,]", .unexpectedCharacter, 3),
        ("01", .trailingData, 1),
        ("\"\\x\"", .invalidEscape, 2),
        ("\"\\ud800\"", .invalidEscape, 1),
        ("{} {}", .trailingData, 3),
        ("-", .unexpectedEnd, 1),
        ("1.", .unexpectedEnd, 2),
        ("tru", .unexpectedEnd, 3),
    ])
    func reportsCodeAndOffsetOfBadInput(_ input: String, _ code: JSONParseError.Code, _ offset: Int) {
        #expect(throws: JSONParseError(code: code, offset: offset)) { try JSONParser.parse(input) }
    }

    @Test func refusesDeepNestingInsteadOfOverflowingTheStack() {
        let deep = String(repeating: "[", count: 100_000)
        #expect(throws: JSONParseError(code: .tooDeep, offset: JSONParser.maxDepth)) { try JSONParser.parse(deep) }
    }

    @Test func refusesInvalidUTF8InStrings() {
        #expect(throws: JSONParseError.self) { try JSONParser.parse([0x22, 0xFF, 0xFE, 0x22]) }
    }

    /// Strings with escapes are copied by runs: the same text, or the same refusal, as
    /// decoding byte by byte (raw control bytes and invalid UTF-8 after an escape included).
    @Test func escapedStringsAgreeWithDecodingByteByByte() {
        func reference(_ body: [UInt8]) -> String? {
            var out: [UInt8] = []
            var i = 0
            while i < body.count {
                let byte = body[i]
                if byte < 0x20 { return nil }
                guard byte == UInt8(ascii: "\\") else { out.append(byte); i += 1; continue }
                guard i + 1 < body.count else { return nil }
                switch body[i + 1] {
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "\\"): out.append(0x5C)
                case UInt8(ascii: "\""): out.append(0x22)
                case UInt8(ascii: "/"): out.append(0x2F)
                case UInt8(ascii: "u"):
                    guard i + 6 <= body.count, let scalar = UInt32(String(decoding: body[(i + 2)..<(i + 6)], as: UTF8.self), radix: 16),
                          let unicode = Unicode.Scalar(scalar) else { return nil }
                    out.append(contentsOf: Array(String(Character(unicode)).utf8))
                    i += 4
                default: return nil
                }
                i += 2
            }
            return String(validating: out, as: UTF8.self)
        }
        let pieces: [[UInt8]] = [Array("C:".utf8), [0x5C, 0x5C], Array("Windows".utf8), [0x5C, 0x6E], [0x5C, 0x22], Array(#"é"#.utf8),
                                 Array(#"A"#.utf8), Array("é".utf8), Array("😀".utf8), [0xFF], [0xC3], [0x01], [0x5C, 0x71], Array(" ".utf8), [0x2F],
                                 // Runs of eight and more (scanned a word at a time), the other
                                 // short escapes, and bytes next to the special ones.
                                 Array("abcdefgh".utf8), [0x5C, 0x72], [0x5C, 0x62], [0x5C, 0x66], [0x5C, 0x74], [0x5C, 0x2F], [0x7F], [0x1F], [0x21], [0x5B], [0x5D]]
        var generator = SystemRandomNumberGenerator()
        var parsed = 0
        for _ in 0..<30_000 {
            let body = (0..<Int.random(in: 0...16, using: &generator)).flatMap { _ in pieces.randomElement(using: &generator)! }
            let found = try? JSONParser.parse([0x22] + body + [0x22])
            #expect(found == reference(body).map { .string($0) }, "\(body)")
            if found != nil { parsed += 1 }
        }
        #expect(parsed > 1_000)
    }

    /// `firstValues(of:)` finds what the subscript finds, for lower-case ASCII keys, among
    /// duplicates and keys that are near them (other lengths, cases, non-ASCII look-alikes).
    @Test func firstValuesAgreeWithTheSubscript() {
        let memberKeys = ["source", "sourc", "sources", "Source", "\u{17F}ource", "event", "e\u{301}vent", "host", "url", "\u{212A}"]
        let wanted = ["source", "event", "host", "url", "k", "absent"]
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2_000 {
            var object = JSONObject()
            for n in 0..<Int.random(in: 0..<10, using: &generator) {
                object.members.append((memberKeys.randomElement(using: &generator)!, .int(Int64(n))))
            }
            #expect(object.firstValues(of: wanted) == wanted.map { object[$0] }, "\(object.members.map(\.key))")
        }
    }

    /// `values(at:)` finds what `value(atKeys:)` finds for each path (the first member at
    /// every level), among duplicates, scalars where objects are expected, and look-alike keys
    /// below the root, where the keys need not suit `firstValues(of:)` (`K`, `;`).
    @Test func pathValuesAgreeWithFollowingEachPath() {
        let paths = [["source", "ip"], ["source", "port"], ["host", "name"], ["host"], ["event", "K"], ["event", "a;b"], ["x", "y", "z"]]
        let set = KeyPathSet(paths)
        let rootKeys = ["source", "host", "event", "x", "sourc", "\u{17F}ource"]
        let innerKeys = ["ip", "port", "name", "K", "\u{212A}", "a;b", "a\u{37E}b", "y", "z", "i"]
        var generator = SystemRandomNumberGenerator()
        func object(depth: Int) -> JSONObject {
            JSONObject((0..<Int.random(in: 0..<6, using: &generator)).map { n in
                let key = (depth == 0 ? rootKeys : innerKeys).randomElement(using: &generator)!
                return (key, depth < 2 && Bool.random(using: &generator) ? .object(object(depth: depth + 1)) : .int(Int64(n)))
            })
        }
        for _ in 0..<3_000 {
            let document = object(depth: 0)
            #expect(document.values(at: set) == paths.map { JSONValue.object(document).value(atKeys: $0) }, "\(JSONWriter.string(.object(document)))")
        }
    }

    @Test func roundTripsThroughTheWriter() throws {
        let text = #"{"message":"a \"quoted\"\ttab \u0001","n":[1,2.5,-3],"o":{}}"#
        let value = try JSONParser.parse(text)
        #expect(try JSONParser.parse(JSONWriter.string(value)) == value)
        #expect(JSONWriter.string(value) == #"{"message":"a \"quoted\"\ttab \u0001","n":[1,2.5,-3],"o":{}}"#)
    }

    @Test func parsesConcatenatedDocumentsAndNamesTheBrokenOne() throws {
        let values = try JSONParser.parseConcatenated(Array(#"{"a":1}{"a":2}  {"a":3}"#.utf8))
        #expect(values.count == 3)
        do {
            _ = try JSONParser.parseConcatenated(Array(#"{"a":1}{"a":}"#.utf8))
            Issue.record("expected an error")
        } catch {
            #expect(error.documentIndex == 1)
        }
    }

    @Test func neverTrapsOnRandomBytes() {
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array(#"{}[]":,.-+eE0123456789truefalsnl\u "#.utf8) + [0x00, 0xFF, 0xC3]
        for _ in 0..<20_000 {
            let length = Int.random(in: 0..<40, using: &generator)
            let bytes = (0..<length).map { _ in alphabet.randomElement(using: &generator)! }
            _ = try? JSONParser.parse(bytes)
            _ = try? JSONParser.parseConcatenated(bytes)
        }
    }
}

struct TimestampTests {
    @Test(arguments: [
        ("1970-01-01T00:00:00Z", Int64(0)),
        ("2026-11-24T10:00:00.123Z", Int64(1_795_514_400_123)),
        ("2026-11-24T12:00:00.123456+02:00", Int64(1_795_514_400_123)),
        ("2026-11-24 10:00:00Z", Int64(1_795_514_400_000)),
        ("2024-02-29T00:00:00-0100", Int64(1_709_168_400_000)),
        ("1969-12-31T23:59:59.999Z", Int64(-1)),
    ])
    func parsesRFC3339(_ text: String, _ millis: Int64) {
        #expect(Timestamp.parseRFC3339(text) == millis)
    }

    @Test(arguments: ["", "2026-13-01T00:00:00Z", "2023-02-29T00:00:00Z", "2026-11-24T10:00:00", "2026-11-24T25:00:00Z",
                      "2026-11-24T10:00:00.Z", "2026-11-24T10:00:00Zjunk", "yesterday"])
    func rejectsInvalidTimes(_ text: String) {
        #expect(Timestamp.parseRFC3339(text) == nil)
    }

    @Test func formatsAndParsesBack() {
        for millis: Int64 in [0, 1, 999, 86_399_999, 1_795_514_400_123, -86_400_001, 4_102_444_800_000] {
            #expect(Timestamp.parseRFC3339(Timestamp.formatRFC3339(millis)) == millis)
        }
        #expect(Timestamp.formatRFC3339(1_795_514_400_123) == "2026-11-24T10:00:00.123Z")
    }

    @Test func dayStampsRoundTrip() {
        let day = Timestamp.day(of: 1_795_514_400_123)
        #expect(Timestamp.dayStamp(day) == "20261124")
        #expect(Timestamp.day(fromStamp: "20261124") == day)
        #expect(Timestamp.day(fromStamp: "20261340") == nil)
    }

    @Test func manualClockMovesOnlyWhenTold() {
        let clock = ManualClock(1_000)
        #expect(clock.now() == 1_000)
        clock.advance(byMillis: 500)
        #expect(clock.now() == 1_500)
    }
}

struct FieldNestingTests {
    @Test func nestsDottedKeysAndMergesWithObjects() throws {
        let input = try JSONParser.parse(#"{"host.name":"a","host":{"ip":"1.2.3.4"},"source.port":22,"message":"m"}"#).objectValue!
        let nested = FieldNesting.nest(input)
        #expect(JSONWriter.string(.object(nested)) == #"{"host":{"name":"a","ip":"1.2.3.4"},"source":{"port":22},"message":"m"}"#)
    }

    @Test func keepsCollidingDottedKeysLiterally() throws {
        let input = try JSONParser.parse(#"{"a":1,"a.b":2,".x":3,"y..z":4}"#).objectValue!
        let nested = FieldNesting.nest(input)
        #expect(nested["a"] == .int(1))
        #expect(nested["a.b"] == .int(2))
        #expect(nested[".x"] == .int(3))
        #expect(nested["y..z"] == .int(4))
    }

    @Test func tenantNamesAreSafeFileNames() {
        #expect(TenantName("acme-corp_1") != nil)
        for bad in ["", "Acme", "../etc", "a/b", "-lead", String(repeating: "a", count: 65), "acmé"] {
            #expect(TenantName(bad) == nil)
        }
    }

    @Test func eventKeyBytesRoundTrip() {
        let key = EventKey(high: 0x0102_0304_0506_0708, low: 0x090A_0B0C_0D0E_0F10)
        #expect(EventKey(digest: key.bytes) == key)
        #expect(key.description == "0102030405060708090a0b0c0d0e0f10")
    }
}
