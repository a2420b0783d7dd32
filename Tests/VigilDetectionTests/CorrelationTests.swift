import Testing
import VigilCore
@testable import VigilDetection

struct CorrelationTests {
    static let base = """
        title: failed logon
        id: 0e95725d-7320-415d-80f7-004da920fc11
        name: failed_logon
        logsource:
            product: windows
            service: security
        detection:
            selection:
                EventID: 4625
            condition: selection
        ---
        title: successful logon
        id: 0e95725d-7320-415d-80f7-004da920fc12
        name: successful_logon
        logsource:
            product: windows
            service: security
        detection:
            selection:
                EventID: 4624
            condition: selection
        ---
        """

    static func logon(_ id: String, _ eventID: String, user: String, ip: String, second: Int64) -> WindowEvent {
        let fields = SigmaFixture.event("""
            {"winlog":{"channel":"Security","event_id":"\(eventID)","event_data":{"TargetUserName":"\(user)","IpAddress":"\(ip)"}}}
            """)
        return WindowEvent(id: id, timestamp: second * 1000, ingested: second * 1000 + 5, fields: fields)
    }

    func correlation(_ body: String) throws -> CompiledRule {
        let text = Self.base + "\n" + """
            title: correlation
            id: 0e95725d-7320-415d-80f7-004da920fc99
            level: high
            correlation:
            \(body.split(separator: "\n").map { "    " + $0 }.joined(separator: "\n"))
            """
        let rules = try RuleImporter().importRules(yaml: text)
        try #require(rules.count == 3, "\(text)")
        // failed_logon is referenced by every correlation here; without `generate: true` it
        // alerts only through the correlation.
        #expect(!rules[0].generatesAlerts)
        return rules[2]
    }

    @Test func eventCountAlertsPerGroupWithinTimespan() throws {
        let rule = try correlation("type: event_count\nrules: failed_logon\ngroup-by:\n    - TargetUserName\ntimespan: 1m\ncondition:\n    gte: 3")
        #expect(rule.kind == .correlation)
        #expect(rule.timespanMillis == 60_000)
        var events = (0..<3).map { Self.logon("a\($0)", "4625", user: "alice", ip: "1.1.1.1", second: Int64($0) * 10) }
        events += (0..<2).map { Self.logon("b\($0)", "4625", user: "bob", ip: "1.1.1.1", second: Int64($0)) }
        events.append(Self.logon("s0", "4624", user: "bob", ip: "1.1.1.1", second: 3))
        let alerts = rule.evaluate(window: events.reversed())
        #expect(alerts == [RuleAlert(ruleID: rule.id, group: [.init(field: "TargetUserName", value: "alice")], eventIDs: ["a0", "a1", "a2"], firstSeen: 0, lastSeen: 20_000)])
        // Spread beyond the timespan: no alert.
        let spread = (0..<3).map { Self.logon("a\($0)", "4625", user: "alice", ip: "1.1.1.1", second: Int64($0) * 40) }
        #expect(rule.evaluate(window: spread).isEmpty)
    }

    @Test func valueCountCountsDistinctValues() throws {
        let rule = try correlation("type: value_count\nrules: failed_logon\ngroup-by:\n    - IpAddress\ntimespan: 5m\nfield: TargetUserName\ncondition:\n    gte: 3")
        let sameUser = (0..<4).map { Self.logon("x\($0)", "4625", user: "alice", ip: "9.9.9.9", second: Int64($0)) }
        #expect(rule.evaluate(window: sameUser).isEmpty)
        let spray = ["alice", "bob", "carol"].enumerated().map { Self.logon("y\($0.offset)", "4625", user: $0.element, ip: "9.9.9.9", second: Int64($0.offset)) }
        #expect(rule.evaluate(window: spray).map(\.eventIDs) == [["y0", "y1", "y2"]])
    }

    @Test func temporalNeedsEveryRuleInAnyOrder() throws {
        let rule = try correlation("type: temporal\nrules:\n    - failed_logon\n    - successful_logon\ngroup-by:\n    - TargetUserName\ntimespan: 1m")
        let both = [Self.logon("s", "4624", user: "alice", ip: "1", second: 0), Self.logon("f", "4625", user: "alice", ip: "1", second: 5)]
        #expect(rule.evaluate(window: both).count == 1)
        let differentUsers = [Self.logon("s", "4624", user: "alice", ip: "1", second: 0), Self.logon("f", "4625", user: "bob", ip: "1", second: 5)]
        #expect(rule.evaluate(window: differentUsers).isEmpty)
    }

    @Test func temporalOrderedNeedsTheOrder() throws {
        let rule = try correlation("type: temporal_ordered\nrules:\n    - failed_logon\n    - successful_logon\ngroup-by:\n    - TargetUserName\ntimespan: 1m")
        let inOrder = [Self.logon("f", "4625", user: "alice", ip: "1", second: 0), Self.logon("s", "4624", user: "alice", ip: "1", second: 5)]
        #expect(rule.evaluate(window: inOrder).map(\.eventIDs) == [["f", "s"]])
        let reversed = [Self.logon("s", "4624", user: "alice", ip: "1", second: 0), Self.logon("f", "4625", user: "alice", ip: "1", second: 5)]
        #expect(rule.evaluate(window: reversed).isEmpty)
    }

    @Test func aliasesMapDifferentFieldNames() throws {
        let rule = try correlation("""
            type: temporal
            rules:
                - failed_logon
                - successful_logon
            aliases:
                who:
                    failed_logon: TargetUserName
                    successful_logon: TargetUserName
            group-by:
                - who
            timespan: 1m
            """)
        let both = [Self.logon("f", "4625", user: "alice", ip: "1", second: 0), Self.logon("s", "4624", user: "alice", ip: "1", second: 5)]
        #expect(rule.evaluate(window: both).first?.group == [.init(field: "who", value: "alice")])
    }

    @Test func refusesBrokenCorrelations() throws {
        #expect(throws: RuleImportError(.unknownRuleReference, "nope")) {
            try correlation("type: event_count\nrules: nope\ntimespan: 1m\ncondition:\n    gte: 3")
        }
        #expect(throws: RuleImportError(.unsupportedCorrelation, "type value_sum")) {
            try correlation("type: value_sum\nrules: failed_logon\ntimespan: 1m\ncondition:\n    gte: 3")
        }
        #expect(throws: RuleImportError(.invalidRule, "correlation.timespan missing or invalid")) {
            try correlation("type: event_count\nrules: failed_logon\ntimespan: soon\ncondition:\n    gte: 3")
        }
    }

    @Test func statelessRulesGiveOneAlertPerEvent() throws {
        let rules = try RuleImporter().importRules(yaml: String(Self.base.dropLast(4)))
        let events = [Self.logon("f1", "4625", user: "a", ip: "1", second: 1), Self.logon("s1", "4624", user: "a", ip: "1", second: 2)]
        #expect(rules[0].kind == .stateless)
        #expect(rules[0].evaluate(window: events).map(\.eventIDs) == [["f1"]])
    }
}
