import Testing
import VigilCore
import VigilStorage
@testable import VigilIntake

struct DecoderTests {
    let limits = IntakeLimits()

    func reasons(_ items: [DecodedItem]) -> [QuarantineReason?] {
        items.map { if case .rejected(let reason, _, _) = $0 { return reason } else { return nil } }
    }

    @Test func nativeDecodesLinesAndQuarantinesBadOnes() {
        var small = limits
        small.maxLineBytes = 60
        let body = Array("""
        {"@timestamp":"2026-11-24T10:00:00Z","message":"ok"}\r
        not json

        [1,2]
        {"@timestamp":1795514400000,"message":"ms"}
        {"message":"\(String(repeating: "x", count: 80))"}
        """.utf8)
        let items = NativeDecoder.decode(body, limits: small)
        #expect(reasons(items) == [nil, .malformedJSON, .malformedJSON, nil, .oversize])
        guard case .candidate(let first) = items[0], case .candidate(let fourth) = items[3] else { Issue.record("expected candidates"); return }
        #expect(first.timestamp == .millis(1_795_514_400_000))
        #expect(first.object["@timestamp"] == nil)
        #expect(fourth.timestamp == .millis(1_795_514_400_000))
    }

    /// Lines as splitting on every LF gives them (a last empty piece is no line), each
    /// without one trailing CR: empty bodies, blank lines, CRLF, a last line without LF, and
    /// lines longer than a vector register.
    @Test(arguments: ["", "\n", "\n\n", "a", "a\n", "a\r\n", "\r", "\r\n\r\n", "a\nb", "a\r\nb\r", "a\n\nb\n",
                      String(repeating: "x", count: 70) + "\n" + String(repeating: "y", count: 33) + "\r\nz"])
    func linesSplitAtEveryLineFeed(_ body: String) {
        // By byte: as `Character`s, "\r\n" is one and would not split.
        var expected = Array(body.utf8).split(separator: 0x0A, omittingEmptySubsequences: false).map(Array.init)
        if expected.last == [] { expected.removeLast() }
        expected = expected.map { $0.last == 0x0D ? Array($0.dropLast()) : $0 }
        #expect(LineSplitter.lines(Array(body.utf8)).map(Array.init) == expected)
    }

    @Test func nativeFlagsUnreadableTimestamps() {
        let items = NativeDecoder.decode(Array(#"{"@timestamp":"yesterday","message":"x"}"#.utf8), limits: limits)
        guard case .candidate(let candidate) = items[0], case .invalid = candidate.timestamp else { Issue.record("expected an invalid timestamp"); return }
    }

    @Test func hecMapsEnvelopeFields() throws {
        let body = Array(#"{"time":1795514400.5,"host":"h","source":"s","sourcetype":"st","index":"i","event":"hello","fields":{"site":"paris"}}{"event":{"user":"u"}}"#.utf8)
        let items = try HECDecoder.decodeEvents(body, limits: limits)
        #expect(items.count == 2)
        guard case .candidate(let first) = items[0] else { Issue.record("expected a candidate"); return }
        #expect(first.timestamp == .millis(1_795_514_400_500))
        #expect(first.object["message"] == .string("hello"))
        #expect(first.object["host.name"] == .string("h"))
        #expect(first.object["splunk.sourcetype"] == .string("st"))
        #expect(first.object["site"] == .string("paris"))
    }

    @Test(arguments: [
        (#"{"event":"a"}{"event":"#, HECStatus.invalidDataFormat, 1),
        (#"{"time":1}"#, .eventFieldRequired, 0),
        (#"{"event":"a"}{"event":""}"#, .eventFieldBlank, 1),
        (#"[1]"#, .invalidDataFormat, 0),
    ])
    func hecRefusesTheWholeRequestNamingTheEvent(_ body: String, _ status: HECStatus, _ index: Int) {
        do {
            _ = try HECDecoder.decodeEvents(Array(body.utf8), limits: limits)
            Issue.record("expected a refusal")
        } catch {
            #expect(error.status == status)
            #expect(error.invalidEventNumber == index)
        }
    }

    @Test func hecRawTakesMetadataFromTheQuery() throws {
        let items = try HECDecoder.decodeRaw(Array("line one\nline two\n".utf8), host: "h", source: nil, sourcetype: "st", limits: limits)
        #expect(items.count == 2)
        guard case .candidate(let first) = items[0] else { Issue.record("expected a candidate"); return }
        #expect(first.object["message"] == .string("line one"))
        #expect(first.object["host.name"] == .string("h"))
    }

    @Test func bulkDecodesActionsAndRefusesUpdates() throws {
        let body = Array("""
        {"create":{"_index":"logs","_id":"1"}}
        {"@timestamp":"2026-11-24T10:00:00Z","message":"a"}
        {"index":{}}
        {"message":
        {"update":{"_id":"2"}}
        {"doc":{"x":1}}
        {"delete":{"_id":"3"}}
        """.utf8)
        let operations = try BulkDecoder.decode(body, defaultIndex: "dflt", limits: limits)
        #expect(operations.map(\.action) == ["create", "index", "update", "delete"])
        #expect(operations.map(\.index) == ["logs", "dflt", "dflt", "dflt"])
        guard case .item(.candidate(let first)) = operations[0].outcome else { Issue.record("expected a candidate"); return }
        #expect(first.transportID == "1")
        guard case .item(.rejected(.malformedJSON, _, _)) = operations[1].outcome else { Issue.record("expected quarantine"); return }
        guard case .refused(400, _, _) = operations[2].outcome else { Issue.record("expected a refusal"); return }
    }

    @Test func bulkCreateWithoutTimestampIsMissingTimestampButIndexIsNot() throws {
        let body = Array("{\"create\":{}}\n{\"message\":\"a\"}\n{\"index\":{}}\n{\"message\":\"b\"}\n".utf8)
        let operations = try BulkDecoder.decode(body, defaultIndex: nil, limits: limits)
        guard case .item(.rejected(.missingTimestamp, _, _)) = operations[0].outcome else { Issue.record("expected missing_timestamp"); return }
        guard case .item(.candidate) = operations[1].outcome else { Issue.record("expected a candidate"); return }
    }

    @Test func bulkRefusesAMalformedActionLine() {
        #expect(throws: BulkRequestError.self) { try BulkDecoder.decode(Array("{\"message\":\"no action\"}\n".utf8), defaultIndex: nil, limits: limits) }
        #expect(throws: BulkRequestError.self) { try BulkDecoder.decode(Array("{\"index\":{}}\n".utf8), defaultIndex: nil, limits: limits) }
    }

    @Test func intakeRecordsRoundTrip() {
        let event = StoredEvent(Event(tenant: TenantName("acme")!, key: EventKey(high: 1, low: 2), timestamp: 5, ingested: 6,
                                      fields: JSONObject([("message", .string("m")), ("n", .int(-1)), ("source", .object(JSONObject([("port", .int(22))])))])))
        #expect(event.columns.sourcePort == 22)
        #expect(event.message == "m")
        #expect(IntakeRecord.decode(IntakeRecord.event(event).encoded()) == .event(event))
        // The tags of rules it matched at admission ride along (a record of its own kind), with
        // every bit of each tag.
        var matched = event
        matched.matched = [1, .max, 0x8000_0000_0000_0001]
        let record = IntakeRecord.event(matched).encoded()
        #expect(record.first == 4 && IntakeRecord.event(event).encoded().first == 3)
        #expect(IntakeRecord.decode(record) == .event(matched))
        #expect(IntakeRecord.decode(Array(record.dropLast())) == nil, "a cut tag")
        // A unique key (a syslog frame's) rides along too, with or without tags.
        for var unique in [event, matched] {
            unique.keyIsUnique = true
            let uniqueRecord = IntakeRecord.event(unique).encoded()
            #expect(uniqueRecord.first == (unique.matched.isEmpty ? 5 : 6))
            #expect(IntakeRecord.decode(uniqueRecord) == .event(unique))
        }
        // Cut anywhere or with any byte changed, a record decodes to nil or to a record, never a crash.
        for length in 0..<record.count { #expect(IntakeRecord.decode(Array(record.prefix(length))) == nil) }
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2_000 {
            var damaged = record
            damaged[Int.random(in: 0..<damaged.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
            _ = IntakeRecord.decode(damaged)
        }
        let item = QuarantineItem(tenant: TenantName("acme")!, reason: .oversize, detail: "d", source: "ingest", received: 7, raw: [0, 1, 255])
        #expect(IntakeRecord.decode(IntakeRecord.quarantine(item).encoded()) == .quarantine(item))
        #expect(IntakeRecord.decode([1, 2, 3]) == nil)
    }
}
