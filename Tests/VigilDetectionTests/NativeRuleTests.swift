import Testing
import VigilCore
@testable import VigilDetection

struct NativeRuleTests {
    static let bruteForce = """
        id: ssh-bruteforce
        title: SSH brute force
        query: 'event.dataset:linux.auth AND "Failed password"'
        threshold: { count: 3, window: 10m, group_by: [host.name, source.ip] }
        severity: high
        tags: [attack.t1110, attack.credential-access]
        tests:
          - name: three failures alert once
            events:
              - { "@timestamp": "2026-01-01T00:00:00Z", event.dataset: linux.auth, host.name: a, source.ip: 10.0.0.1, message: "Failed password for root" }
              - { "@timestamp": "2026-01-01T00:01:00Z", event.dataset: linux.auth, host.name: a, source.ip: 10.0.0.1, message: "Failed password for root" }
              - { "@timestamp": "2026-01-01T00:02:00Z", event.dataset: linux.auth, host.name: a, source.ip: 10.0.0.1, message: "Failed password for admin" }
            expect: { alerts: 1 }
          - name: different sources do not add up
            events:
              - { event.dataset: linux.auth, host.name: a, source.ip: 10.0.0.1, message: "Failed password" }
              - { event.dataset: linux.auth, host.name: a, source.ip: 10.0.0.2, message: "Failed password" }
              - { event.dataset: linux.auth, host.name: a, source.ip: 10.0.0.3, message: "Failed password" }
            expect: { alerts: 0 }
        """

    @Test func loadsThresholdRuleAndPassesItsTests() throws {
        let rule = try #require(try RuleImporter().importRules(yaml: Self.bruteForce).first)
        #expect(rule.id == "ssh-bruteforce")
        #expect(rule.kind == .threshold)
        #expect(rule.format == .native)
        #expect(rule.severity == .high)
        #expect(rule.tags == ["attack.t1110", "attack.credential-access"])
        #expect(rule.timespanMillis == 600_000)
        #expect(rule.runTests().map(\.passed) == [true, true])
        #expect(rule.matches(SigmaFixture.event(#"{"event":{"dataset":"linux.auth"},"message":"Failed password for x"}"#)))
        #expect(!rule.matches(SigmaFixture.event(#"{"event":{"dataset":"linux.auth"},"message":"Accepted password"}"#)))
    }

    @Test func failingEmbeddedTestRefusesTheRule() {
        let broken = Self.bruteForce.replacingOccurrences(of: "expect: { alerts: 1 }", with: "expect: { alerts: 2 }")
        #expect(throws: RuleImportError(.ruleTestFailed, "three failures alert once: expected 2 alerts, got 1")) {
            try RuleImporter().importRules(yaml: broken)
        }
        // Loading without the check still reports the failure.
        let rule = try? RuleImporter(requirePassingTests: false).importRules(yaml: broken).first
        #expect(rule?.runTests().first?.passed == false)
    }

    @Test func statelessRuleAlertsPerEvent() throws {
        let yaml = """
            id: admin-login
            query: 'user.name:root AND event.outcome:success'
            severity: medium
            tests:
              - events: [{ user: { name: root }, event: { outcome: success } }, { user: { name: bob }, event: { outcome: success } }]
                expect: { alerts: 1 }
            """
        let rule = try #require(try RuleImporter().importRules(yaml: yaml).first)
        #expect(rule.kind == .stateless)
        #expect(rule.title == "admin-login")
    }

    @Test func refusesInvalidRules() {
        #expect(throws: RuleImportError(.invalidID, "SSH_Brute")) {
            try RuleImporter().importRules(yaml: "id: SSH_Brute\nquery: x")
        }
        #expect(throws: RuleImportError(.unsupportedQuery, "pipe stages are not allowed in rules")) {
            try RuleImporter().importRules(yaml: "id: with-stats\nquery: 'x | stats count() by host.name'")
        }
        #expect(throws: RuleImportError.self) { try RuleImporter().importRules(yaml: "id: bad-query\nquery: 'a AND'") }
        #expect(throws: RuleImportError(.invalidSeverity, "urgent")) {
            try RuleImporter().importRules(yaml: "id: bad-sev\nquery: x\nseverity: urgent")
        }
        #expect(throws: RuleImportError(.invalidThreshold, "count must be a positive integer")) {
            try RuleImporter().importRules(yaml: "id: bad-threshold\nquery: x\nthreshold: { count: 0, window: 1m }")
        }
        #expect(throws: RuleImportError(.invalidRule, "unknown key querry")) {
            try RuleImporter().importRules(yaml: "id: typo\nquery: x\nquerry: y")
        }
    }
}
