import VigilCore

/// Parses the search language (docs/search.md) into a `Query`.
///
/// A hand-written recursive-descent parser over UTF-8 bytes: every error names the byte
/// offset and what was expected there. Precedence, loosest first: `OR`, `AND` (also plain
/// juxtaposition), `NOT`. Keywords are upper case; lower-case `and`/`or`/`not` are terms.
public struct QueryParser: Sendable {
    /// No query text is longer than this, whatever the tenant's limits say.
    public static let maxQueryBytes = 8 * 1024
    /// No query nests deeper than this (parentheses and `NOT`), whatever the limits say.
    public static let maxDepth = 64

    public init() {}

    public func parse(_ text: String) throws(QuerySyntaxError) -> Query {
        var parser = Parser(bytes: Array(text.utf8))
        return try parser.parseQuery()
    }
}

/// Field names: letters, digits, `_`, `-`, `@` and `.`, at most 128 bytes, no empty segment.
public enum FieldName {
    public static func isValid(_ field: String) -> Bool {
        guard (1...128).contains(field.utf8.count), !field.hasPrefix("."), !field.hasSuffix("."), !field.contains("..") else { return false }
        return field.utf8.allSatisfy(isFieldByte)
    }

    static func isFieldByte(_ b: UInt8) -> Bool {
        (b >= 0x61 && b <= 0x7A) || (b >= 0x41 && b <= 0x5A) || (b >= 0x30 && b <= 0x39)
            || b == UInt8(ascii: "_") || b == UInt8(ascii: "-") || b == UInt8(ascii: "@") || b == UInt8(ascii: ".")
    }

    /// The field of `@timestamp`, searchable like any other.
    public static let timestamp = "@timestamp"
}

private struct Parser {
    let bytes: [UInt8]
    var index = 0

    init(bytes: [UInt8]) { self.bytes = bytes }

    var atEnd: Bool { index >= bytes.count }
    var current: UInt8? { index < bytes.count ? bytes[index] : nil }

    static func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D }

    mutating func skipSpace() {
        while let b = current, Self.isSpace(b) { index += 1 }
    }

    func fail(_ expected: String, at offset: Int? = nil) -> QuerySyntaxError {
        QuerySyntaxError(offset: offset ?? index, expected: expected)
    }

    /// True when a keyword stands at the cursor as a word of its own.
    func atKeyword(_ keyword: String) -> Bool {
        let word = Array(keyword.utf8)
        guard index + word.count <= bytes.count, bytes[index..<index + word.count].elementsEqual(word) else { return false }
        let after = index + word.count
        guard after < bytes.count else { return true }
        let b = bytes[after]
        return Self.isSpace(b) || b == UInt8(ascii: "(") || b == UInt8(ascii: "\"")
    }

    // MARK: Query

    mutating func parseQuery() throws(QuerySyntaxError) -> Query {
        guard bytes.count <= QueryParser.maxQueryBytes else {
            throw fail("a query of at most \(QueryParser.maxQueryBytes) bytes", at: QueryParser.maxQueryBytes)
        }
        skipSpace()
        var filter = QueryNode.all
        if !atEnd, current != UInt8(ascii: "|") {
            filter = try parseOr(depth: 0)
            skipSpace()
            if let b = current, b != UInt8(ascii: "|") {
                throw fail(b == UInt8(ascii: ")") ? "no ')' without a matching '('" : "AND, OR, NOT, '|' or the end of the query")
            }
        }
        var stages: [(Stage, Int)] = []
        while current == UInt8(ascii: "|") {
            index += 1
            skipSpace()
            let start = index
            stages.append((try parseStage(), start))
            skipSpace()
            if let _ = current, current != UInt8(ascii: "|") { throw fail("'|' or the end of the query") }
        }
        try Self.checkStageOrder(stages)
        return Query(filter: Self.simplify(filter), stages: stages.map(\.0))
    }

    /// Drops `*` inside AND, flattens nested AND/OR of the same kind.
    static func simplify(_ node: QueryNode) -> QueryNode {
        switch node {
        case .and(let nodes):
            var out: [QueryNode] = []
            for child in nodes.map(simplify) {
                if case .and(let inner) = child { out += inner } else if child != .all { out.append(child) }
            }
            return out.isEmpty ? .all : (out.count == 1 ? out[0] : .and(out))
        case .or(let nodes):
            var out: [QueryNode] = []
            for child in nodes.map(simplify) {
                if child == .all { return .all }
                if case .or(let inner) = child { out += inner } else { out.append(child) }
            }
            return out.count == 1 ? out[0] : .or(out)
        case .not(let inner):
            return .not(simplify(inner))
        default:
            return node
        }
    }

    static func checkStageOrder(_ stages: [(Stage, Int)]) throws(QuerySyntaxError) {
        var sawStats = false, sawSort = false, sawFields = false
        for (position, (stage, offset)) in stages.enumerated() {
            switch stage {
            case .stats:
                guard position == 0 else {
                    throw QuerySyntaxError(offset: offset, expected: "stats or timechart as the first stage only")
                }
                sawStats = true
            case .sort:
                guard !sawSort else { throw QuerySyntaxError(offset: offset, expected: "at most one sort stage") }
                sawSort = true
            case .fields:
                guard !sawStats else { throw QuerySyntaxError(offset: offset, expected: "no fields stage after stats or timechart (their columns are fixed)") }
                guard !sawFields else { throw QuerySyntaxError(offset: offset, expected: "at most one fields stage") }
                sawFields = true
            case .head:
                break
            }
        }
    }

    // MARK: Boolean filter

    mutating func parseOr(depth: Int) throws(QuerySyntaxError) -> QueryNode {
        var nodes = [try parseAnd(depth: depth)]
        while true {
            skipSpace()
            guard atKeyword("OR") else { break }
            index += 2
            nodes.append(try parseAnd(depth: depth))
        }
        return nodes.count == 1 ? nodes[0] : .or(nodes)
    }

    mutating func parseAnd(depth: Int) throws(QuerySyntaxError) -> QueryNode {
        var nodes = [try parseUnary(depth: depth)]
        while true {
            skipSpace()
            guard let b = current, b != UInt8(ascii: ")"), b != UInt8(ascii: "|"), !atKeyword("OR") else { break }
            if atKeyword("AND") { index += 3 }
            nodes.append(try parseUnary(depth: depth))
        }
        return nodes.count == 1 ? nodes[0] : .and(nodes)
    }

    mutating func parseUnary(depth: Int) throws(QuerySyntaxError) -> QueryNode {
        skipSpace()
        if atKeyword("NOT") {
            guard depth < QueryParser.maxDepth else { throw fail("at most \(QueryParser.maxDepth) levels of nesting") }
            index += 3
            return .not(try parseUnary(depth: depth + 1))
        }
        return try parsePrimary(depth: depth)
    }

    mutating func parsePrimary(depth: Int) throws(QuerySyntaxError) -> QueryNode {
        skipSpace()
        guard let b = current else { throw fail("a term, \"phrase\", field:value or '(' after the operator") }
        switch b {
        case UInt8(ascii: "("):
            guard depth < QueryParser.maxDepth else { throw fail("at most \(QueryParser.maxDepth) levels of nesting") }
            let open = index
            index += 1
            skipSpace()
            if current == UInt8(ascii: ")") { throw fail("a query inside '()'") }
            let node = try parseOr(depth: depth + 1)
            skipSpace()
            guard current == UInt8(ascii: ")") else { throw fail("')' to close the '(' at offset \(open)") }
            index += 1
            return node
        case UInt8(ascii: ")"):
            throw fail("a term before ')'")
        case UInt8(ascii: "|"):
            throw fail("a term before '|'")
        case UInt8(ascii: "\""):
            return .text(.phrase(try readQuoted()))
        default:
            break
        }
        if atKeyword("AND") || atKeyword("OR") {
            throw fail("a term before \(atKeyword("AND") ? "AND" : "OR")")
        }
        let start = index
        while let c = current, FieldName.isFieldByte(c) { index += 1 }
        let name = String(decoding: bytes[start..<index], as: UTF8.self)
        if !name.isEmpty, let c = current {
            if c == UInt8(ascii: ":") {
                try checkField(name, at: start)
                index += 1
                return try parseFieldValue(name, fieldOffset: start)
            }
            if c == UInt8(ascii: ">") || c == UInt8(ascii: "<") {
                try checkField(name, at: start)
                return try parseComparison(name)
            }
        }
        index = start
        let (value, wildcard) = try readBare(stops: Self.termStops)
        if value.isEmpty, wildcard { return .all }
        guard !value.isEmpty else { throw fail("a term", at: start) }
        return .text(wildcard ? .prefix(value) : .term(value))
    }

    func checkField(_ name: String, at offset: Int) throws(QuerySyntaxError) {
        guard FieldName.isValid(name) else {
            throw fail("a field name of at most 128 letters, digits, '_', '-', '@' and '.' without empty segments", at: offset)
        }
    }

    mutating func parseFieldValue(_ field: String, fieldOffset: Int) throws(QuerySyntaxError) -> QueryNode {
        guard let b = current, !Self.isSpace(b), b != UInt8(ascii: ")"), b != UInt8(ascii: "|") else {
            throw fail("a value after '\(field):'")
        }
        if field == "_exists_" {
            let start = index
            while let c = current, FieldName.isFieldByte(c) { index += 1 }
            let target = String(decoding: bytes[start..<index], as: UTF8.self)
            try checkField(target, at: start)
            return .exists(target)
        }
        switch b {
        case UInt8(ascii: "\""):
            let value = try readQuoted()
            return field == "message" ? .text(.phrase(value)) : .field(field, .equals(value))
        case UInt8(ascii: "["), UInt8(ascii: "{"):
            return try parseRange(field)
        case UInt8(ascii: ">"), UInt8(ascii: "<"):
            return try parseComparison(field)
        default:
            let start = index
            let (value, wildcard) = try readBare(stops: Self.termStops)
            if wildcard {
                if value.isEmpty { return .exists(field) }
                return field == "message" ? .text(.prefix(value)) : .field(field, .prefix(value))
            }
            guard !value.isEmpty else { throw fail("a value after '\(field):'", at: start) }
            if field == "message" { return .text(.term(value)) }
            if value.contains("/"), let network = IPNetwork(value) { return .field(field, .cidr(network)) }
            return .field(field, .equals(value))
        }
    }

    mutating func parseComparison(_ field: String) throws(QuerySyntaxError) -> QueryNode {
        let greater = current == UInt8(ascii: ">")
        index += 1
        var inclusive = false
        if current == UInt8(ascii: "=") {
            inclusive = true
            index += 1
        }
        let start = index
        let value: String
        if current == UInt8(ascii: "\"") {
            value = try readQuoted()
        } else {
            let (bare, wildcard) = try readBare(stops: Self.termStops)
            guard !wildcard else { throw fail("a value without '*' in a comparison", at: start) }
            value = bare
        }
        guard !value.isEmpty else { throw fail("a value after '\(field)\(greater ? ">" : "<")\(inclusive ? "=" : "")'", at: start) }
        let bound = RangeBound(value, inclusive: inclusive)
        return .field(field, greater ? .range(lower: bound, upper: nil) : .range(lower: nil, upper: bound))
    }

    mutating func parseRange(_ field: String) throws(QuerySyntaxError) -> QueryNode {
        let open = index
        let lowerInclusive = current == UInt8(ascii: "[")
        index += 1
        skipSpace()
        let lower = try readRangeValue()
        skipSpace()
        guard atKeyword("TO") else { throw fail("TO between the bounds of the range at offset \(open)") }
        index += 2
        skipSpace()
        let upper = try readRangeValue()
        skipSpace()
        guard let close = current, close == UInt8(ascii: "]") || close == UInt8(ascii: "}") else {
            throw fail("']' or '}' to close the range at offset \(open)")
        }
        index += 1
        let upperInclusive = close == UInt8(ascii: "]")
        guard lower != nil || upper != nil else { throw fail("at least one bound that is not '*'", at: open) }
        return .field(field, .range(lower: lower.map { RangeBound($0, inclusive: lowerInclusive) },
                                    upper: upper.map { RangeBound($0, inclusive: upperInclusive) }))
    }

    /// A range bound; nil for `*` (open).
    mutating func readRangeValue() throws(QuerySyntaxError) -> String? {
        if current == UInt8(ascii: "\"") { return try readQuoted() }
        let start = index
        let (value, wildcard) = try readBare(stops: Self.rangeStops)
        if wildcard, value.isEmpty { return nil }
        guard !wildcard else { throw fail("a bound without '*' (use '*' alone for an open bound)", at: start) }
        guard !value.isEmpty else { throw fail("a bound or '*'", at: start) }
        return value
    }

    static let termStops: Set<UInt8> = [0x20, 0x09, 0x0A, 0x0D, UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: "|"), UInt8(ascii: "\"")]
    static let rangeStops: Set<UInt8> = termStops.union([UInt8(ascii: "]"), UInt8(ascii: "}")])

    /// A bare value up to a stop byte. `\x` is a literal x; an unescaped `*` may only end it.
    mutating func readBare(stops: Set<UInt8>) throws(QuerySyntaxError) -> (String, wildcard: Bool) {
        var out: [UInt8] = []
        var wildcard = false
        while let b = current, !stops.contains(b) {
            if wildcard { throw fail("'*' only at the end of a value (escape it as '\\*' to search for it)", at: index - 1) }
            if b == UInt8(ascii: "\\") {
                guard index + 1 < bytes.count else { throw fail("a character after '\\'") }
                out.append(bytes[index + 1])
                index += 2
                continue
            }
            if b == UInt8(ascii: "*") {
                wildcard = true
            } else {
                out.append(b)
            }
            index += 1
        }
        return (String(decoding: out, as: UTF8.self), wildcard)
    }

    mutating func readQuoted() throws(QuerySyntaxError) -> String {
        let start = index
        index += 1
        var out: [UInt8] = []
        while let b = current {
            if b == UInt8(ascii: "\\"), index + 1 < bytes.count {
                out.append(bytes[index + 1])
                index += 2
                continue
            }
            if b == UInt8(ascii: "\"") {
                index += 1
                return String(decoding: out, as: UTF8.self)
            }
            out.append(b)
            index += 1
        }
        throw fail("a closing '\"' for the one at offset \(start)", at: start)
    }

    // MARK: Stages

    mutating func readWord() -> String {
        let start = index
        while let c = current, (c >= 0x61 && c <= 0x7A) || (c >= 0x41 && c <= 0x5A) { index += 1 }
        return String(decoding: bytes[start..<index], as: UTF8.self)
    }

    mutating func readField(_ what: String) throws(QuerySyntaxError) -> String {
        skipSpace()
        let start = index
        while let c = current, FieldName.isFieldByte(c) { index += 1 }
        let name = String(decoding: bytes[start..<index], as: UTF8.self)
        guard !name.isEmpty else { throw fail(what, at: start) }
        try checkField(name, at: start)
        return name
    }

    mutating func parseStage() throws(QuerySyntaxError) -> Stage {
        let start = index
        let name = readWord()
        switch name {
        case "stats":
            return .stats(try parseAggregation(span: nil))
        case "timechart":
            skipSpace()
            var span: Int64 = 60_000
            let spanStart = index
            if readWord() == "span" {
                guard current == UInt8(ascii: "=") else { throw fail("'=' after span") }
                index += 1
                span = try readDuration()
            } else {
                index = spanStart
            }
            return .stats(try parseAggregation(span: span))
        case "sort":
            var keys: [SortKey] = []
            repeat {
                skipSpace()
                var descending = false
                if current == UInt8(ascii: "-") {
                    descending = true
                    index += 1
                }
                var field = try readField("a field to sort by")
                if current == UInt8(ascii: "(") {
                    // An aggregate column: `count()`, `dc(user.name)`.
                    let open = index
                    while let c = current, c != UInt8(ascii: ")") { index += 1 }
                    guard consume(")") else { throw fail("')' to close the '(' at offset \(open)") }
                    field += String(decoding: bytes[open..<index], as: UTF8.self)
                }
                skipSpace()
                let save = index
                switch readWord() {
                case "desc": descending = true
                case "asc": descending = false
                default: index = save
                }
                keys.append(SortKey(field, descending: descending))
                skipSpace()
            } while consume(",")
            return .sort(keys)
        case "head":
            skipSpace()
            let numberStart = index
            while let c = current, c >= 0x30, c <= 0x39 { index += 1 }
            guard let count = Int(String(decoding: bytes[numberStart..<index], as: UTF8.self)), count >= 1, count <= 1_000_000 else {
                throw fail("a number of rows from 1 to 1000000 after head", at: numberStart)
            }
            return .head(count)
        case "fields":
            var fields: [String] = []
            repeat {
                fields.append(try readField("a field name"))
                skipSpace()
            } while consume(",")
            return .fields(fields)
        default:
            throw fail("a stage: stats, timechart, sort, head or fields", at: start)
        }
    }

    mutating func consume(_ character: Character) -> Bool {
        guard let ascii = character.asciiValue, current == ascii else { return false }
        index += 1
        return true
    }

    mutating func readDuration() throws(QuerySyntaxError) -> Int64 {
        let start = index
        while let c = current, c >= 0x30, c <= 0x39 { index += 1 }
        guard let amount = Int64(String(decoding: bytes[start..<index], as: UTF8.self)), amount > 0, amount <= 100_000 else {
            throw fail("a span like 30s, 1m, 1h or 1d", at: start)
        }
        let unit = readWord()
        let scale: Int64
        switch unit {
        case "s": scale = 1000
        case "m": scale = 60_000
        case "h": scale = 3_600_000
        case "d": scale = 86_400_000
        default: throw fail("a span unit: s, m, h or d", at: index - unit.utf8.count)
        }
        return amount * scale
    }

    mutating func parseAggregation(span: Int64?) throws(QuerySyntaxError) -> Aggregation {
        var functions: [AggregateFunction] = []
        repeat {
            skipSpace()
            let start = index
            let name = readWord()
            var field: String?
            if consume("(") {
                skipSpace()
                if current != UInt8(ascii: ")") { field = try readField("a field name inside \(name)()") }
                skipSpace()
                guard consume(")") else { throw fail("')' to close \(name)(") }
            } else if name != "count" {
                throw fail("'(' after \(name.isEmpty ? "the function" : name)")
            }
            switch (name, field) {
            case ("count", nil): functions.append(.count)
            case ("dc", let f?): functions.append(.distinctCount(f))
            case ("sum", let f?): functions.append(.sum(f))
            case ("avg", let f?): functions.append(.avg(f))
            case ("min", let f?): functions.append(.min(f))
            case ("max", let f?): functions.append(.max(f))
            case ("count", _): throw fail("count() without a field", at: start)
            case ("dc", nil), ("sum", nil), ("avg", nil), ("min", nil), ("max", nil): throw fail("a field inside \(name)()", at: start)
            default: throw fail("an aggregate: count(), dc(f), sum(f), avg(f), min(f) or max(f)", at: start)
            }
            skipSpace()
        } while consume(",")
        var groupBy: [String] = []
        let save = index
        if readWord() == "by" {
            repeat {
                groupBy.append(try readField("a field to group by"))
                skipSpace()
            } while consume(",")
        } else {
            index = save
        }
        return Aggregation(functions: functions, groupBy: groupBy, span: span)
    }
}
