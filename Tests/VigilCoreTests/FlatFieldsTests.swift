import Testing
import VigilCore

struct FlatFieldsTests {
    static let paths = [
        "log.syslog.priority", "log.syslog.facility.code", "log.level",
        "observer.vendor", "observer.ingress.interface.name", "observer.egress.interface.name", "observer.name",
        "source.ip", "source.port", "source.nat.ip", "destination.ip",
        "event.category", "event.action", "related.ip", "message", "é.x",
    ]
    static let literals: [JSONValue] = [.string("Palo Alto Networks"), .array([.string("network")]), .null, .bool(true)]
    /// Texts that need escaping, non-ASCII ones, and empty ones.
    static let texts = ["10.0.0.1", "", "a \"quoted\" \\ path", "tab\there\nnewline", "\u{1}ctl", "née", "日本語", "fourteen chars", "exactly sixteen!", "a text longer than sixteen bytes"]

    /// Integers from both ends of the range and between.
    static let integers: [Int64] = [0, 1, -1, 443, 65_535, 1_234_567_890_123, Int64.max, Int64.min]

    static func randomFields(_ schema: FlatSchema, _ generator: inout SplitMix64) -> FlatFields {
        FlatFields.random(schema, texts: texts, integers: integers, density: 0.5, using: &generator)
    }

    @Test func writesTheDocumentThatSettingEachPathInOrderBuilds() throws {
        let schema = try FlatSchema(paths: Self.paths, literals: Self.literals)
        var generator = SplitMix64(seed: 5)
        for _ in 0..<2_000 {
            let fields = Self.randomFields(schema, &generator)
            var expected = JSONObject()
            for path in schema.paths.indices {
                if let value = fields.value(path) { FieldNesting.set(value, at: schema.paths[path], in: &expected) }
            }
            #expect(fields.object() == expected)
            let written = fields.write()
            #expect(written == JSONWriter.bytes(.object(expected)), "\(String(decoding: written, as: UTF8.self))")
        }
    }

    @Test func leavesOutOmittedPathsButKeepsTheirObjectsAndAppendsMembers() throws {
        let schema = try FlatSchema(paths: Self.paths, literals: Self.literals)
        var generator = SplitMix64(seed: 9)
        for _ in 0..<2_000 {
            let fields = Self.randomFields(schema, &generator)
            let omitting = schema.paths.indices.map { _ in Bool.random(using: &generator) }
            var expected = JSONObject()
            for path in schema.paths.indices {
                guard let value = fields.value(path) else { continue }
                // The objects on the way are made even when the member itself is left out.
                let parts = schema.paths[path].split(separator: ".").map(String.init)
                if omitting[path] {
                    Self.ensureObjects(parts.dropLast(), in: &expected)
                } else {
                    FieldNesting.set(value, at: schema.paths[path], in: &expected)
                }
            }
            let vigil: JSONValue = .object(JSONObject([("tenant", .string("t\"1"))]))
            expected["vigil"] = vigil
            #expect(fields.write(omitting: omitting, appending: [("vigil", vigil)]) == JSONWriter.bytes(.object(expected)))
        }
    }

    static func ensureObjects(_ keys: ArraySlice<String>, in object: inout JSONObject) {
        guard let key = keys.first else { return }
        var child = object[key]?.objectValue ?? JSONObject()
        ensureObjects(keys.dropFirst(), in: &child)
        object[key] = .object(child)
    }

    @Test func anEventWithNoFieldsIsAnEmptyObject() throws {
        let schema = try FlatSchema(paths: Self.paths)
        let fields = FlatFields(schema: schema, bytes: [])
        #expect(fields.write() == Array("{}".utf8))
        #expect(fields.object() == JSONObject())
        #expect(fields.write(appending: [("a", .int(1))]) == Array("{\"a\":1}".utf8))
    }

    @Test func readsBackWhatWasSet() throws {
        let schema = try FlatSchema(paths: ["source.ip", "source.port", "event.category"], literals: [.array([.string("network")])])
        var fields = FlatFields(schema: schema, bytes: Array("src=10.0.0.1 ".utf8))
        let ip = try #require(schema.path("source.ip")), port = try #require(schema.path("source.port")), category = try #require(schema.path("event.category"))
        fields.set(ip, text: 4..<12)
        fields.set(port, int: 443)
        fields.set(category, literal: 0)
        #expect(fields.text(ip) == "10.0.0.1")
        #expect(fields.textRange(ip) == 4..<12)
        #expect(fields.int(port) == 443)
        #expect(fields.text(port) == nil)
        #expect(fields.value(category) == .array([.string("network")]))
        fields.remove(port)
        #expect(!fields.isSet(port))
        #expect(String(decoding: fields.write(), as: UTF8.self) == #"{"source":{"ip":"10.0.0.1"},"event":{"category":["network"]}}"#)
        #expect(schema.path("destination.ip") == nil)
    }

    /// Texts copied in from any collection of bytes land after the line, in order: contiguous
    /// ones (a String's bytes, an array, a slice) and others (a lazy map, a reversed view).
    @Test func copiesTextsFromAnyCollectionOfBytes() throws {
        let schema = try FlatSchema(paths: ["a", "b", "c", "d", "e"])
        var fields = FlatFields(schema: schema, bytes: Array("line ".utf8))
        let long = "Zoë and a text longer than sixteen bytes"
        fields.set(0, copying: long.utf8)
        fields.set(1, copying: Array("array".utf8))
        fields.set(2, copying: Array("a slice!".utf8)[2...])
        fields.set(3, copying: "LAZY".utf8.lazy.map { $0 | 0x20 })
        fields.set(4, copying: "desrever".utf8.reversed())
        #expect(fields.text(0) == long)
        #expect(fields.text(1) == "array")
        #expect(fields.text(2) == "slice!")
        #expect(fields.text(3) == "lazy")
        #expect(fields.text(4) == "reversed")
        #expect(fields.textRange(0) == 5..<(5 + long.utf8.count))
        #expect(fields.bytes.count == 5 + long.utf8.count + 5 + 6 + 4 + 8)
    }

    @Test(arguments: [
        (["a.b", "c", "a.d"], "contiguous"),
        (["a.b", "a.b.c"], "both a value and an object"),
        (["a", "a.b"], "both a value and an object"),
        (["a.b", "a.b"], "listed twice"),
        (["a..b"], "empty part"),
        (["a.b.c.d.e.f.g.h.i"], "more than 8 parts"),
    ])
    func refusesSchemasItCannotWriteInOnePass(paths: [String], reason: String) {
        #expect {
            _ = try FlatSchema(paths: paths)
        } throws: { error in
            "\(error)".contains(reason)
        }
    }
}
