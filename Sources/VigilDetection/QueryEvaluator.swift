import Foundation
import VigilCore
import VigilQuery

/// Evaluates a VigilQuery filter against one event in memory, with the same meaning the
/// stores give it: free text works on the tokens of `message` (letters and digits, case and
/// diacritics folded), field predicates on the field's scalar values.
public enum QueryEvaluator {
    /// Reports whether `event` passes `node`.
    public static func evaluate(_ node: QueryNode, on event: JSONObject) -> Bool {
        evaluate(node, on: .object(event))
    }

    static func evaluate(_ node: QueryNode, on event: JSONValue) -> Bool {
        switch node {
        case .all: return true
        case .and(let children): return children.allSatisfy { evaluate($0, on: event) }
        case .or(let children): return children.contains { evaluate($0, on: event) }
        case .not(let child): return !evaluate(child, on: event)
        case .exists(let field):
            guard let value = event.value(atPath: field) else { return false }
            return value != .null
        case .text(let match):
            guard let message = event.value(atPath: "message")?.scalarText else { return false }
            return textMatches(match, tokens: tokenize(message))
        case .field(let field, let predicate):
            guard let value = event.value(atPath: field) else { return false }
            var texts: [String] = []
            FieldAccessor.collectScalars(value, into: &texts)
            return texts.contains { fieldMatches(predicate, $0) }
        }
    }

    /// Splits text into index tokens: runs of letters and digits, case and diacritics folded.
    public static func tokenize(_ text: String) -> [String] {
        let folded = text.folding(options: [.caseInsensitive, .diacriticInsensitive], locale: nil).lowercased()
        var tokens: [String] = []
        var current = ""
        for scalar in folded.unicodeScalars {
            if scalar.properties.isAlphabetic || scalar.properties.numericType != nil {
                current.unicodeScalars.append(scalar)
            } else if !current.isEmpty {
                tokens.append(current)
                current = ""
            }
        }
        if !current.isEmpty { tokens.append(current) }
        return tokens
    }

    static func textMatches(_ match: TextMatch, tokens: [String]) -> Bool {
        switch match {
        case .term(let text), .phrase(let text):
            return containsSequence(tokenize(text), in: tokens, lastIsPrefix: false)
        case .prefix(let text):
            return containsSequence(tokenize(text), in: tokens, lastIsPrefix: true)
        }
    }

    static func containsSequence(_ needle: [String], in tokens: [String], lastIsPrefix: Bool) -> Bool {
        guard !needle.isEmpty else { return false }
        guard tokens.count >= needle.count else { return false }
        for start in 0...(tokens.count - needle.count) {
            var ok = true
            for (offset, want) in needle.enumerated() {
                let have = tokens[start + offset]
                let isLast = offset == needle.count - 1
                if isLast && lastIsPrefix ? !have.hasPrefix(want) : have != want {
                    ok = false
                    break
                }
            }
            if ok { return true }
        }
        return false
    }

    static func fieldMatches(_ predicate: FieldPredicate, _ text: String) -> Bool {
        switch predicate {
        case .equals(let want):
            if text == want { return true }
            if let a = Double(text), let b = Double(want) { return a == b }
            return false
        case .prefix(let want):
            return text.hasPrefix(want)
        case .cidr(let network):
            return network.contains(text: text)
        case .range(let lower, let upper):
            if let lower, !boundHolds(text, lower, isLower: true) { return false }
            if let upper, !boundHolds(text, upper, isLower: false) { return false }
            return true
        }
    }

    /// Numbers compare as numbers, RFC 3339 times as instants, anything else as text.
    static func boundHolds(_ text: String, _ bound: RangeBound, isLower: Bool) -> Bool {
        let order: ComparisonResult
        if let a = Double(text), let b = Double(bound.value) {
            order = a < b ? .orderedAscending : a > b ? .orderedDescending : .orderedSame
        } else if let a = Timestamp.parseRFC3339(text), let b = Timestamp.parseRFC3339(bound.value) {
            order = a < b ? .orderedAscending : a > b ? .orderedDescending : .orderedSame
        } else {
            order = text < bound.value ? .orderedAscending : text > bound.value ? .orderedDescending : .orderedSame
        }
        switch order {
        case .orderedSame: return bound.inclusive
        case .orderedAscending: return !isLower
        case .orderedDescending: return isLower
        }
    }
}
