import VigilCore

/// A parsed search: a filter over events, then pipe stages (`| stats ...`, `| sort ...`).
///
/// Queries are data, never SQL: each store's planner turns them into its own dialect, and
/// the tenant and time bounds come from the authenticated request, not from the query.
public struct Query: Sendable, Equatable {
    public var filter: QueryNode
    public var stages: [Stage]

    public init(filter: QueryNode, stages: [Stage] = []) {
        self.filter = filter
        self.stages = stages
    }

    /// The aggregation stage (`stats` or `timechart`), if the query has one.
    public var aggregation: Aggregation? {
        for stage in stages {
            if case .stats(let aggregation) = stage { return aggregation }
        }
        return nil
    }
}

/// The boolean filter of a query.
public indirect enum QueryNode: Sendable, Equatable {
    /// `*`: every event.
    case all
    /// Free text on the token index of `message`.
    case text(TextMatch)
    /// A predicate on one field.
    case field(String, FieldPredicate)
    /// `_exists_:field`.
    case exists(String)
    case and([QueryNode])
    case or([QueryNode])
    case not(QueryNode)

    /// Every free-text leaf that is not under a `NOT`: what highlighting marks.
    public var positiveText: [TextMatch] {
        switch self {
        case .text(let match): return [match]
        case .and(let nodes), .or(let nodes): return nodes.flatMap(\.positiveText)
        case .all, .field, .exists, .not: return []
        }
    }
}

/// A free-text match: tokens as the index splits them (case and diacritics folded).
public enum TextMatch: Sendable, Equatable {
    /// `failed`: every token of the term, in order.
    case term(String)
    /// `"failed password"`: the tokens in this order.
    case phrase(String)
    /// `pass*`: a token starting with this.
    case prefix(String)

    public var text: String {
        switch self {
        case .term(let text), .phrase(let text), .prefix(let text): return text
        }
    }
}

public enum FieldPredicate: Sendable, Equatable {
    /// `field:value`, `field:"a value"`: exact (numbers also match their JSON number).
    case equals(String)
    /// `field:val*`: starts with (case-sensitive).
    case prefix(String)
    /// `field:[a TO b]`, `field:{a TO b}`, `field>=a`: a nil bound is open.
    case range(lower: RangeBound?, upper: RangeBound?)
    /// `source.ip:10.0.0.0/8`.
    case cidr(IPNetwork)
}

public struct RangeBound: Sendable, Equatable {
    public var value: String
    public var inclusive: Bool

    public init(_ value: String, inclusive: Bool) {
        self.value = value
        self.inclusive = inclusive
    }
}

/// A pipe stage.
public enum Stage: Sendable, Equatable {
    /// `stats ...` and `timechart ...`.
    case stats(Aggregation)
    /// `sort f [desc], g [asc]`.
    case sort([SortKey])
    /// `head N`.
    case head(Int)
    /// `fields a, b`.
    case fields([String])
}

public struct SortKey: Sendable, Equatable {
    public var field: String
    public var descending: Bool

    public init(_ field: String, descending: Bool) {
        self.field = field
        self.descending = descending
    }
}

/// `stats count(), dc(f) by a, b` or `timechart span=1m count() by f`.
public struct Aggregation: Sendable, Equatable {
    public var functions: [AggregateFunction]
    public var groupBy: [String]
    /// Set for `timechart`: buckets of `@timestamp` this wide, in milliseconds.
    public var span: Int64?

    public init(functions: [AggregateFunction], groupBy: [String], span: Int64? = nil) {
        self.functions = functions
        self.groupBy = groupBy
        self.span = span
    }

    /// Column names of the answer, in order: `_time` (timechart), the group fields, the functions.
    public var columns: [String] {
        (span == nil ? [] : ["_time"]) + groupBy + functions.map(\.name)
    }
}

public enum AggregateFunction: Sendable, Equatable {
    case count
    case distinctCount(String)
    case sum(String)
    case avg(String)
    case min(String)
    case max(String)

    public var name: String {
        switch self {
        case .count: return "count()"
        case .distinctCount(let field): return "dc(\(field))"
        case .sum(let field): return "sum(\(field))"
        case .avg(let field): return "avg(\(field))"
        case .min(let field): return "min(\(field))"
        case .max(let field): return "max(\(field))"
        }
    }

    public var field: String? {
        switch self {
        case .count: return nil
        case .distinctCount(let f), .sum(let f), .avg(let f), .min(let f), .max(let f): return f
        }
    }
}

/// An error in a query, naming where it happened and what was expected.
public struct QuerySyntaxError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Byte offset into the query text.
    public var offset: Int
    public var expected: String

    public init(offset: Int, expected: String) {
        self.offset = offset
        self.expected = expected
    }

    public var description: String { "query syntax error at offset \(offset): expected \(expected)" }
}
