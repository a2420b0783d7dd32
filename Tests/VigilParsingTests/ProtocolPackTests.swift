import Testing
import VigilCore
import VigilParsing

struct ProtocolPackTests {
    static let now: EpochMillis = Timestamp.parseRFC3339("2026-03-02T00:00:00Z") ?? 0

    @Test(arguments: PackSamples.all)
    func normalizesKeyFields(_ sample: PackSample) {
        let event = Normalizer().normalize(line: sample.line, receivedAt: Self.now)
        #expect(event.dataset == sample.dataset)
        #expect(event.fields["message"] == .string(sample.line))
        #expect(JSONValue.object(event.fields).value(atPath: "event.dataset") == .string(sample.dataset))
        #expect(!event.parseFailure)
        let doc = JSONValue.object(event.fields)
        for (path, want) in sample.expect {
            #expect(doc.value(atPath: path) == want, "\(path)")
        }
    }

    @Test func jsonDocumentNoPackKnowsIsLeftAlone() {
        let doc = JSONObject([("foo", .string("bar"))])
        #expect(Normalizer().normalize(document: doc, receivedAt: 0) == nil)
    }
}
