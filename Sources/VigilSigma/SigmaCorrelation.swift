import VigilCore
import Yams

/// A Sigma correlation rule (event_count, value_count, temporal, temporal_ordered) with the
/// rules it correlates, loaded from one multi-document YAML file: the correlation document and
/// the rules it names (by `name` or `id`).
public struct SigmaCorrelation: Sendable {
    public enum Kind: String, Sendable {
        case eventCount = "event_count"
        case valueCount = "value_count"
        case temporal
        case temporalOrdered = "temporal_ordered"
    }

    public struct Condition: Sendable, Equatable {
        public var gt: Double?, gte: Double?, lt: Double?, lte: Double?, eq: Double?
        public var field: String?

        func holds(_ value: Double) -> Bool {
            if let gt, !(value > gt) { return false }
            if let gte, !(value >= gte) { return false }
            if let lt, !(value < lt) { return false }
            if let lte, !(value <= lte) { return false }
            if let eq, value != eq { return false }
            return true
        }
    }

    public var id: String
    public var title: String
    public var level: String
    public var kind: Kind
    /// The correlated rules, in the order the correlation lists them.
    public var rules: [SigmaRule]
    public var groupBy: [String]
    public var timespanMillis: Int64
    public var condition: Condition

    /// One event of a window that matched some of the correlated rules.
    public struct Hit<Payload: Sendable>: Sendable {
        public var payload: Payload
        public var timestamp: EpochMillis
        public var fields: JSONObject
        public var ruleIndexes: [Int]
    }

    /// The groups that satisfy the correlation among `hits` (events of one timespan bucket):
    /// group values and the events that made them.
    public func evaluate<Payload>(_ events: [(payload: Payload, timestamp: EpochMillis, fields: JSONObject)], mapping: FieldMapping) -> [(group: [String], events: [Payload])] {
        var groups: [[String]: [(payload: Payload, timestamp: EpochMillis, rules: [Int], resolver: SigmaEvent)]] = [:]
        var order: [[String]] = []
        for event in events {
            let resolver = SigmaEvent(event.fields, mapping: mapping)
            let matched = rules.indices.filter { rules[$0].matches(resolver) }
            guard !matched.isEmpty else { continue }
            let key = groupBy.map { resolver.value($0)?.scalarText ?? "" }
            if groups[key] == nil { order.append(key) }
            groups[key, default: []].append((event.payload, event.timestamp, matched, resolver))
        }
        var out: [(group: [String], events: [Payload])] = []
        for key in order {
            guard let members = groups[key] else { continue }
            let satisfied: Bool
            switch kind {
            case .eventCount:
                satisfied = condition.holds(Double(members.count))
            case .valueCount:
                let field = condition.field ?? ""
                let distinct = Set(members.compactMap { $0.resolver.value(field)?.scalarText })
                satisfied = condition.holds(Double(distinct.count))
            case .temporal:
                let seen = Set(members.flatMap(\.rules))
                satisfied = seen.count == rules.count
            case .temporalOrdered:
                // Each rule matched after the previous one (by event time).
                var next = 0
                for member in members.sorted(by: { $0.timestamp < $1.timestamp }) where next < rules.count && member.rules.contains(next) {
                    next += 1
                }
                satisfied = next == rules.count
            }
            if satisfied { out.append((key, members.map(\.payload))) }
        }
        return out
    }

    /// Parses a file whose documents are a correlation and the rules it references.
    public static func parse(_ yaml: String, mapping: FieldMapping = .standard) throws(SigmaError) -> SigmaCorrelation {
        let nodes: [Node]
        do {
            nodes = try Array(Yams.compose_all(yaml: yaml))
        } catch {
            throw SigmaError("yaml_syntax", "\(error)")
        }
        guard let correlationNode = nodes.first(where: { $0.mapping?[Node("correlation")] != nil })?.mapping,
              let spec = correlationNode[Node("correlation")]?.mapping else {
            throw SigmaError("invalid_correlation", "no correlation document")
        }
        var byName: [String: SigmaRule] = [:]
        for node in nodes where node.mapping?[Node("correlation")] == nil {
            guard let text = try? Yams.serialize(node: node) else { continue }
            let rule = try SigmaRule.parse(text, mapping: mapping)
            byName[rule.id] = rule
            if let name = node.mapping?[Node("name")]?.string { byName[name] = rule }
        }
        guard let typeText = spec[Node("type")]?.string, let kind = Kind(rawValue: typeText) else {
            throw SigmaError("unsupported_correlation", "correlation.type must be event_count, value_count, temporal or temporal_ordered")
        }
        if spec[Node("aliases")] != nil { throw SigmaError("unsupported_correlation", "correlation aliases are not supported") }
        let references = spec[Node("rules")]?.sequence?.compactMap(\.string) ?? spec[Node("rules")]?.string.map { [$0] } ?? []
        guard !references.isEmpty else { throw SigmaError("invalid_correlation", "correlation.rules is required") }
        var rules: [SigmaRule] = []
        for reference in references {
            guard let rule = byName[reference] else {
                throw SigmaError("unknown_rule_reference", "\(reference) is not defined in the same file")
            }
            rules.append(rule)
        }
        let groupBy = spec[Node("group-by")]?.sequence?.compactMap(\.string) ?? []
        guard let timespanText = spec[Node("timespan")]?.string, let timespan = Self.duration(timespanText) else {
            throw SigmaError("invalid_correlation", "correlation.timespan must be like 30s, 5m, 1h, 1d")
        }
        var condition = Condition()
        if let c = spec[Node("condition")]?.mapping {
            for (keyNode, value) in c {
                guard let key = keyNode.string else { continue }
                if key == "field" {
                    condition.field = value.string
                    continue
                }
                guard let number = value.float ?? value.int.map(Double.init) else {
                    throw SigmaError("invalid_correlation", "condition.\(key) needs a number")
                }
                switch key {
                case "gt": condition.gt = number
                case "gte": condition.gte = number
                case "lt": condition.lt = number
                case "lte": condition.lte = number
                case "eq": condition.eq = number
                default: throw SigmaError("invalid_correlation", "unknown condition operator \(key)")
                }
            }
        } else if kind == .eventCount || kind == .valueCount {
            throw SigmaError("invalid_correlation", "\(kind.rawValue) needs a condition")
        }
        if kind == .valueCount, condition.field == nil { throw SigmaError("invalid_correlation", "value_count needs condition.field") }
        return SigmaCorrelation(id: correlationNode[Node("id")]?.string ?? correlationNode[Node("name")]?.string ?? (correlationNode[Node("title")]?.string ?? "correlation"),
                                title: correlationNode[Node("title")]?.string ?? "correlation",
                                level: correlationNode[Node("level")]?.string ?? "medium", kind: kind, rules: rules, groupBy: groupBy,
                                timespanMillis: timespan, condition: condition)
    }

    /// `30s`, `5m`, `1h`, `2d` → milliseconds (Sigma timespans and native rule windows).
    public static func duration(_ text: String) -> Int64? {
        guard let unit = text.last, let number = Int64(text.dropLast()), number > 0 else { return nil }
        switch unit {
        case "s": return number * 1000
        case "m": return number * 60_000
        case "h": return number * 3_600_000
        case "d": return number * 86_400_000
        default: return nil
        }
    }
}
