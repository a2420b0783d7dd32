import VigilCore

/// The guardrails every search runs under. Defaults apply to every tenant; an operator may
/// override each one per tenant (`PUT /api/v1/tenants/{name}/search-limits`).
public struct SearchLimits: Sendable, Equatable {
    /// Longest time range a search may cover.
    public var maxRangeDays: Int = 31
    /// Rows returned when the request names no limit.
    public var defaultLimit: Int = 100
    /// Largest row limit a request may name.
    public var maxLimit: Int = 10_000
    /// Execution time, after which the query is interrupted.
    public var timeoutMillis: Int = 10_000
    /// Searches, exports and live tails running at once for one tenant (then 429).
    public var maxConcurrent: Int = 4
    /// Bytes of query text.
    public var maxQueryBytes: Int = 4096
    /// Leaf predicates (terms, phrases, field comparisons) in the filter.
    public var maxTerms: Int = 64
    /// Nesting of parentheses and NOT.
    public var maxDepth: Int = 10
    /// Characters before `*` in a wildcard (`ab*` has 2).
    public var minWildcardPrefix: Int = 2
    /// Groups an aggregation may produce (then refused).
    public var maxGroups: Int = 10_000
    /// Rows one export may stream.
    public var maxExportRows: Int = 100_000
    /// Matching events counted exactly; beyond this `total` is a lower bound.
    public var maxTotalCount: Int = 10_000

    public init() {}

    public var maxRangeMillis: Int64 { Int64(maxRangeDays) * Timestamp.millisPerDay }

    /// Every limit by its API name, for documentation, validation and overrides.
    public static let names: [String] = [
        "max_range_days", "default_limit", "max_limit", "timeout_ms", "max_concurrent", "max_query_bytes",
        "max_terms", "max_depth", "min_wildcard_prefix", "max_groups", "max_export_rows", "max_total_count",
    ]

    /// Hard bounds: an override outside them is refused.
    public static func bounds(of name: String) -> ClosedRange<Int>? {
        switch name {
        case "max_range_days": return 1...3650
        case "default_limit": return 1...100_000
        case "max_limit": return 1...100_000
        case "timeout_ms": return 1...600_000
        case "max_concurrent": return 1...256
        case "max_query_bytes": return 16...QueryParser.maxQueryBytes
        case "max_terms": return 1...1024
        case "max_depth": return 1...QueryParser.maxDepth
        case "min_wildcard_prefix": return 0...64
        case "max_groups": return 1...1_000_000
        case "max_export_rows": return 1...10_000_000
        case "max_total_count": return 1...10_000_000
        default: return nil
        }
    }

    public subscript(name: String) -> Int? {
        get {
            switch name {
            case "max_range_days": return maxRangeDays
            case "default_limit": return defaultLimit
            case "max_limit": return maxLimit
            case "timeout_ms": return timeoutMillis
            case "max_concurrent": return maxConcurrent
            case "max_query_bytes": return maxQueryBytes
            case "max_terms": return maxTerms
            case "max_depth": return maxDepth
            case "min_wildcard_prefix": return minWildcardPrefix
            case "max_groups": return maxGroups
            case "max_export_rows": return maxExportRows
            case "max_total_count": return maxTotalCount
            default: return nil
            }
        }
        set {
            guard let newValue else { return }
            switch name {
            case "max_range_days": maxRangeDays = newValue
            case "default_limit": defaultLimit = newValue
            case "max_limit": maxLimit = newValue
            case "timeout_ms": timeoutMillis = newValue
            case "max_concurrent": maxConcurrent = newValue
            case "max_query_bytes": maxQueryBytes = newValue
            case "max_terms": maxTerms = newValue
            case "max_depth": maxDepth = newValue
            case "min_wildcard_prefix": minWildcardPrefix = newValue
            case "max_groups": maxGroups = newValue
            case "max_export_rows": maxExportRows = newValue
            case "max_total_count": maxTotalCount = newValue
            default: break
            }
        }
    }

    /// These limits with the overrides applied (unknown names are ignored).
    public func applying(_ overrides: [String: Int]) -> SearchLimits {
        var copy = self
        for (name, value) in overrides { copy[name] = value }
        return copy
    }
}

/// A query or request that breaks a limit: refused before it runs, naming the limit.
public struct SearchLimitError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The limit's API name (`max_terms`, ...).
    public var limit: String
    public var message: String

    public init(limit: String, message: String) {
        self.limit = limit
        self.message = message
    }

    public var description: String { message }
}

/// Parses a query and checks it against the limits. The one entry point the server uses.
public enum QueryChecker {
    public static func parse(_ text: String, limits: SearchLimits) throws -> Query {
        guard text.utf8.count <= limits.maxQueryBytes else {
            throw SearchLimitError(limit: "max_query_bytes", message: "the query is \(text.utf8.count) bytes; the limit is \(limits.maxQueryBytes)")
        }
        let query = try QueryParser().parse(text)
        try check(query, limits: limits)
        return query
    }

    public static func check(_ query: Query, limits: SearchLimits) throws(SearchLimitError) {
        var terms = 0
        var maxDepth = 0
        try walk(query.filter, depth: 0, terms: &terms, maxDepth: &maxDepth, limits: limits)
        guard terms <= limits.maxTerms else {
            throw SearchLimitError(limit: "max_terms", message: "the query has \(terms) terms; the limit is \(limits.maxTerms)")
        }
        guard maxDepth <= limits.maxDepth else {
            throw SearchLimitError(limit: "max_depth", message: "the query nests \(maxDepth) levels deep; the limit is \(limits.maxDepth)")
        }
    }

    static func walk(_ node: QueryNode, depth: Int, terms: inout Int, maxDepth: inout Int, limits: SearchLimits) throws(SearchLimitError) {
        maxDepth = max(maxDepth, depth)
        switch node {
        case .all:
            break
        case .text(let match):
            terms += 1
            if case .prefix(let prefix) = match { try checkWildcard(prefix, limits: limits) }
        case .field(_, let predicate):
            terms += 1
            if case .prefix(let prefix) = predicate { try checkWildcard(prefix, limits: limits) }
        case .exists:
            terms += 1
        case .and(let nodes), .or(let nodes):
            for child in nodes { try walk(child, depth: depth + 1, terms: &terms, maxDepth: &maxDepth, limits: limits) }
        case .not(let inner):
            try walk(inner, depth: depth + 1, terms: &terms, maxDepth: &maxDepth, limits: limits)
        }
    }

    static func checkWildcard(_ prefix: String, limits: SearchLimits) throws(SearchLimitError) {
        guard prefix.count >= limits.minWildcardPrefix else {
            throw SearchLimitError(limit: "min_wildcard_prefix",
                                   message: "'\(prefix.prefix(32))*' has \(prefix.count) characters before '*'; at least \(limits.minWildcardPrefix) are required")
        }
    }
}
