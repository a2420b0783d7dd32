import Foundation
import VigilCore
import VigilQuery

/// Reads one rule field from an event: the first candidate path present wins.
///
/// For a Sigma field on Windows the candidates are `winlog.event_data.<Field>`, then its ECS
/// mapping, then the literal name; native rules use the literal path only.
struct FieldAccessor: Sendable, Equatable {
    /// The field as written in the rule.
    let name: String
    let candidates: [String]

    init(name: String, candidates: [String]) {
        self.name = name
        var seen = Set<String>()
        self.candidates = candidates.filter { seen.insert($0).inserted }
    }

    init(literal path: String) {
        self.init(name: path, candidates: [path])
    }

    func value(in event: JSONValue) -> JSONValue? {
        for path in candidates {
            if let value = event.value(atPath: path) { return value }
        }
        return nil
    }

    /// The scalar texts of the field (array members flattened); empty when absent or null.
    func texts(in event: JSONValue) -> [String] {
        guard let value = value(in: event) else { return [] }
        var out: [String] = []
        Self.collectScalars(value, into: &out)
        return out
    }

    static func collectScalars(_ value: JSONValue, into out: inout [String]) {
        switch value {
        case .array(let items): for item in items { collectScalars(item, into: &out) }
        case .object, .null: break
        default: if let text = value.scalarText { out.append(text) }
        }
    }
}

/// A compiled regular expression. `NSRegularExpression` is immutable and documented as safe
/// to use from several threads at once.
struct CompiledRegex: @unchecked Sendable, Equatable {
    let source: String
    let regex: NSRegularExpression

    init(_ source: String, options: NSRegularExpression.Options) throws(RuleImportError) {
        self.source = source
        do {
            regex = try NSRegularExpression(pattern: source, options: options)
        } catch {
            throw RuleImportError(.invalidRegex, source)
        }
    }

    func matches(_ text: String) -> Bool {
        let range = NSRange(text.startIndex..<text.endIndex, in: text)
        return regex.firstMatch(in: text, options: [], range: range) != nil
    }

    static func == (lhs: CompiledRegex, rhs: CompiledRegex) -> Bool {
        lhs.source == rhs.source && lhs.regex.options == rhs.regex.options
    }
}

enum ComparisonOperator: String, Sendable, Equatable {
    case lt, lte, gt, gte, eq

    func holds(_ lhs: Double, _ rhs: Double) -> Bool {
        switch self {
        case .lt: return lhs < rhs
        case .lte: return lhs <= rhs
        case .gt: return lhs > rhs
        case .gte: return lhs >= rhs
        case .eq: return lhs == rhs
        }
    }
}

/// One test on one scalar value of a field.
enum ValueTest: Sendable, Equatable {
    case pattern(StringPattern)
    case regex(CompiledRegex)
    case cidr(IPNetwork)
    case compare(ComparisonOperator, Double)

    func matches(_ text: String) -> Bool {
        switch self {
        case .pattern(let pattern): return pattern.matches(text)
        case .regex(let regex): return regex.matches(text)
        case .cidr(let network): return network.contains(text: text)
        case .compare(let op, let bound):
            guard let number = Double(text.trimmingCharacters(in: .whitespaces)) else { return false }
            return op.holds(number, bound)
        }
    }
}

/// How `fieldref` compares two fields.
enum FieldReferenceMode: Sendable, Equatable { case equals, contains, startsWith, endsWith }

/// A compiled boolean test over one event: the common form of Sigma detections, logsource
/// conditions and native queries.
indirect enum EventPredicate: Sendable, Equatable {
    case constant(Bool)
    case and([EventPredicate])
    case or([EventPredicate])
    case not(EventPredicate)
    /// At least `count` of the children hold (`N of selection*`).
    case atLeast(Int, [EventPredicate])
    /// Some value of the field passes one of the tests (all of them with `requireAll`).
    case field(FieldAccessor, [ValueTest], requireAll: Bool)
    /// The field is absent or null (Sigma `Field: null`).
    case fieldIsNull(FieldAccessor)
    case exists(FieldAccessor)
    /// Some scalar anywhere in the event passes the tests (Sigma keywords).
    case keyword([ValueTest], requireAll: Bool)
    case fieldReference(FieldAccessor, FieldAccessor, FieldReferenceMode, caseSensitive: Bool)
    /// A native (VigilQuery) filter.
    case query(QueryNode)

    func evaluate(_ event: JSONValue) -> Bool {
        switch self {
        case .constant(let value): return value
        case .and(let children): return children.allSatisfy { $0.evaluate(event) }
        case .or(let children): return children.contains { $0.evaluate(event) }
        case .not(let child): return !child.evaluate(event)
        case .atLeast(let count, let children):
            var hits = 0
            for child in children where child.evaluate(event) {
                hits += 1
                if hits >= count { return true }
            }
            return hits >= count
        case .field(let accessor, let tests, let requireAll):
            let texts = accessor.texts(in: event)
            if texts.isEmpty { return false }
            if requireAll { return tests.allSatisfy { test in texts.contains(where: test.matches) } }
            return tests.contains { test in texts.contains(where: test.matches) }
        case .fieldIsNull(let accessor):
            guard let value = accessor.value(in: event) else { return true }
            return value == .null
        case .exists(let accessor):
            guard let value = accessor.value(in: event) else { return false }
            return value != .null
        case .keyword(let tests, let requireAll):
            var texts: [String] = []
            Self.allScalars(event, into: &texts)
            if requireAll { return tests.allSatisfy { test in texts.contains(where: test.matches) } }
            return tests.contains { test in texts.contains(where: test.matches) }
        case .fieldReference(let lhs, let rhs, let mode, let caseSensitive):
            let left = lhs.texts(in: event).map { caseSensitive ? $0 : $0.lowercased() }
            let right = rhs.texts(in: event).map { caseSensitive ? $0 : $0.lowercased() }
            return left.contains { l in
                right.contains { r in
                    switch mode {
                    case .equals: return l == r
                    case .contains: return l.contains(r)
                    case .startsWith: return l.hasPrefix(r)
                    case .endsWith: return l.hasSuffix(r)
                    }
                }
            }
        case .query(let node):
            return QueryEvaluator.evaluate(node, on: event)
        }
    }

    static func allScalars(_ value: JSONValue, into out: inout [String]) {
        switch value {
        case .object(let object): for member in object.members { allScalars(member.value, into: &out) }
        case .array(let items): for item in items { allScalars(item, into: &out) }
        case .null: break
        default: if let text = value.scalarText { out.append(text) }
        }
    }
}
