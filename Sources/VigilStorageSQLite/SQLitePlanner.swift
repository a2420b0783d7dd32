import Foundation
import GRDB
import VigilStorage
import VigilCore
import VigilQuery


/// Turns a query AST into a SQL predicate over the `event` table. Every value is a bound
/// parameter; field names are checked against a strict alphabet and become JSON paths that
/// are bound too, so no query text is ever spliced into SQL.
enum SQLitePlanner {
    struct Plan: Sendable {
        var sql: String
        var arguments: [DatabaseValue]

        init(sql: String, arguments: [any DatabaseValueConvertible]) {
            self.sql = sql
            self.arguments = arguments.map(\.databaseValue)
        }

        init(sql: String, values: [DatabaseValue]) {
            self.sql = sql
            self.arguments = values
        }
    }

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
    ]

    static func plan(_ node: QueryNode) throws -> Plan {
        switch node {
        case .all:
            return Plan(sql: "1", arguments: [])
        case .term(let text), .phrase(let text):
            // An FTS5 string: double quotes escaped by doubling. A phrase keeps word order.
            let quoted = "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
            return Plan(sql: "id IN (SELECT rowid FROM event_fts WHERE event_fts MATCH ?)", arguments: [quoted])
        case .fieldEquals(let field, let value):
            guard isValidFieldName(field) else {
                throw QueryRefusal(message: "field name '\(field.prefix(64))' is not allowed: use letters, digits, '_', '-', '@' and '.'")
            }
            if let column = columns[field] {
                if let number = Int64(value) {
                    return Plan(sql: "(\(column) = ? OR \(column) = ?)", arguments: [value, number])
                }
                return Plan(sql: "\(column) = ?", arguments: [value])
            }
            let path = "$." + field.split(separator: ".").map { "\"\($0)\"" }.joined(separator: ".")
            if let number = Double(value), value.allSatisfy({ $0.isNumber || $0 == "." || $0 == "-" }) {
                return Plan(sql: "(json_extract(doc, ?) = ? OR json_extract(doc, ?) = ?)", arguments: [path, value, path, number])
            }
            if value == "true" || value == "false" {
                return Plan(sql: "(json_extract(doc, ?) = ? OR (json_type(doc, ?) = ?))", arguments: [path, value, path, value])
            }
            return Plan(sql: "json_extract(doc, ?) = ?", arguments: [path, value])
        case .and(let nodes):
            let plans = try nodes.map(plan)
            guard !plans.isEmpty else { return Plan(sql: "1", arguments: []) }
            return Plan(sql: plans.map { "(\($0.sql))" }.joined(separator: " AND "), values: plans.flatMap(\.arguments))
        }
    }

    static func isValidFieldName(_ field: String) -> Bool {
        guard (1...128).contains(field.utf8.count), !field.hasPrefix("."), !field.hasSuffix("."), !field.contains("..") else { return false }
        return field.utf8.allSatisfy { b in
            (b >= 0x61 && b <= 0x7A) || (b >= 0x41 && b <= 0x5A) || (b >= 0x30 && b <= 0x39)
                || b == UInt8(ascii: "_") || b == UInt8(ascii: "-") || b == UInt8(ascii: "@") || b == UInt8(ascii: ".")
        }
    }
}
