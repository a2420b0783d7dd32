import Synchronization
import VigilCore
import VigilQuery
import VigilSigma
import VigilStorage
import Yams

/// Why a rule cannot be loaded: a code fit for a metric label and a sentence for the author.
public struct RuleError: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: String
    public var message: String
    public init(_ code: String, _ message: String) {
        self.code = code
        self.message = message
    }
    public var description: String { "\(code): \(message)" }
}

/// A native Vigil rule (YAML):
///
/// ```yaml
/// id: ssh-brute-force            # stable kebab-case
/// title: SSH brute force
/// query: 'event.dataset:linux.auth AND event.outcome:failure'
/// threshold: {count: 5, window: 5m, group_by: [source.ip]}   # optional
/// severity: high                 # informational | low | medium | high | critical
/// tags: [attack.credential_access, attack.t1110]
/// tests:                         # optional, run by `vigil rules test`
///   - events: [{message: "Failed password for root", event.outcome: failure}]
///     expect: {alerts: 1}
/// ```
public struct NativeRule: DetectionRule, Equatable {
    public var id: String
    public var title: String
    public var queryText: String
    public var query: Query
    public var threshold: Threshold?
    public var severity: String
    public var tags: [String]
    public var tests: [RuleTest]

    public struct Threshold: Sendable, Equatable {
        public var count: Int
        public var windowMillis: Int64
        public var groupBy: [String]
    }

    public struct RuleTest: Sendable, Equatable {
        public var events: [JSONObject]
        public var expectedAlerts: Int
    }

    public static let severities = ["informational", "low", "medium", "high", "critical"]

    /// A Sigma `level` as a Vigil severity (`medium` when it is not one).
    public static func severity(ofLevel level: String) -> String { severities.contains(level) ? level : "medium" }

    public var prefilter: Query { query }
    public var bucketMillis: Int64? { threshold?.windowMillis }

    /// Parses and validates a rule; every problem is a `RuleError` naming the field.
    public static func parse(_ yaml: String) throws(RuleError) -> NativeRule {
        let node: Node?
        do {
            node = try Yams.compose(yaml: yaml)
        } catch {
            throw RuleError("yaml_syntax", "the rule is not valid YAML: \(error)")
        }
        guard let mapping = node?.mapping else { throw RuleError("invalid_rule", "a rule is a YAML mapping") }
        func string(_ key: String) -> String? { mapping[Node(key)]?.string }
        guard let id = string("id"), isKebabCase(id) else {
            throw RuleError("invalid_id", "id is required: lower-case letters, digits and single dashes (kebab-case), at most 128 characters")
        }
        guard let queryText = string("query"), !queryText.isEmpty else { throw RuleError("missing_query", "query is required (search language)") }
        let query: Query
        do {
            query = try QueryParser().parse(queryText)
        } catch {
            throw RuleError("query_syntax", "query: \(error)")
        }
        guard query.stages.isEmpty else { throw RuleError("query_stages", "rule queries cannot have pipe stages; use threshold for counting") }
        let severity = string("severity") ?? "medium"
        guard severities.contains(severity) else { throw RuleError("invalid_severity", "severity must be one of \(severities.joined(separator: ", "))") }
        var threshold: Threshold?
        if let node = mapping[Node("threshold")] {
            guard let t = node.mapping else { throw RuleError("invalid_threshold", "threshold is a mapping {count, window, group_by}") }
            guard let count = t[Node("count")]?.int, count >= 1 else { throw RuleError("invalid_threshold", "threshold.count must be a positive integer") }
            guard let windowText = t[Node("window")]?.string, let window = parseDuration(windowText), window >= 1000, window <= 86_400_000 else {
                throw RuleError("invalid_threshold", "threshold.window must be a duration like 30s, 5m, 1h (1 s to 24 h)")
            }
            var groupBy: [String] = []
            if let g = t[Node("group_by")] {
                if let one = g.string { groupBy = [one] } else if let list = g.sequence { groupBy = list.compactMap(\.string) }
                guard groupBy.allSatisfy(isFieldName) else { throw RuleError("invalid_threshold", "threshold.group_by lists field names") }
            }
            threshold = Threshold(count: count, windowMillis: window, groupBy: groupBy)
        }
        let tags = mapping[Node("tags")]?.sequence?.compactMap(\.string) ?? []
        var tests: [RuleTest] = []
        if let list = mapping[Node("tests")] {
            guard let items = list.sequence else { throw RuleError("invalid_tests", "tests is a list of {events, expect}") }
            for (index, item) in items.enumerated() {
                guard let events = item.mapping?[Node("events")]?.sequence, let expected = item.mapping?[Node("expect")]?.mapping?[Node("alerts")]?.int else {
                    throw RuleError("invalid_tests", "tests[\(index)] needs events (a list) and expect.alerts (a number)")
                }
                var objects: [JSONObject] = []
                for event in events { objects.append(try jsonObject(event, at: "tests[\(index)].events")) }
                tests.append(RuleTest(events: objects, expectedAlerts: expected))
            }
        }
        return NativeRule(id: id, title: string("title") ?? id, queryText: queryText, query: query, threshold: threshold,
                          severity: severity, tags: tags, tests: tests)
    }

    public func evaluate(_ events: [Event], window: Range<EpochMillis>) -> [AlertDraft] {
        // The store already applied the query: every event here matches it.
        guard let threshold else {
            return events.map(AlertDraft.event)
        }
        var groups: [[String]: [Event]] = [:]
        var order: [[String]] = []
        for event in events {
            let document = JSONValue.object(event.fields)
            let values = threshold.groupBy.map { document.value(atPath: $0)?.scalarText ?? "" }
            if groups[values] == nil { order.append(values) }
            groups[values, default: []].append(event)
        }
        var drafts: [AlertDraft] = []
        for values in order {
            guard let members = groups[values], members.count >= threshold.count else { continue }
            var group = JSONObject()
            for (field, value) in zip(threshold.groupBy, values) { group[field] = .string(value) }
            drafts.append(AlertDraft(discriminator: "b:\(window.lowerBound):\(values.joined(separator: "\u{1}"))", group: group, events: members))
        }
        return drafts
    }

    static func isKebabCase(_ id: String) -> Bool {
        let bytes = Array(id.utf8)
        guard (1...128).contains(bytes.count), bytes.first != 0x2D, bytes.last != 0x2D else { return false }
        var previousDash = false
        for b in bytes {
            let dash = b == 0x2D
            guard dash || (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39) else { return false }
            if dash && previousDash { return false }
            previousDash = dash
        }
        return true
    }

    static func isFieldName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 128 && name.utf8.allSatisfy { b in
            (b >= 0x61 && b <= 0x7A) || (b >= 0x41 && b <= 0x5A) || (b >= 0x30 && b <= 0x39) || b == 0x2E || b == 0x5F || b == 0x40 || b == 0x2D
        }
    }

    /// `30s`, `5m`, `1h`, `2d` → milliseconds (the same durations as Sigma timespans).
    public static func parseDuration(_ text: String) -> Int64? { SigmaCorrelation.duration(text) }

    static func jsonObject(_ node: Node, at path: String) throws(RuleError) -> JSONObject {
        guard case .object(let object) = json(node) else { throw RuleError("invalid_tests", "\(path): each event is a mapping") }
        return FieldNesting.nest(object)
    }

    static func json(_ node: Node) -> JSONValue {
        switch node {
        case .scalar(let scalar):
            if scalar.style == .plain {
                if let int = node.int { return .int(Int64(int)) }
                if let bool = node.bool { return .bool(bool) }
                if let double = node.float { return .double(double) }
                if node.null != nil { return .null }
            }
            return .string(scalar.string)
        case .sequence(let sequence):
            return .array(sequence.map(json))
        case .mapping(let mapping):
            var object = JSONObject()
            for (key, value) in mapping { object[key.string ?? "\(key)"] = json(value) }
            return object.isEmpty ? .object(JSONObject()) : .object(object)
        case .alias:
            return .null
        }
    }
}

/// Compiles stored rules, caching by source so a tick does not re-parse unchanged rules.
public final class RuleCompiler: RuleCompiling {
    let cache = Mutex<[String: any DetectionRule]>([:])
    /// Compiles formats other than `native` (Sigma), when configured.
    let others: [String: @Sendable (String) throws -> any DetectionRule]

    public init(others: [String: @Sendable (String) throws -> any DetectionRule] = [:]) {
        self.others = others
    }

    public func compile(_ record: RuleRecord) throws -> any DetectionRule {
        let cacheKey = "\(record.format)\u{0}\(record.source)"
        if let cached = cache.withLock({ $0[cacheKey] }) { return cached }
        let rule: any DetectionRule
        if record.format == "native" {
            rule = try NativeRule.parse(record.source)
        } else if let compile = others[record.format] {
            rule = try compile(record.source)
        } else {
            throw RuleError("unsupported_format", "rules in format \(record.format) cannot be run by this server")
        }
        cache.withLock { cache in
            if cache.count > 10_000 { cache.removeAll() }
            cache[cacheKey] = rule
        }
        return rule
    }
}
