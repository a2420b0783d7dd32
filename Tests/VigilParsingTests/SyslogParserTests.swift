import Testing
import VigilCore
@testable import VigilParsing

struct SyslogParserTests {
    static let ref: EpochMillis = Timestamp.parseRFC3339("2026-01-01T00:30:00Z") ?? 0

    @Test func parsesRFC5424WithStructuredDataAndBOM() {
        let m = SyslogParser().parse("<34>1 2003-10-11T22:14:15.003Z mymachine su - ID47 [a@1 k=\"v\\\"q\"] \u{FEFF}msg", referenceTime: 0)
        #expect(m.format == .rfc5424)
        #expect(m.hostname == "mymachine")
        #expect(m.procID == nil)
        #expect(m.msgID == "ID47")
        #expect(m.structuredData?["a@1"]?.objectValue?["k"] == .string("v\"q"))
        #expect(m.message == "msg")
        #expect(m.timestamp == Timestamp.parseRFC3339("2003-10-11T22:14:15.003Z"))
    }

    @Test func infersYearClosestToReferenceButNotInTheFuture() {
        let m = SyslogParser().parse("<13>Dec 31 23:59:00 h app: x", referenceTime: Self.ref)
        #expect(m.timestamp == Timestamp.parseRFC3339("2025-12-31T23:59:00Z"))
        #expect(!m.timestampHasYear)
        let soon = SyslogParser().parse("Jan  1 12:00:00 h app: x", referenceTime: Self.ref)
        #expect(soon.timestamp == Timestamp.parseRFC3339("2026-01-01T12:00:00Z"))
    }

    /// Month names are matched by byte in any case; bytes that only look alike after OR-ing
    /// 0x20 (`@` for `` ` ``, digits, symbols) are not months.
    @Test func monthNamesMatchInAnyCaseAndNothingElse() {
        let names = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        for (index, name) in names.enumerated() {
            for spelling in [name, name.uppercased(), name.lowercased(), String(name.prefix(1)).lowercased() + name.dropFirst().uppercased()] {
                let m = SyslogParser().parse("<13>\(spelling) 10 01:02:03 h app: x", referenceTime: Timestamp.parseRFC3339("2026-12-31T12:00:00Z") ?? 0)
                let expected = Timestamp.dayNumber(year: 2026, month: index + 1, day: 10).map { $0 * 86_400_000 + 3_723_000 }
                #expect(m.timestamp == expected, "\(spelling)")
                #expect(m.hostname == "h", "\(spelling)")
            }
        }
        for near in ["J@N", "Ja ", "\u{7F}an", "Jam", "1an", "JaN\u{0}"] {
            let m = SyslogParser().parse("<13>\(near) 10 01:02:03 h app: x", referenceTime: Self.ref)
            #expect(m.timestamp == nil, "\(near.debugDescription) is not a month")
        }
    }

    @Test func parsesISOTimestampWithOffsetAndCiscoHeader() {
        let m = SyslogParser().parse("2026-04-03T00:31:09.976660+02:00 192.168.2.1 date=x", referenceTime: 0)
        #expect(m.timestamp == Timestamp.parseRFC3339("2026-04-02T22:31:09.976Z"))
        #expect(m.hostname == "192.168.2.1")
        let asa = SyslogParser().parse("<166>Aug 18 2026 18:24:29 asa-fw-01 : %ASA-6-302020: Built", referenceTime: 0)
        #expect(asa.hostname == "asa-fw-01")
        #expect(asa.message == "%ASA-6-302020: Built")
        #expect(asa.timestamp == Timestamp.parseRFC3339("2026-08-18T18:24:29Z"))
    }

    @Test func lineWithoutHeaderIsAllMessage() {
        let m = SyslogParser().parse("hello world", referenceTime: 0)
        #expect(m.format == .none)
        #expect(m.message == "hello world")
    }
}

extension SyslogParserTests {
    /// The header's ECS fields built member by member equal setting each path (placeholders,
    /// numbers that are not, structured data, absent parts).
    @Test func headerFieldsBuiltDirectlyEqualSettingEachPath() {
        let texts: [String?] = [nil, "", "-", "N/A", "n/a", "fw1", "12", "x y", "0x1a"]
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<3_000 {
            var message = SyslogMessage()
            message.priority = Bool.random(using: &generator) ? Int.random(in: 0...191, using: &generator) : nil
            message.hostname = texts.randomElement(using: &generator)!
            message.appName = texts.randomElement(using: &generator)!
            message.procID = texts.randomElement(using: &generator)!
            message.msgID = texts.randomElement(using: &generator)!
            message.structuredData = [nil, JSONObject(), JSONObject([("id@1", .object(JSONObject([("k", .string("v"))])))])].randomElement(using: &generator)!
            #expect(message.ecsFields == message.ecsFieldsByPath, "\(message)")
        }
    }
}
