import Foundation
import VigilCore
import VigilQuery
import Yams

/// Why a Sigma rule is refused at import: a reason code (for the coverage report) and the
/// exact detail. A rule is loaded whole or not at all.
public struct SigmaError: Error, Sendable, Equatable, CustomStringConvertible {
    public var reason: String
    public var detail: String
    public init(_ reason: String, _ detail: String) {
        self.reason = reason
        self.detail = detail
    }
    public var description: String { "\(reason): \(detail)" }
}

/// A compiled Sigma rule (SigmaHQ specification v2): logsource, detection and condition.
public struct SigmaRule: Sendable {
    public var id: String
    public var title: String
    public var level: String
    public var tags: [String]
    public var logsource: LogsourcePredicate
    let condition: ConditionNode
    /// In the order of their sorted names, which the condition refers to by index.
    var selections: [Selection]

    /// Identifies the logsource predicate, so an event computes each verdict once.
    let logsourceKey: Int

    /// True when the event belongs to the rule's logsource and its condition holds.
    public func matches(_ event: JSONObject, mapping: FieldMapping) -> Bool {
        matches(SigmaEvent(event, mapping: mapping))
    }

    /// The same, on an event prepared once for many rules.
    public func matches(_ event: SigmaEvent) -> Bool {
        event.belongs(to: logsource, key: logsourceKey) && evaluate(condition, event)
    }

    func evaluate(_ node: ConditionNode, _ resolver: SigmaEvent) -> Bool {
        selections.withUnsafeBufferPointer { Self.evaluate(node, $0, resolver) }
    }

    /// The condition `node` over the rule's `selections` (read in place: a selection copied
    /// out of its array is retained).
    static func evaluate(_ node: ConditionNode, _ selections: UnsafeBufferPointer<Selection>, _ resolver: SigmaEvent) -> Bool {
        // Selections by `unowned(unsafe)` reference (see `Selection`): `selections` holds them.
        func holds(_ index: Int) -> Bool {
            unowned(unsafe) let selection = selections[index]
            return selection.matches(resolver)
        }
        switch node {
        case .selection(let index): return holds(index)
        case .and(let nodes): return nodes.allSatisfy { evaluate($0, selections, resolver) }
        case .or(let nodes): return nodes.contains { evaluate($0, selections, resolver) }
        case .not(let inner): return !evaluate(inner, selections, resolver)
        case .count(let minimum, let names):
            var hits = 0
            for index in names where holds(index) {
                hits += 1
                if hits >= minimum { return true }
            }
            return false
        case .all(let names): return names.allSatisfy(holds)
        }
    }

    /// Parses one Sigma rule document.
    public static func parse(_ yaml: String, mapping: FieldMapping = .standard) throws(SigmaError) -> SigmaRule {
        let documents: [Node]
        do {
            documents = try Array(Yams.compose_all(yaml: yaml))
        } catch {
            throw SigmaError("yaml_syntax", "\(error)")
        }
        guard let root = documents.first?.mapping else { throw SigmaError("invalid_rule", "a Sigma rule is a YAML mapping") }
        if documents.count > 1 { throw SigmaError("unsupported_multi_document", "rule collections (several YAML documents) are not supported") }
        if root[Node("correlation")] != nil { throw SigmaError("unsupported_correlation", "correlation rules are not supported yet") }
        guard let title = root[Node("title")]?.string else { throw SigmaError("invalid_rule", "title is required") }
        let id = root[Node("id")]?.string ?? title
        let level = root[Node("level")]?.string ?? "medium"
        let tags = root[Node("tags")]?.sequence?.compactMap(\.string) ?? []
        guard let logsourceNode = root[Node("logsource")]?.mapping else { throw SigmaError("invalid_rule", "logsource is required") }
        let logsource = try mapping.logsource(product: logsourceNode[Node("product")]?.string, category: logsourceNode[Node("category")]?.string,
                                              service: logsourceNode[Node("service")]?.string)
        guard let detection = root[Node("detection")]?.mapping else { throw SigmaError("invalid_rule", "detection is required") }
        var selections: [String: Selection] = [:]
        var conditionText: String?
        for (keyNode, value) in detection {
            guard let key = keyNode.string else { continue }
            if key == "condition" {
                if let text = value.string { conditionText = text } else if let list = value.sequence {
                    let texts = list.compactMap(\.string)
                    guard !texts.isEmpty else { throw SigmaError("condition_syntax", "condition is empty") }
                    conditionText = texts.map { "(\($0))" }.joined(separator: " or ")
                }
                continue
            }
            if key == "timeframe" { throw SigmaError("unsupported_timeframe", "detection.timeframe (deprecated aggregation) is not supported") }
            selections[key] = try Selection.parse(value, name: key, mapping: mapping)
        }
        guard let conditionText else { throw SigmaError("condition_syntax", "detection.condition is required") }
        if conditionText.contains("|") { throw SigmaError("unsupported_aggregation", "condition aggregations ('| count() ...') are deprecated; use correlation rules") }
        var parser = ConditionParser(text: conditionText, names: Array(selections.keys))
        let condition = try parser.parse()
        return SigmaRule(id: id, title: title, level: level, tags: tags, logsource: logsource, condition: condition, selections: parser.names.map { selections[$0]! },
                         logsourceKey: logsource.clauses.description.hashValue)
    }
}

// MARK: - Conditions

/// A parsed condition; selections are indexes into the rule's sorted selection names.
indirect enum ConditionNode: Sendable {
    case selection(Int)
    case and([ConditionNode])
    case or([ConditionNode])
    case not(ConditionNode)
    /// `N of pattern`: at least N of the named selections.
    case count(Int, [Int])
    /// `all of pattern`.
    case all([Int])
}

/// `sel1 and not (sel2 or 1 of filter_*)`: `not` binds tighter than `and`, which binds tighter
/// than `or`.
struct ConditionParser {
    let tokens: [String]
    let names: [String]
    var index = 0

    init(text: String, names: [String]) {
        var tokens: [String] = []
        var current = ""
        for ch in text {
            if ch == "(" || ch == ")" {
                if !current.isEmpty { tokens.append(current); current = "" }
                tokens.append(String(ch))
            } else if ch.isWhitespace {
                if !current.isEmpty { tokens.append(current); current = "" }
            } else {
                current.append(ch)
            }
        }
        if !current.isEmpty { tokens.append(current) }
        self.tokens = tokens
        self.names = names.sorted()
    }

    mutating func parse() throws(SigmaError) -> ConditionNode {
        guard !tokens.isEmpty else { throw SigmaError("condition_syntax", "condition is empty") }
        let node = try parseOr()
        guard index == tokens.count else { throw SigmaError("condition_syntax", "unexpected '\(tokens[index])' in condition") }
        return node
    }

    var peek: String? { index < tokens.count ? tokens[index].lowercased() : nil }

    mutating func parseOr() throws(SigmaError) -> ConditionNode {
        var nodes = [try parseAnd()]
        while peek == "or" {
            index += 1
            nodes.append(try parseAnd())
        }
        return nodes.count == 1 ? nodes[0] : .or(nodes)
    }

    mutating func parseAnd() throws(SigmaError) -> ConditionNode {
        var nodes = [try parseNot()]
        while peek == "and" {
            index += 1
            nodes.append(try parseNot())
        }
        return nodes.count == 1 ? nodes[0] : .and(nodes)
    }

    mutating func parseNot() throws(SigmaError) -> ConditionNode {
        if peek == "not" {
            index += 1
            return .not(try parseNot())
        }
        return try parseAtom()
    }

    mutating func parseAtom() throws(SigmaError) -> ConditionNode {
        guard let token = peek else { throw SigmaError("condition_syntax", "the condition ends too early") }
        if token == "(" {
            index += 1
            let node = try parseOr()
            guard peek == ")" else { throw SigmaError("condition_syntax", "missing ')'") }
            index += 1
            return node
        }
        if token == "all" || token == "any" || Int(token) != nil, index + 2 < tokens.count + 1, index + 1 < tokens.count, tokens[index + 1].lowercased() == "of" {
            guard index + 2 < tokens.count else { throw SigmaError("condition_syntax", "'\(token) of' needs a selection pattern or 'them'") }
            let pattern = tokens[index + 2]
            index += 3
            let matched = try expand(pattern)
            if token == "all" { return .all(matched) }
            let minimum = token == "any" ? 1 : Int(token)!
            guard minimum >= 1 else { throw SigmaError("condition_syntax", "'\(token) of' needs a positive number") }
            return .count(minimum, matched)
        }
        guard !["and", "or", ")", "of"].contains(token) else { throw SigmaError("condition_syntax", "unexpected '\(tokens[index])'") }
        let name = tokens[index]
        guard let position = names.firstIndex(of: name) else { throw SigmaError("condition_syntax", "the condition names '\(name)', which detection does not define") }
        index += 1
        return .selection(position)
    }

    func expand(_ pattern: String) throws(SigmaError) -> [Int] {
        if pattern.lowercased() == "them" { return names.indices.filter { !names[$0].hasPrefix("_") } }
        let matched = names.indices.filter { ValueMatcher.wildcard(Array(pattern.unicodeScalars), Array(names[$0].unicodeScalars)) }
        guard !matched.isEmpty else { throw SigmaError("condition_syntax", "'\(pattern)' matches no selection") }
        return matched
    }
}
