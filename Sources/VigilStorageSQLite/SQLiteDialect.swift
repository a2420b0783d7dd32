import Foundation
import VigilCore
import VigilQuery
import VigilStorage

/// The query language in SQLite: ECS columns where the field has one, `json_extract` on the
/// stored document otherwise, FTS5 for free text, and `vigil_cidr` for CIDR blocks. Field
/// names are checked against a strict alphabet and JSON paths are bound, so no query text is
/// ever spliced into SQL.
struct SQLiteDialect: SQLDialect {
    /// ECS fields that have their own column.
    static let columns: [String: String] = [
        "event.dataset": "dataset",
        "host.name": "host_name",
        "source.ip": "source_ip",
        "source.port": "source_port",
        "destination.ip": "destination_ip",
        "destination.port": "destination_port",
        "network.transport": "network_transport",
        "user.name": "user_name",
        "event.action": "event_action",
        "event.outcome": "event_outcome",
        "observer.vendor": "observer_vendor",
        "message": "message",
        FieldName.timestamp: "ts",
    ]

    static let integerColumns: Set<String> = ["source_port", "destination_port", "ts"]

    /// Columns found through the token index instead of an index of their own (v6): each
    /// event's value is one token of its row in `event_fts` (`fieldToken`). Addresses are
    /// nearly unique per event, so a B-tree over them took a page write per event all over
    /// the index, and with a million events in a day that cost the writer more than the rest
    /// of the row; the token index writes a batch's tokens as one sorted segment.
    static let tokenColumns: [String: String] = ["source_ip": sourceAddressMarker, "destination_ip": destinationAddressMarker]
    static let sourceAddressMarker = "vsip"
    static let destinationAddressMarker = "vdip"

    /// The token standing for a column's value: the column's marker and the value's UTF-8
    /// bytes in hex (one token whatever the value holds; the tokenizer would cut `10.1.2.3`
    /// into four). The partition migration builds the same with `lower(hex(value))`.
    static func fieldToken(_ marker: String, _ value: String) -> String {
        Hex.string(prefix: marker, value.utf8)
    }

    /// A token column's equality as an FTS5 expression and the check of the column itself;
    /// nil for other nodes.
    static func fieldTokenMatch(_ node: QueryNode) -> (expression: String, check: SQLFragment)? {
        guard case .field(let field, .equals(let value)) = node, let column = columns[field], let marker = tokenColumns[column] else { return nil }
        return ("\"" + fieldToken(marker, value) + "\"", SQLFragment("event.\(column) = ?", [.text(value)]))
    }

    /// Columns that hold `term` ids (`TermTable`): read through `vigil_term`.
    static let termColumns: Set<String> = ["dataset", "host_name", "network_transport", "event_action", "event_outcome", "observer_vendor"]

    static func checked(_ field: String) throws(QueryRefusal) -> String {
        guard FieldName.isValid(field) else {
            throw QueryRefusal(message: "field name '\(field.prefix(64))' is not allowed: use letters, digits, '_', '-', '@' and '.'")
        }
        return field
    }

    static func jsonPath(_ field: String) -> String {
        "$." + field.split(separator: ".").map { "\"\($0)\"" }.joined(separator: ".")
    }

    /// The stored document (without `message` and the column fields), as JSON text.
    static let document = "vigil_doc(event.body)"
    static let message = "vigil_message(event.body)"

    func value(of field: String) throws(QueryRefusal) -> SQLFragment {
        let field = try Self.checked(field)
        if field == "message" { return SQLFragment(Self.message) }
        if let column = Self.columns[field] {
            return SQLFragment(Self.termColumns.contains(column) ? "vigil_term(event.\(column))" : "event.\(column)")
        }
        return SQLFragment("json_extract(\(Self.document), ?)", [.text(Self.jsonPath(field))])
    }

    // MARK: - Free text
    //
    // The token index keeps which events hold each token, not where (`detail=none`: a third
    // of the size). A match of one token is answered by the index alone. A match of several
    // tokens (`"failed password"`, or a term like `10.1.2.3`, which is four tokens) asks the
    // index for events with all of them, a superset, and `vigil_phrase` then checks on the
    // message that they stand in order.

    static func tokens(_ match: TextMatch) throws(QueryRefusal) -> [Substring] {
        let tokens = FullTextTokens.tokens(of: match.text)
        guard !tokens.isEmpty else {
            throw QueryRefusal(message: "'\(match.text.prefix(64))' has no letters or digits to search for in the token index; search a field with field:\"value\" instead")
        }
        return tokens
    }

    static func isPrefix(_ match: TextMatch) -> Bool {
        if case .prefix = match { return true }
        return false
    }

    /// True when the token index answers the match exactly (one token).
    static func isExact(_ match: TextMatch) -> Bool {
        FullTextTokens.tokens(of: match.text).count <= 1
    }

    static func isExact(_ node: QueryNode) -> Bool {
        switch node {
        case .text(let match): return isExact(match)
        case .and(let nodes), .or(let nodes): return nodes.allSatisfy(isExact)
        case .not(let inner): return isExact(inner)
        case .all, .field, .exists: return true
        }
    }

    /// An FTS5 expression for the events that hold every token of the match (exactly the
    /// match when it is one token); the last token of a prefix match gets FTS5's `*`.
    static func ftsExpression(_ match: TextMatch) throws(QueryRefusal) -> String {
        let tokens = try tokens(match)
        var parts = tokens.map { "\"" + $0.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }
        if isPrefix(match) { parts[parts.count - 1] += " *" }
        return parts.count == 1 ? parts[0] : "(" + parts.joined(separator: " AND ") + ")"
    }

    /// The exact check of a free-text subtree on each row's message (every leaf through
    /// `vigil_phrase`), for subtrees the token index answers only as a superset.
    static func exactText(_ node: QueryNode) throws(QueryRefusal) -> SQLFragment {
        switch node {
        case .text(let match):
            let folded = try tokens(match).map { FullTextTokens.fold($0) }.joined(separator: FullTextTokens.separator)
            return SQLFragment("vigil_phrase(\(message), ?, ?)", [.text(folded), .int(isPrefix(match) ? 1 : 0)])
        case .and(let nodes), .or(let nodes):
            var parts: [SQLFragment] = []
            for child in nodes { parts.append(try exactText(child)) }
            if case .and = node { return SQLFragment.join(parts, separator: " AND ") }
            return SQLFragment.join(parts, separator: " OR ")
        case .not(let inner):
            return SQLFragment("NOT (") + (try exactText(inner)) + SQLFragment(")")
        case .all, .field, .exists:
            return .alwaysTrue
        }
    }

    static func ftsExpression(_ matches: [TextMatch], all: Bool) throws(QueryRefusal) -> String {
        var parts: [String] = []
        for match in matches { parts.append(try ftsExpression(match)) }
        return parts.joined(separator: all ? " AND " : " OR ")
    }

    /// The whole of `node` as one FTS5 expression when it is made only of free text (terms
    /// under AND, OR, and NOT beside a positive term), else nil. Such a subtree is answered by
    /// the token index alone: `(failed OR deny) AND NOT root` is one doclist walk. The
    /// expression matches a superset of the subtree when it holds several-token matches
    /// (`isExact` is false): a NOT of such a match is left out of it, and `exactText` then
    /// decides per row.
    static func ftsExpression(_ node: QueryNode) throws(QueryRefusal) -> String? {
        switch node {
        case .text(let match):
            return try ftsExpression(match)
        case .or(let nodes):
            var parts: [String] = []
            for child in nodes {
                guard let part = try ftsExpression(child) else { return nil }
                parts.append(part)
            }
            return "(" + parts.joined(separator: " OR ") + ")"
        case .and(let nodes):
            var positives: [String] = [], negatives: [String] = []
            for child in nodes {
                if case .not(let inner) = child {
                    guard let part = try ftsExpression(inner) else { return nil }
                    if isExact(inner) { negatives.append(part) }
                } else {
                    guard let part = try ftsExpression(child) else { return nil }
                    positives.append(part)
                }
            }
            guard !positives.isEmpty else { return nil }
            return "(" + positives.joined(separator: " AND ") + ")" + negatives.map { " NOT " + $0 }.joined()
        case .all, .field, .exists, .not:
            return nil
        }
    }

    func text(_ matches: [TextMatch], all: Bool) throws(QueryRefusal) -> SQLFragment {
        let indexed = SQLFragment("event.id IN (SELECT rowid FROM event_fts WHERE event_fts MATCH ?)", [.text(try Self.ftsExpression(matches, all: all))])
        guard !matches.allSatisfy(Self.isExact) else { return indexed }
        let nodes = matches.map(QueryNode.text)
        return indexed + SQLFragment(" AND ") + (try Self.exactText(all ? .and(nodes) : .or(nodes)))
    }

    func field(_ field: String, _ predicate: FieldPredicate) throws(QueryRefusal) -> SQLFragment {
        let expression = try value(of: field)
        let isTimestamp = field == FieldName.timestamp
        switch predicate {
        case .equals(let value):
            if isTimestamp { return expression + SQLFragment(" = ?", [.int(try Self.time(value))]) }
            if let column = Self.columns[field] {
                if let number = Int64(value), Self.integerColumns.contains(column) {
                    return expression + SQLFragment(" = ?", [.int(number)])
                }
                // The value's id, or its text when the partition has no id for it (past the
                // term table's capacity): one probe of the column's index, in row order.
                if Self.termColumns.contains(column) {
                    return SQLFragment("event.\(column) = coalesce(vigil_term_id(?), ?)", [.text(value), .text(value)])
                }
                if let match = Self.fieldTokenMatch(.field(field, predicate)) {
                    return SQLFragment("(event.id IN (SELECT rowid FROM event_fts WHERE event_fts MATCH ?) AND ", [.text(match.expression)])
                        + match.check + SQLFragment(")")
                }
                return expression + SQLFragment(" = ?", [.text(value)])
            }
            var options = [expression + SQLFragment(" = ?", [.text(value)])]
            if let number = Self.number(value) { options.append(expression + SQLFragment(" = ?", [number])) }
            if value == "true" || value == "false" {
                options.append(SQLFragment("json_type(\(Self.document), ?) = ?", [.text(Self.jsonPath(field)), .text(value)]))
            }
            // Arrays (`tags`, `event.category`, `related.ip`) match when any element does.
            options.append(SQLFragment("(json_type(\(Self.document), ?) = 'array' AND EXISTS (SELECT 1 FROM json_each(\(Self.document), ?) WHERE json_each.value = ?))",
                                       [.text(Self.jsonPath(field)), .text(Self.jsonPath(field)), .text(value)]))
            return SQLFragment("(") + SQLFragment.join(options, separator: " OR ") + SQLFragment(")")
        case .prefix(let prefix):
            let length = Int64(prefix.unicodeScalars.count)
            return SQLFragment("substr(") + expression + SQLFragment(", 1, ?) = ?", [.int(length), .text(prefix)])
        case .range(let lower, let upper):
            let bounds = [lower, upper].compactMap { $0 }
            let numeric: Bool
            var values: [SQLValue] = []
            if isTimestamp {
                numeric = true
                for bound in bounds { values.append(.int(try Self.time(bound.value))) }
            } else if bounds.allSatisfy({ Self.number($0.value) != nil }) {
                numeric = true
                values = bounds.map { Self.number($0.value)! }
            } else {
                numeric = false
                values = bounds.map { .text($0.value) }
            }
            var parts: [SQLFragment] = []
            if !isTimestamp {
                parts.append(SQLFragment("typeof(") + expression + SQLFragment(numeric ? ") IN ('integer', 'real')" : ") = 'text'"))
            }
            var index = 0
            if let lower {
                parts.append(expression + SQLFragment(lower.inclusive ? " >= ?" : " > ?", [values[index]]))
                index += 1
            }
            if let upper {
                parts.append(expression + SQLFragment(upper.inclusive ? " <= ?" : " < ?", [values[index]]))
            }
            return SQLFragment.join(parts, separator: " AND ")
        case .cidr(let network):
            let check = SQLFragment("vigil_cidr(") + expression + SQLFragment(", ?)", [.text(network.description)])
            // An IPv4 block's whole octets are a text prefix of every dotted address inside it:
            // SQLite checks that first, so the exact check runs only on candidates (and on
            // IPv6-form texts like ::ffff:10.1.2.3).
            let octets = network.address.isIPv4 ? min(3, (network.prefixBits - 96) / 8) : 0
            guard octets > 0 else { return check }
            let prefix = network.address.bytes[12..<(12 + octets)].map(String.init).joined(separator: ".") + "."
            return SQLFragment("((substr(") + expression + SQLFragment(", 1, ?) = ? OR instr(", [.int(Int64(prefix.utf8.count)), .text(prefix)])
                + expression + SQLFragment(", ':') > 0) AND ") + check + SQLFragment(")")
        }
    }

    func exists(_ field: String) throws(QueryRefusal) -> SQLFragment {
        let field = try Self.checked(field)
        if field == "message" { return SQLFragment("\(Self.message) IS NOT NULL") }
        if let column = Self.columns[field] { return SQLFragment("event.\(column) IS NOT NULL") }
        return SQLFragment("json_type(\(Self.document), ?) <> 'null'", [.text(Self.jsonPath(field))])
    }

    static func number(_ text: String) -> SQLValue? {
        if let int = Int64(text) { return .int(int) }
        guard let double = Double(text), double.isFinite, text.allSatisfy({ $0.isNumber || $0 == "." || $0 == "-" || $0 == "e" || $0 == "E" || $0 == "+" }) else { return nil }
        return .double(double)
    }

    static func time(_ text: String) throws(QueryRefusal) -> Int64 {
        if let millis = Timestamp.parseRFC3339(text) { return millis }
        if let millis = Int64(text) { return millis }
        throw QueryRefusal(message: "@timestamp values are RFC 3339 times or epoch milliseconds, not '\(text.prefix(64))'")
    }
}
