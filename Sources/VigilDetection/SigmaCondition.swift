/// Parses a Sigma `condition` into a predicate over named searches.
///
/// Grammar (loosest first): `or`, `and`, `not`, then `( ... )`, `1 of pattern`,
/// `all of pattern`, `N of pattern`, `1 of them`, `all of them`, or a search name.
/// Keywords are case-insensitive. Aggregations after `|` (Sigma v1) are refused.
struct SigmaConditionParser {
    enum Token: Equatable {
        case word(String)
        case open, close
    }

    let searches: [(name: String, predicate: EventPredicate)]
    let tokens: [Token]
    var index = 0
    let text: String

    init(_ text: String, searches: [(name: String, predicate: EventPredicate)]) throws(RuleImportError) {
        self.text = text
        self.searches = searches
        if text.contains("|") { throw RuleImportError(.conditionSyntax, "aggregation (|) is Sigma v1; use a correlation rule") }
        var tokens: [Token] = []
        var word = ""
        for character in text {
            switch character {
            case "(", ")", " ", "\t", "\n", "\r":
                if !word.isEmpty { tokens.append(.word(word)); word = "" }
                if character == "(" { tokens.append(.open) }
                if character == ")" { tokens.append(.close) }
            default:
                guard character.isLetter || character.isNumber || "_-*.?".contains(character) else {
                    throw RuleImportError(.conditionSyntax, "unexpected character '\(character)' in '\(text)'")
                }
                word.append(character)
            }
        }
        if !word.isEmpty { tokens.append(.word(word)) }
        self.tokens = tokens
    }

    mutating func parse() throws(RuleImportError) -> EventPredicate {
        guard !tokens.isEmpty else { throw RuleImportError(.conditionSyntax, "empty condition") }
        let result = try parseOr(depth: 0)
        guard index == tokens.count else { throw fail("unexpected '\(describe(tokens[index]))'") }
        return result
    }

    func fail(_ message: String) -> RuleImportError {
        RuleImportError(.conditionSyntax, "\(message) in '\(text)'")
    }

    func describe(_ token: Token) -> String {
        switch token {
        case .word(let w): return w
        case .open: return "("
        case .close: return ")"
        }
    }

    func isKeyword(_ keyword: String) -> Bool {
        guard index < tokens.count, case .word(let word) = tokens[index] else { return false }
        return word.lowercased() == keyword
    }

    mutating func parseOr(depth: Int) throws(RuleImportError) -> EventPredicate {
        var children = [try parseAnd(depth: depth)]
        while isKeyword("or") {
            index += 1
            children.append(try parseAnd(depth: depth))
        }
        return children.count == 1 ? children[0] : .or(children)
    }

    mutating func parseAnd(depth: Int) throws(RuleImportError) -> EventPredicate {
        var children = [try parseNot(depth: depth)]
        while isKeyword("and") {
            index += 1
            children.append(try parseNot(depth: depth))
        }
        return children.count == 1 ? children[0] : .and(children)
    }

    mutating func parseNot(depth: Int) throws(RuleImportError) -> EventPredicate {
        guard depth < 64 else { throw fail("nesting too deep") }
        if isKeyword("not") {
            index += 1
            return .not(try parseNot(depth: depth + 1))
        }
        return try parsePrimary(depth: depth)
    }

    mutating func parsePrimary(depth: Int) throws(RuleImportError) -> EventPredicate {
        guard index < tokens.count else { throw fail("expected a search name at end") }
        switch tokens[index] {
        case .open:
            index += 1
            let inner = try parseOr(depth: depth + 1)
            guard index < tokens.count, tokens[index] == .close else { throw fail("expected ')'") }
            index += 1
            return inner
        case .close:
            throw fail("unexpected ')'")
        case .word(let word):
            let lower = word.lowercased()
            if ["and", "or", "of", "them"].contains(lower) { throw fail("unexpected '\(word)'") }
            if index + 1 < tokens.count, case .word(let next) = tokens[index + 1], next.lowercased() == "of" {
                let quantity: Int?
                if lower == "all" {
                    quantity = nil
                } else if let n = Int(word), n >= 1 {
                    quantity = n
                } else {
                    throw fail("expected 'all' or a number before 'of', got '\(word)'")
                }
                index += 2
                guard index < tokens.count, case .word(let target) = tokens[index] else { throw fail("expected a pattern after 'of'") }
                index += 1
                let selected: [EventPredicate]
                if target.lowercased() == "them" {
                    selected = searches.filter { !$0.name.hasPrefix("_") }.map(\.predicate)
                } else {
                    let pattern = StringPattern(tokens: StringPattern.tokens(sigma: target), caseSensitive: true)
                    selected = searches.filter { pattern.matches($0.name) }.map(\.predicate)
                }
                guard !selected.isEmpty else { throw RuleImportError(.unknownIdentifier, target) }
                guard let quantity else { return selected.count == 1 ? selected[0] : .and(selected) }
                if quantity == 1 { return selected.count == 1 ? selected[0] : .or(selected) }
                return .atLeast(quantity, selected)
            }
            guard let search = searches.first(where: { $0.name == word }) else {
                throw RuleImportError(.unknownIdentifier, word)
            }
            index += 1
            return search.predicate
        }
    }
}
