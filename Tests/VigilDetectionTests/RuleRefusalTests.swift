import Testing
@testable import VigilDetection

struct RuleRefusalTests {
    typealias F = SigmaFixture

    @Test func refusesUnknownModifierWithItsChain() {
        #expect(throws: RuleImportError(.unsupportedModifier, "windash|foo")) {
            try F.rule("sel:\n    CommandLine|windash|foo: 'x'\ncondition: sel")
        }
        #expect(throws: RuleImportError(.unsupportedModifier, "contains|startswith")) {
            try F.rule("sel:\n    CommandLine|contains|startswith: 'x'\ncondition: sel")
        }
        #expect(throws: RuleImportError(.unsupportedModifier, "contains|i")) {
            try F.rule("sel:\n    CommandLine|contains|i: 'x'\ncondition: sel")
        }
        #expect(throws: RuleImportError(.unsupportedModifier, "wide|contains")) {
            try F.rule("sel:\n    CommandLine|wide|contains: 'x'\ncondition: sel")
        }
    }

    @Test func refusesUnknownLogsource() {
        #expect(throws: RuleImportError(.unknownLogsource, "product=aws service=cloudtrail")) {
            try F.rule("sel:\n    eventName: 'x'\ncondition: sel", logsource: "product: aws\n    service: cloudtrail")
        }
    }

    @Test func refusesBadValues() {
        #expect(throws: RuleImportError(.invalidValue, "DestinationIp|cidr: bad CIDR 10.0.0.0/33")) {
            try F.rule("sel:\n    DestinationIp|cidr: '10.0.0.0/33'\ncondition: sel")
        }
        #expect(throws: RuleImportError(.invalidRegex, "a(b")) {
            try F.rule("sel:\n    CommandLine|re: 'a(b'\ncondition: sel")
        }
        #expect(throws: RuleImportError(.invalidValue, "CommandLine|base64: wildcards cannot be base64 encoded")) {
            try F.rule("sel:\n    CommandLine|base64: 'a*b'\ncondition: sel")
        }
    }

    @Test func refusesV1AggregationsAndBrokenYAML() {
        #expect(throws: RuleImportError(.conditionSyntax, "timeframe is Sigma v1; use a correlation rule")) {
            try F.rule("sel:\n    CommandLine: x\ntimeframe: 5m\ncondition: sel")
        }
        #expect(throws: RuleImportError.self) { try RuleImporter().importRules(yaml: "title: [unclosed") }
        #expect(throws: RuleImportError(.invalidRule, "neither Sigma (detection, correlation) nor native (query)")) {
            try RuleImporter().importRules(yaml: "title: x\nid: y")
        }
    }

    @Test func errorDescriptionIsCodeAndDetail() {
        #expect(RuleImportError(.unsupportedModifier, "windash|foo").description == "unsupported_modifier: windash|foo")
    }
}
