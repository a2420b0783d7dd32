/// Why a rule could not be loaded.
///
/// A rule is loaded completely or not at all: anything the engine cannot evaluate exactly as
/// written is refused with one of these codes plus a short detail (a modifier chain, a
/// logsource, the piece of condition that did not parse). The detail comes from the rule
/// text, never from event data, so it is safe to show and to log.
public struct RuleImportError: Error, Hashable, Sendable {
    public enum Code: String, Sendable, CaseIterable {
        /// Not YAML, or not the shape of a rule.
        case invalidYAML = "invalid_yaml"
        /// A required key is missing or has the wrong type.
        case invalidRule = "invalid_rule"
        case unsupportedModifier = "unsupported_modifier"
        case unknownLogsource = "unknown_logsource"
        case conditionSyntax = "condition_syntax"
        case unknownIdentifier = "unknown_identifier"
        case invalidValue = "invalid_value"
        case invalidRegex = "invalid_regex"
        case unconfiguredPlaceholder = "unconfigured_placeholder"
        case unsupportedCorrelation = "unsupported_correlation"
        case unknownRuleReference = "unknown_rule_reference"
        case invalidID = "invalid_id"
        case querySyntax = "query_syntax"
        case unsupportedQuery = "unsupported_query"
        case invalidSeverity = "invalid_severity"
        case invalidThreshold = "invalid_threshold"
        case ruleTestFailed = "rule_test_failed"
    }

    public var code: Code
    /// Text from the rule explaining the refusal (`windash|foo`, `product=aws service=cloudtrail`).
    public var detail: String

    public init(_ code: Code, _ detail: String) {
        self.code = code
        self.detail = detail
    }
}

extension RuleImportError: CustomStringConvertible {
    /// `unsupported_modifier: windash|foo`.
    public var description: String { detail.isEmpty ? code.rawValue : "\(code.rawValue): \(detail)" }
}
