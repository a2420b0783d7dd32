import Testing
import VigilCore

struct FieldTreeTests {
    /// Random paths over parts that collide (a scalar on the way, an object replaced by a
    /// scalar), empty parts, canonically equivalent non-ASCII keys (`é` precomposed and
    /// decomposed), and values that are documents themselves (with a literal dotted key).
    static let parts = ["a", "b", "source", "ip", "", "é", "e\u{301}", "x.y"]
    static let values: [JSONValue] = [
        .int(1), .string("s"), .null, .array([.int(2)]),
        .object(JSONObject([("ip", .string("10.0.0.1")), ("x.y", .int(3))])), .object(JSONObject()),
    ]
    static let bases: [JSONObject] = [
        JSONObject(),
        JSONObject([("a", .int(1)), ("source", .object(JSONObject([("port", .int(22))])))]),
        // Duplicate keys (a JSON document may have them: the first one is found) and a literal dotted key.
        JSONObject([("b", .int(1)), ("b", .object(JSONObject())), ("x.y", .object(JSONObject([("ip", .int(4))])))]),
    ]

    static func randomPath(_ generator: inout some RandomNumberGenerator) -> String {
        (0..<Int.random(in: 1...4, using: &generator)).map { _ in parts.randomElement(using: &generator)! }.joined(separator: ".")
    }

    @Test func buildsWhatSettingEachPathInOrderBuilds() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<3_000 {
            let base = Self.bases.randomElement(using: &generator)!
            var tree = FieldTree(base)
            var expected = base
            for _ in 0..<Int.random(in: 1...10, using: &generator) {
                let path = Self.randomPath(&generator)
                let value = Self.values.randomElement(using: &generator)!
                tree.set(value, at: path)
                FieldNesting.set(value, at: path, in: &expected)
                #expect(tree.object() == expected, "after setting \(path.debugDescription)")
                // Lookups see the same document, through values set as documents too.
                for _ in 0..<3 {
                    let probe = Self.randomPath(&generator)
                    #expect(tree.value(atPath: probe) == JSONValue.object(expected).value(atPath: probe), "looking up \(probe.debugDescription)")
                }
            }
        }
    }

    @Test func anEmptyTreeIsAnEmptyObjectAndEmptyPathsSetNothing() {
        var tree = FieldTree()
        #expect(tree.isEmpty)
        tree.set(.int(1), at: "")
        tree.set(.int(1), at: "..")
        #expect(tree.object() == JSONObject())
        tree.set(.int(1), at: ".a..b.")
        #expect(tree.object() == JSONObject([("a", .object(JSONObject([("b", .int(1))])))]))
        #expect(tree.value(atPath: "a.b") == .int(1))
        #expect(tree.value(atPath: "a") == .object(JSONObject([("b", .int(1))])))
    }
}
