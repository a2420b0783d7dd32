import Testing
import VigilCore
import VigilStorage

/// `StoredEvent(flat:)` against the initializer taking the nested document its fields stand
/// for: the same columns, message and stored document for every kind of value a field can
/// hold in a column's place (a text, a number, a literal of any JSON type, a list, an object).
struct StoredEventFlatTests {
    /// Every column's path, `message`, and paths beside them in their objects.
    static let paths = [
        "message",
        "event.dataset", "event.action", "event.outcome", "event.category",
        "host.name", "host.ip",
        "source.ip", "source.port", "source.nat.ip",
        "destination.ip", "destination.port",
        "network.transport", "user.name", "observer.vendor", "observer.name", "labels",
    ]
    static let literals: [JSONValue] = [
        .string("panos.traffic"), .string("443"), .int(443), .int(-7), .double(1.5), .bool(true), .null,
        .array([.string("network")]), .object(JSONObject([("a", .string("b"))])),
    ]
    /// Texts a column may or may not take as they are: digits (a port only from those that fit
    /// an Int64), signs, spaces, escapes, non-ASCII, empty.
    static let texts = ["10.0.0.1", "443", "-12", "+8", " 22", "99999999999999999999", "", "a \"quoted\" \\ text",
                        "née", "日本語", "a text longer than sixteen bytes", "tcp"]

    @Test func flatFieldsAreEncodedAsTheDocumentTheyStandFor() throws {
        let schema = try FlatSchema(paths: Self.paths, literals: Self.literals)
        let tenant = TenantName("acme")!
        let added: [(key: String, value: JSONValue)] = [("vigil", .object(JSONObject([("tenant", .string("acme")), ("event_id", .string("e-1"))])))]
        var generator = SplitMix64(seed: 7)
        var omittedColumns = 0, keptColumns = 0, messages = 0
        let sourcePort = try #require(schema.path("source.port"))
        for _ in 0..<3_000 {
            let fields = FlatFields.random(schema, texts: Self.texts, integers: [0, 22, 443, -1, Int64.max, Int64.min], density: 0.75, using: &generator)
            var document = fields.object()
            for member in added { document[member.key] = member.value }
            let flat = StoredEvent(tenant: tenant, key: EventKey(high: 1, low: 2), timestamp: 5, ingested: 6, flat: fields, appending: added)
            let nested = StoredEvent(tenant: tenant, key: EventKey(high: 1, low: 2), timestamp: 5, ingested: 6, fields: document)
            #expect(flat.columns == nested.columns, "\(JSONWriter.string(.object(document)))")
            #expect(flat.message == nested.message)
            #expect(flat.document == nested.document,
                    "\(String(decoding: flat.document, as: UTF8.self))\n\(String(decoding: nested.document, as: UTF8.self))")
            // And the stored event gives the document back.
            #expect(flat.event()?.fields == nested.event()?.fields)
            if flat.message != nil { messages += 1 }
            // A port column takes an integer (left out of the document) or a string of digits
            // (kept in it as a string).
            if fields.int(sourcePort) != nil {
                omittedColumns += 1
            } else if let text = fields.text(sourcePort), Int64(text) != nil {
                keptColumns += 1
            }
        }
        // The sample reaches both sides of the rules: columns left out of the document and
        // columns whose field stays in it (a string of digits in a port column).
        #expect(messages > 500)
        #expect(omittedColumns > 100 && keptColumns > 50, "\(omittedColumns) \(keptColumns)")
    }
}
