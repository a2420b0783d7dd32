import Testing
import VigilCore
@testable import VigilDetection

struct SigmaConditionTests {
    typealias F = SigmaFixture

    static let searches = """
        sel_a:
            CommandLine|contains: 'alpha'
        sel_b:
            CommandLine|contains: 'beta'
        filter:
            CommandLine|contains: 'gamma'
        _hidden:
            CommandLine|contains: 'delta'
        """

    func check(_ condition: String, _ commandLine: String) throws -> Bool {
        try F.rule(Self.searches + "\ncondition: \(condition)").matches(F.processCreation(["CommandLine": commandLine]))
    }

    @Test func andOrNotAndParentheses() throws {
        #expect(try check("sel_a and sel_b", "alpha beta"))
        #expect(try !check("sel_a and sel_b", "alpha"))
        #expect(try check("sel_a or sel_b", "beta"))
        #expect(try check("sel_a and not filter", "alpha"))
        #expect(try !check("sel_a and not filter", "alpha gamma"))
        #expect(try check("(sel_a or sel_b) and not filter", "beta"))
        #expect(try !check("sel_a or sel_b and filter", "beta"))  // and binds tighter
        #expect(try check("not (sel_a or sel_b)", "zzz"))
    }

    @Test func quantifiers() throws {
        #expect(try check("1 of sel_*", "beta"))
        #expect(try !check("all of sel_*", "beta"))
        #expect(try check("all of sel_*", "alpha beta"))
        #expect(try check("1 of them", "gamma"))
        // `them` skips searches starting with `_`.
        #expect(try !check("1 of them", "delta"))
        #expect(try check("all of them", "alpha beta gamma"))
        #expect(try !check("all of them", "alpha beta"))
        #expect(try check("all of them and _hidden", "alpha beta gamma delta"))
        #expect(try check("2 of them", "alpha gamma"))
        #expect(try !check("2 of them", "alpha"))
    }

    @Test func listOfConditionsIsOr() throws {
        let rule = try F.rule(Self.searches + "\ncondition:\n    - sel_a\n    - sel_b")
        #expect(rule.matches(F.processCreation(["CommandLine": "beta"])))
        #expect(!rule.matches(F.processCreation(["CommandLine": "gamma"])))
    }

    @Test func refusesBadConditions() {
        #expect(throws: RuleImportError(.unknownIdentifier, "sel_c")) { try check("sel_c", "") }
        #expect(throws: RuleImportError(.unknownIdentifier, "x*")) { try check("1 of x*", "") }
        #expect(throws: RuleImportError(.conditionSyntax, "expected ')' in '(sel_a or sel_b'")) { try check("(sel_a or sel_b", "") }
        #expect(throws: RuleImportError(.conditionSyntax, "unexpected 'sel_b' in 'sel_a sel_b'")) { try check("sel_a sel_b", "") }
        #expect(throws: RuleImportError(.conditionSyntax, "aggregation (|) is Sigma v1; use a correlation rule")) {
            try check("sel_a | count() > 5", "")
        }
    }
}
