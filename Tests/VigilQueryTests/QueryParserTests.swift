import Testing
import VigilQuery

struct QueryParserTests {
    @Test(arguments: [
        ("*", QueryNode.all),
        ("", .all),
        ("failed", .term("failed")),
        (#""failed password""#, .phrase("failed password")),
        ("host.name:web-1", .fieldEquals(field: "host.name", value: "web-1")),
        (#"user.name:"john doe""#, .fieldEquals(field: "user.name", value: "john doe")),
        ("a AND b", .and([.term("a"), .term("b")])),
        (#"* host.name:x "two words""#, .and([.fieldEquals(field: "host.name", value: "x"), .phrase("two words")])),
    ])
    func parsesTheFoundationSubset(_ text: String, _ expected: QueryNode) throws {
        #expect(try QueryParser().parse(text) == expected)
    }

    @Test(arguments: [
        (#""open"#, 0, "a closing '\"'"),
        ("host.name:", 10, "a value after 'host.name:'"),
        (":x", 0, "a field name before ':'"),
        ("AND x", 0, "a term before AND"),
    ])
    func namesPositionAndExpectation(_ text: String, _ offset: Int, _ expected: String) {
        #expect(throws: QuerySyntaxError(offset: offset, expected: expected)) { try QueryParser().parse(text) }
    }

    @Test func refusesOversizeQueries() {
        #expect(throws: QuerySyntaxError.self) { try QueryParser().parse(String(repeating: "a ", count: 5_000)) }
    }
}
