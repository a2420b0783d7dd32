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
    public var severity: String { NativeRule.severity(ofLevel: sigma.level) }
    public var prefilter: Query { Query(filter: .all, stages: []) }
    public var bucketMillis: Int64? { nil }

    public func evaluate(_ events: [Event], window: Range<EpochMillis>) -> [AlertDraft] {
        events.filter { sigma.matches($0.fields, mapping: mapping) }.map(AlertDraft.event)
    }

    /// Compiles Sigma YAML for the rule compiler (a rule, or a correlation with the rules it
    /// names in the same file); refusals become `RuleError`s with the reason.
    public static func compile(_ source: String) throws -> any DetectionRule {
        try compile(source, mapping: .standard)
    }

    /// The same with a site mapping (`--sigma-mapping`).
    public static func compile(_ source: String, mapping: FieldMapping) throws -> any DetectionRule {
        do {
            if source.contains("correlation:") {
                return SigmaCorrelationRule(try SigmaCorrelation.parse(source, mapping: mapping), mapping: mapping)
            }
            return SigmaDetectionRule(try SigmaRule.parse(source, mapping: mapping), mapping: mapping)
        } catch {
            throw RuleError("sigma_\(error.reason)", error.detail)
        }
    }
}


/// A Sigma correlation in the scheduler: buckets of `timespan` of ingest time, one alert per
/// group that satisfies the correlation in a bucket.
public struct SigmaCorrelationRule: DetectionRule {
    public let correlation: SigmaCorrelation
    public let mapping: FieldMapping

    public init(_ correlation: SigmaCorrelation, mapping: FieldMapping = .standard) {
        self.correlation = correlation
        self.mapping = mapping
    }

    public var id: String { correlation.id }
    public var severity: String { NativeRule.severity(ofLevel: correlation.level) }
    public var prefilter: Query { Query(filter: .all, stages: []) }
    public var bucketMillis: Int64? { correlation.timespanMillis }

    public func evaluate(_ events: [Event], window: Range<EpochMillis>) -> [AlertDraft] {
        correlation.evaluate(events.map { (payload: $0, timestamp: $0.timestamp, fields: $0.fields) }, mapping: mapping).map { found in
            var group = JSONObject()
            for (field, value) in zip(correlation.groupBy, found.group) { group[field] = .string(value) }
            return AlertDraft(discriminator: "c:\(window.lowerBound):\(found.group.joined(separator: "\u{1}"))", group: group, events: found.events)
        }
    }
}
