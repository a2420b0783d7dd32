import VigilCore

/// How bad an alert from a rule is.
public enum RuleSeverity: String, Sendable, CaseIterable, Comparable {
    case informational, low, medium, high, critical

    public static func < (lhs: RuleSeverity, rhs: RuleSeverity) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}

/// Where a rule came from.
public enum RuleFormat: String, Sendable {
    case sigma, native
}

/// A rule ready to run, whatever its source format.
///
/// `matches(_:)` is the per-event part. Stateful rules (threshold, correlation) also need
/// `evaluate(window:)`, which the scheduler calls with the events of one window.
public struct CompiledRule: Sendable {
    public enum Kind: String, Sendable {
        /// Alerts on every matching event.
        case stateless
        /// Alerts when enough matching events share a group within a time span (native `threshold`).
        case threshold
        /// A Sigma correlation over other rules.
        case correlation
    }

    public var id: String
    public var title: String
    public var kind: Kind
    public var format: RuleFormat
    public var severity: RuleSeverity
    public var tags: [String]
    /// Sigma `name`, used by correlations to refer to rules.
    public var name: String?
    /// False for Sigma rules referenced by a correlation without `generate: true`: they are
    /// evaluated only as part of the correlation.
    public var generatesAlerts: Bool
    /// Embedded test cases (native rules).
    public var tests: [RuleTestCase]

    /// For a correlation, the ids of the rules it correlates.
    public var correlatedRuleIDs: [String] = []
    /// For a correlation, Sigma `generate`: whether its member rules also alert on their own.
    public var generatesBaseAlerts = false

    let predicate: EventPredicate
    let aggregation: WindowAggregation?
    /// The Sigma logsource the rule was compiled for (nil for native rules: literal paths).
    var logsource: LogsourceMapping?

    /// Where this rule reads a field named in a correlation or group-by.
    func accessor(for field: String) -> FieldAccessor {
        FieldAccessor(name: field, candidates: logsource?.candidatePaths(for: field) ?? [field])
    }

    init(
        id: String, title: String, kind: Kind, format: RuleFormat, severity: RuleSeverity, tags: [String],
        name: String? = nil, generatesAlerts: Bool = true, tests: [RuleTestCase] = [],
        predicate: EventPredicate, aggregation: WindowAggregation? = nil
    ) {
        self.id = id
        self.title = title
        self.kind = kind
        self.format = format
        self.severity = severity
        self.tags = tags
        self.name = name
        self.generatesAlerts = generatesAlerts
        self.tests = tests
        self.predicate = predicate
        self.aggregation = aggregation
    }

    /// Reports whether one event passes the rule's per-event filter. For a correlation this
    /// is true when the event matches any rule it correlates (useful to pre-filter a window).
    public func matches(_ event: JSONObject) -> Bool {
        predicate.evaluate(.object(event))
    }

    /// The span a stateful rule looks back over, in milliseconds; nil for stateless rules.
    /// A scheduler evaluating ingest window `[a, b)` should pass events from `a - timespan`
    /// and keep alerts whose `lastSeen` event is new, so groups spanning windows are seen.
    public var timespanMillis: Int64? { aggregation?.timespanMillis }

    /// Evaluates the rule over the events of one window and returns its alerts.
    ///
    /// Stateless rules give one alert per matching event. Threshold and correlation rules
    /// group events, slide a window of `timespanMillis` over event time within each group and
    /// give one alert per window that meets the condition (windows of one group do not overlap).
    /// The result is deterministic for a given input set, whatever its order.
    public func evaluate(window events: [WindowEvent]) -> [RuleAlert] {
        guard let aggregation else {
            return events.sorted(by: WindowEvent.order).filter { matches($0.fields) }.map {
                RuleAlert(ruleID: id, group: [], eventIDs: [$0.id], firstSeen: $0.timestamp, lastSeen: $0.timestamp)
            }
        }
        return aggregation.evaluate(ruleID: id, events: events)
    }
}

/// One event handed to `CompiledRule.evaluate(window:)`.
public struct WindowEvent: Sendable, Equatable {
    /// The event's stable id (`vigil.event_id` or the store key), reported in alerts.
    public var id: String
    /// Event time (`@timestamp`), epoch milliseconds: correlation windows use this.
    public var timestamp: EpochMillis
    /// Ingest time, epoch milliseconds (the scheduler's watermark axis).
    public var ingested: EpochMillis
    public var fields: JSONObject

    public init(id: String, timestamp: EpochMillis, ingested: EpochMillis, fields: JSONObject) {
        self.id = id
        self.timestamp = timestamp
        self.ingested = ingested
        self.fields = fields
    }

    static func order(_ a: WindowEvent, _ b: WindowEvent) -> Bool {
        (a.timestamp, a.id) < (b.timestamp, b.id)
    }
}

/// An alert raised by a rule over a window.
public struct RuleAlert: Sendable, Equatable {
    public var ruleID: String
    /// Group-by field and value, in the rule's group-by order (empty without grouping).
    /// A missing field has the value "".
    public var group: [GroupValue]
    public var eventIDs: [String]
    public var firstSeen: EpochMillis
    public var lastSeen: EpochMillis

    public struct GroupValue: Sendable, Equatable {
        public var field: String
        public var value: String
    }

    public init(ruleID: String, group: [GroupValue], eventIDs: [String], firstSeen: EpochMillis, lastSeen: EpochMillis) {
        self.ruleID = ruleID
        self.group = group
        self.eventIDs = eventIDs
        self.firstSeen = firstSeen
        self.lastSeen = lastSeen
    }

    /// A stable key for idempotent persistence: rule, group and first event.
    public var key: String {
        ([ruleID] + group.map { "\($0.field)=\($0.value)" } + [eventIDs.first ?? ""]).joined(separator: "\u{1F}")
    }
}
