import VigilCore
import VigilQuery

/// A value bound to a statement parameter. Query text only ever reaches SQL as these.
public enum SQLValue: Sendable, Equatable {
    case null
    case int(Int64)
    case double(Double)
    case text(String)
    case blob([UInt8])
}

/// A piece of SQL and the values of its `?` parameters, in order.
public struct SQLFragment: Sendable, Equatable {
    public var sql: String
    public var arguments: [SQLValue]

    public init(_ sql: String, _ arguments: [SQLValue] = []) {
        self.sql = sql
        self.arguments = arguments
    }

    public static let alwaysTrue = SQLFragment("1")

    /// Joins fragments with a separator, keeping argument order.
    public static func join(_ parts: [SQLFragment], separator: String, wrap: Bool = true) -> SQLFragment {
        SQLFragment(parts.map { wrap ? "(\($0.sql))" : $0.sql }.joined(separator: separator), parts.flatMap(\.arguments))
    }

    public static func + (lhs: SQLFragment, rhs: SQLFragment) -> SQLFragment {
        SQLFragment(lhs.sql + rhs.sql, lhs.arguments + rhs.arguments)
    }
}

/// How one backend spells the leaves of the query language. The boolean structure is shared
/// (`filter(_:)`); each store (SQLite today, ClickHouse with scale-out) supplies the leaves.
/// A dialect never sees the tenant or the time range: the store adds those around the filter.
public protocol SQLDialect: Sendable {
    /// The value of a field: its column, or a lookup in the stored document.
    func value(of field: String) throws(QueryRefusal) -> SQLFragment
    /// Free-text matches on the token index; `all` joins them with AND, else OR.
    func text(_ matches: [TextMatch], all: Bool) throws(QueryRefusal) -> SQLFragment
    func field(_ field: String, _ predicate: FieldPredicate) throws(QueryRefusal) -> SQLFragment
    func exists(_ field: String) throws(QueryRefusal) -> SQLFragment
}

extension SQLDialect {
    /// The filter as one SQL predicate. Free-text leaves that sit side by side under one AND
    /// or OR go to the token index together, as one match expression.
    public func filter(_ node: QueryNode) throws(QueryRefusal) -> SQLFragment {
        switch node {
        case .all:
            return .alwaysTrue
        case .text(let match):
            return try text([match], all: true)
        case .field(let field, let predicate):
            return try self.field(field, predicate)
        case .exists(let field):
            return try exists(field)
        case .not(let inner):
            return SQLFragment("NOT (") + (try filter(inner)) + SQLFragment(")")
        case .and(let nodes), .or(let nodes):
            let isAnd: Bool
            if case .and = node { isAnd = true } else { isAnd = false }
            var texts: [TextMatch] = []
            var parts: [SQLFragment] = []
            for child in nodes {
                if case .text(let match) = child { texts.append(match) } else { parts.append(try filter(child)) }
            }
            if !texts.isEmpty { parts.insert(try text(texts, all: isAnd), at: 0) }
            return SQLFragment.join(parts, separator: isAnd ? " AND " : " OR ")
        }
    }
}
