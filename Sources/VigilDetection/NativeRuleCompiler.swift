import VigilCore
import VigilQuery

/// One embedded test case of a native rule: events in, expected alert count out.
public struct RuleTestCase: Sendable {
    public var name: String
    public var events: [JSONObject]
    public var expectedAlerts: Int

    public init(name: String, events: [JSONObject], expectedAlerts: Int) {
        self.name = name
        self.events = events
        self.expectedAlerts = expectedAlerts
    }
}

/// The outcome of one embedded test case.
public struct RuleTestResult: Sendable, Equatable {
    public var name: String
    public var expectedAlerts: Int
    public var actualAlerts: Int
    public var passed: Bool { expectedAlerts == actualAlerts }
}

extension CompiledRule {
    /// Runs the rule's embedded test cases. Events get ids `vigil.event_id` (or `event-<n>`)
    /// and times from `@timestamp` (RFC 3339 or epoch milliseconds; else n seconds).
    public func runTests() -> [RuleTestResult] {
        tests.map { test in
            RuleTestResult(name: test.name, expectedAlerts: test.expectedAlerts, actualAlerts: evaluate(window: Self.windowEvents(test.events)).count)
        }
    }

    /// Wraps plain documents as window events (used by embedded tests and by callers that
    /// hold bare documents).
    public static func windowEvents(_ documents: [JSONObject]) -> [WindowEvent] {
        documents.enumerated().map { index, document in
            let id = document["vigil.event_id"]?.scalarText
                ?? JSONValue.object(document).value(atPath: "vigil.event_id")?.scalarText ?? "event-\(index)"
            var timestamp = EpochMillis(index) * 1000
            switch JSONValue.object(document).value(atPath: "@timestamp") {
            case .string(let text)?: timestamp = Timestamp.parseRFC3339(text) ?? timestamp
            case .int(let millis)?: timestamp = millis
            default: break
            }
            return WindowEvent(id: id, timestamp: timestamp, ingested: timestamp, fields: document)
        }
    }
}

/// Compiles native Vigil rules:
///
/// ```yaml
/// id: ssh-bruteforce
/// title: SSH brute force
/// query: 'event.dataset:linux.auth AND "Failed password"'
/// threshold: { count: 5, window: 10m, group_by: [host.name, source.ip] }
/// severity: high
/// tags: [attack.t1110]
/// tests:
///   - name: five failures alert once
///     events: [{message: "Failed password for root", host: {name: a}}, ...]
///     expect: { alerts: 1 }
/// ```
struct NativeRuleCompiler: Sendable {
    static let knownKeys: Set<String> = ["id", "title", "description", "query", "threshold", "severity", "tags", "tests", "author", "references", "enabled"]

    func compile(_ document: YAMLTree) throws(RuleImportError) -> CompiledRule {
        guard let members = document.map else { throw RuleImportError(.invalidRule, "rule must be a map") }
        if let unknown = members.first(where: { !Self.knownKeys.contains($0.key) }) {
            throw RuleImportError(.invalidRule, "unknown key \(unknown.key)")
        }
        guard let id = document["id"]?.string else { throw RuleImportError(.invalidRule, "missing id") }
        guard Self.isValidID(id) else { throw RuleImportError(.invalidID, id) }
        let title = document["title"]?.string ?? id
        guard let queryText = document["query"]?.string else { throw RuleImportError(.invalidRule, "missing query") }
        let query: Query
        do {
            query = try QueryParser().parse(queryText)
        } catch {
            throw RuleImportError(.querySyntax, "offset \(error.offset): expected \(error.expected)")
        }
        guard query.stages.isEmpty else { throw RuleImportError(.unsupportedQuery, "pipe stages are not allowed in rules") }
        var severity = RuleSeverity.medium
        if let text = document["severity"]?.string {
            guard let parsed = RuleSeverity(rawValue: text) else { throw RuleImportError(.invalidSeverity, text) }
            severity = parsed
        }
        let tags = document["tags"]?.stringList ?? []
        for tag in tags where !Self.isValidTag(tag) {
            throw RuleImportError(.invalidRule, "tag \(tag)")
        }
        let predicate = EventPredicate.query(query.filter)
        var kind = CompiledRule.Kind.stateless
        var aggregation: WindowAggregation?
        if let threshold = document["threshold"] {
            guard threshold.map != nil else { throw RuleImportError(.invalidThreshold, "must be a map") }
            guard let count = threshold["count"]?.string.flatMap(Int.init), count >= 1 else {
                throw RuleImportError(.invalidThreshold, "count must be a positive integer")
            }
            let window: Int64
            if let secs = threshold["window_secs"]?.string.flatMap(Int64.init), secs > 0 {
                window = secs * 1000
            } else if let text = threshold["window"]?.string, let millis = SigmaRuleCompiler.parseDuration(text) {
                window = millis
            } else {
                throw RuleImportError(.invalidThreshold, "window (like 10m) or window_secs required")
            }
            let groupBy = threshold["group_by"]?.stringList ?? []
            for field in groupBy where !FieldName.isValid(field) {
                throw RuleImportError(.invalidThreshold, "group_by field \(field)")
            }
            kind = .threshold
            aggregation = WindowAggregation(
                members: [.init(predicate: predicate, groupAccessors: groupBy.map { FieldAccessor(literal: $0) })],
                groupBy: groupBy, timespanMillis: window, metric: .eventCount, conditions: [(.gte, Double(count))]
            )
        }
        var tests: [RuleTestCase] = []
        if let list = document["tests"] {
            guard let items = list.list else { throw RuleImportError(.invalidRule, "tests must be a list") }
            for (index, item) in items.enumerated() {
                let name = item["name"]?.string ?? "test \(index + 1)"
                guard let events = item["events"]?.list else { throw RuleImportError(.invalidRule, "tests[\(index)].events must be a list of events") }
                var documents: [JSONObject] = []
                for event in events {
                    guard case .object(let object) = event.json else { throw RuleImportError(.invalidRule, "tests[\(index)].events must hold maps") }
                    documents.append(FieldNesting.nest(object))
                }
                guard let expected = (item["expect"]?["alerts"] ?? item["expect_alerts"])?.string.flatMap(Int.init) else {
                    throw RuleImportError(.invalidRule, "tests[\(index)].expect.alerts missing")
                }
                tests.append(RuleTestCase(name: name, events: documents, expectedAlerts: expected))
            }
        }
        return CompiledRule(
            id: id, title: title, kind: kind, format: .native, severity: severity, tags: tags,
            tests: tests, predicate: predicate, aggregation: aggregation
        )
    }

    /// Stable kebab-case: lower-case letters and digits in dash-separated words, 3–64 bytes.
    static func isValidID(_ id: String) -> Bool {
        guard (3...64).contains(id.utf8.count) else { return false }
        let words = id.split(separator: "-", omittingEmptySubsequences: false)
        return words.allSatisfy { word in
            !word.isEmpty && word.utf8.allSatisfy { (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) }
        } && id.utf8.first.map { (0x61...0x7A).contains($0) } == true
    }

    /// `attack.t1110`, `attack.credential-access`, `cve.2021-44228`: lower-case dotted words.
    static func isValidTag(_ tag: String) -> Bool {
        !tag.isEmpty && tag.utf8.allSatisfy { (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) || $0 == 0x2E || $0 == 0x2D || $0 == 0x5F }
    }
}
