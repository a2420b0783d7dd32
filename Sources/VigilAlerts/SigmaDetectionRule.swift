import VigilCore
import VigilQuery
import VigilSigma

/// A Sigma rule in the scheduler: every event of a window that the rule matches alerts once.
public struct SigmaDetectionRule: DetectionRule {
    public let sigma: SigmaRule
    public let mapping: FieldMapping

    public init(_ sigma: SigmaRule, mapping: FieldMapping = .standard) {
        self.sigma = sigma
        self.mapping = mapping
    }

    public var id: String { sigma.id }
    public var severity: String { ["informational", "low", "medium", "high", "critical"].contains(sigma.level) ? sigma.level : "medium" }
    public var prefilter: Query { Query(filter: .all, stages: []) }
    public var bucketMillis: Int64? { nil }

    public func evaluate(_ events: [Event], window: Range<EpochMillis>) -> [AlertDraft] {
        events.filter { sigma.matches($0.fields, mapping: mapping) }.map { AlertDraft(discriminator: "e:\($0.key)", group: JSONObject(), events: [$0]) }
    }

    /// Compiles Sigma YAML for the rule compiler; refusals become `RuleError`s with the reason.
    public static func compile(_ source: String) throws -> any DetectionRule {
        do {
            return SigmaDetectionRule(try SigmaRule.parse(source))
        } catch {
            throw RuleError("sigma_\(error.reason)", error.detail)
        }
    }
}
