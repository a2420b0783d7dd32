import Testing
import VigilQuery

struct QueryParserTests {
    func filter(_ text: String) throws -> QueryNode { try QueryParser().parse(text).filter }

    @Test(arguments: [
        ("*", QueryNode.all),
        ("", .all),
        ("failed", .text(.term("failed"))),
        (#""failed password""#, .text(.phrase("failed password"))),
        ("pass*", .text(.prefix("pass"))),
        ("host.name:web-1", .field("host.name", .equals("web-1"))),
        (#"user.name:"john doe""#, .field("user.name", .equals("john doe"))),
        ("url.path:/api*", .field("url.path", .prefix("/api"))),
        ("message:failed", .text(.term("failed"))),
        (#"message:"a b""#, .text(.phrase("a b"))),
        ("_exists_:user.name", .exists("user.name")),
        ("user.name:*", .exists("user.name")),
        ("destination.port:[1 TO 1024]", .field("destination.port", .range(lower: RangeBound("1", inclusive: true), upper: RangeBound("1024", inclusive: true)))),
        ("bytes:{10 TO *]", .field("bytes", .range(lower: RangeBound("10", inclusive: false), upper: nil))),
        ("bytes>=10", .field("bytes", .range(lower: RangeBound("10", inclusive: true), upper: nil))),
        ("bytes:<5", .field("bytes", .range(lower: nil, upper: RangeBound("5", inclusive: false)))),
        ("source.ip:10.0.0.0/8", .field("source.ip", .cidr(IPNetwork("10.0.0.0/8")!))),
        ("source.ip:fe80::1", .field("source.ip", .equals("fe80::1"))),
        ("path:C\\:\\\\x", .field("path", .equals("C:\\x"))),
        ("a b", .and([.text(.term("a")), .text(.term("b"))])),
        ("a AND b", .and([.text(.term("a")), .text(.term("b"))])),
        ("a OR b c", .or([.text(.term("a")), .and([.text(.term("b")), .text(.term("c"))])])),
        ("NOT a", .not(.text(.term("a")))),
        ("a NOT b", .and([.text(.term("a")), .not(.text(.term("b")))])),
        ("(a OR b) AND NOT (c d)", .and([.or([.text(.term("a")), .text(.term("b"))]), .not(.and([.text(.term("c")), .text(.term("d"))]))])),
        ("and or not", .and([.text(.term("and")), .text(.term("or")), .text(.term("not"))])),
        (#"* host.name:x "two words""#, .and([.field("host.name", .equals("x")), .text(.phrase("two words"))])),
        ("((a))", .text(.term("a"))),
    ])
    func parsesFilters(_ text: String, _ expected: QueryNode) throws {
        #expect(try filter(text) == expected)
    }

    @Test func parsesStages() throws {
        let query = try QueryParser().parse("sshd | stats count(), dc(user.name), sum(bytes), avg(bytes) by host.name, event.outcome | sort count() desc | head 5")
        #expect(query.filter == .text(.term("sshd")))
        #expect(query.stages == [
            .stats(Aggregation(functions: [.count, .distinctCount("user.name"), .sum("bytes"), .avg("bytes")], groupBy: ["host.name", "event.outcome"])),
            .sort([SortKey("count()", descending: true)]),
            .head(5),
        ])
        #expect(query.aggregation?.columns == ["host.name", "event.outcome", "count()", "dc(user.name)", "sum(bytes)", "avg(bytes)"])
        let chart = try QueryParser().parse("* | timechart span=5m count() by event.outcome")
        #expect(chart.aggregation == Aggregation(functions: [.count], groupBy: ["event.outcome"], span: 300_000))
        #expect(chart.aggregation?.columns == ["_time", "event.outcome", "count()"])
        #expect(try QueryParser().parse("| timechart count").aggregation?.span == 60_000)
        let events = try QueryParser().parse("failed | sort host.name, -source.port | fields host.name, message | head 3")
        #expect(events.stages == [.sort([SortKey("host.name", descending: false), SortKey("source.port", descending: true)]),
                                  .fields(["host.name", "message"]), .head(3)])
    }

    @Test(arguments: [
        (#""open"#, 0, "a closing '\"' for the one at offset 0"),
        ("host.name:", 10, "a value after 'host.name:'"),
        ("host.name: x", 10, "a value after 'host.name:'"),
        ("AND x", 0, "a term before AND"),
        ("a OR", 4, "a term, \"phrase\", field:value or '(' after the operator"),
        ("(a OR b", 7, "')' to close the '(' at offset 0"),
        ("a)", 1, "no ')' without a matching '('"),
        ("()", 1, "a query inside '()'"),
        ("*abc", 0, "'*' only at the end of a value (escape it as '\\*' to search for it)"),
        ("f:[1 2]", 5, "TO between the bounds of the range at offset 2"),
        ("f:[1 TO 2", 9, "']' or '}' to close the range at offset 2"),
        ("f:[* TO *]", 2, "at least one bound that is not '*'"),
        ("x | bogus", 4, "a stage: stats, timechart, sort, head or fields"),
        ("x | head 0", 9, "a number of rows from 1 to 1000000 after head"),
        ("x | stats foo()", 10, "an aggregate: count(), dc(f), sum(f), avg(f), min(f) or max(f)"),
        ("x | stats sum()", 10, "a field inside sum()"),
        ("x | timechart span=5w count()", 20, "a span unit: s, m, h or d"),
        ("x | sort a | stats count()", 13, "stats or timechart as the first stage only"),
        ("x | stats count() | fields a", 20, "no fields stage after stats or timechart (their columns are fixed)"),
        ("a..b:x", 0, "a field name of at most 128 letters, digits, '_', '-', '@' and '.' without empty segments"),
        ("x | head 3 extra", 11, "'|' or the end of the query"),
    ])
    func namesPositionAndExpectation(_ text: String, _ offset: Int, _ expected: String) {
        #expect(throws: QuerySyntaxError(offset: offset, expected: expected)) { try QueryParser().parse(text) }
    }

    @Test func refusesOversizeAndTooDeepQueriesWithoutRecursingForever() {
        #expect(throws: QuerySyntaxError.self) { try QueryParser().parse(String(repeating: "a ", count: 5_000)) }
        #expect(throws: QuerySyntaxError.self) { try QueryParser().parse(String(repeating: "(", count: 4_000)) }
        #expect(throws: QuerySyntaxError.self) { try QueryParser().parse(String(repeating: "NOT ", count: 2_000) + "a") }
    }

    @Test func limitsAreCheckedAfterParsing() throws {
        var limits = SearchLimits()
        limits.maxTerms = 3
        limits.maxDepth = 2
        limits.minWildcardPrefix = 3
        #expect(throws: SearchLimitError.self) { try QueryChecker.parse("a b c d", limits: limits) }
        #expect(try QueryChecker.parse("a b c", limits: limits).filter == .and([.text(.term("a")), .text(.term("b")), .text(.term("c"))]))
        #expect(throws: SearchLimitError.self) { try QueryChecker.parse("(a OR (b AND NOT c))", limits: limits) }
        #expect(throws: SearchLimitError.self) { try QueryChecker.parse("ab*", limits: limits) }
        #expect(throws: SearchLimitError.self) { try QueryChecker.parse("user.name:ab*", limits: limits) }
        #expect(try QueryChecker.parse("abc*", limits: limits).filter == .text(.prefix("abc")))
        limits.maxQueryBytes = 16
        do {
            _ = try QueryChecker.parse(String(repeating: "x", count: 17), limits: limits)
            Issue.record("an oversize query was accepted")
        } catch let error as SearchLimitError {
            #expect(error.limit == "max_query_bytes")
        }
        #expect(SearchLimits().applying(["timeout_ms": 50, "bogus": 1]).timeoutMillis == 50)
        for name in SearchLimits.names {
            #expect(SearchLimits()[name] != nil)
            #expect(SearchLimits.bounds(of: name)?.contains(SearchLimits()[name]!) == true)
        }
    }

    @Test func fuzzedQueriesParseOrFailWithAnOffsetInsideTheText() {
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("ab:*\"()[]{}|\\ ANDORNOT TO>=<-/.,stats count() by sort head 3 fields timechart span=1m _exists_ 10.0.0.0/8 é")
        for _ in 0..<5_000 {
            let text = String((0..<Int.random(in: 0...40, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! })
            do {
                _ = try QueryParser().parse(text)
            } catch {
                #expect(error.offset >= 0 && error.offset <= text.utf8.count, "offset \(error.offset) outside \(text.debugDescription)")
            }
        }
    }
}

struct IPNetworkTests {
    @Test func matchesAddressesInsideTheBlock() throws {
        let v4 = try #require(IPNetwork("10.0.0.0/8"))
        #expect(v4.contains(text: "10.200.3.4"))
        #expect(!v4.contains(text: "11.0.0.1"))
        #expect(!v4.contains(text: "not an ip"))
        #expect(!v4.contains(text: "::1"))
        let narrow = try #require(IPNetwork("192.168.1.128/25"))
        #expect(narrow.contains(text: "192.168.1.200"))
        #expect(!narrow.contains(text: "192.168.1.127"))
        let v6 = try #require(IPNetwork("2001:db8::/32"))
        #expect(v6.contains(text: "2001:db8:1::5"))
        #expect(!v6.contains(text: "2001:db9::1"))
        #expect(IPNetwork("0.0.0.0/0")!.contains(text: "8.8.8.8"))
        #expect(IPNetwork("10.0.0.0/33") == nil)
        #expect(IPNetwork("10.0.0/8") == nil)
        #expect(IPNetwork("1:2:3:4:5:6:7:8:9/64") == nil)
        #expect(IPAddress("::ffff:10.1.2.3")?.isIPv4 == true)
        #expect(IPAddress("fe80::1%eth0")?.description == "fe80:0:0:0:0:0:0:1")
    }
}
