import VigilCore
import VigilQuery
import VigilStorage

/// What `SQLiteDialect.filter` selects, worked out in memory on an event's fields as admission
/// has them (before they are encoded): per-event native rules match this way as events are
/// admitted, without waiting for their window.
///
/// The answer follows SQL's own three-valued logic leaf by leaf (a missing field compares as
/// NULL, `NOT NULL` is still NULL, `json_extract` gives integers for booleans, text compares
/// by bytes), on the values the store would have: the columns `IndexedColumns` extracts, the
/// document's other fields, the message's tokens. Where it cannot be sure of SQLite's answer
/// (a non-ASCII message or term, whose folding is SQLite's; real numbers; objects compared as
/// JSON text; duplicate keys; paths into what the stored document leaves out) a leaf is
/// `unsure`, and an event is matched only when the whole filter is certainly true. The
/// scheduler still reads each window with the query, so an event left unmatched here alerts
/// then; one matched here never alerts where the store's query would not.
struct SQLiteEventPredicate {
    /// SQL's truth values, and one for "SQLite may say either".
    enum Truth: Equatable {
        case yes, no, null, unsure

        static prefix func ! (value: Truth) -> Truth {
            switch value {
            case .yes: return .no
            case .no: return .yes
            case .null, .unsure: return value
            }
        }
    }

    let filter: QueryNode

    /// Nil for a query the store refuses (a field name it does not allow, text without tokens)
    /// or one with pipe stages.
    init?(_ query: Query) {
        guard query.stages.isEmpty, (try? SQLiteDialect().filter(query.filter)) != nil else { return nil }
        filter = query.filter
    }

    func matches(_ fields: JSONObject) -> Bool {
        evaluate(fields) == .yes
    }

    func evaluate(_ fields: JSONObject) -> Truth {
        Self.truth(filter, Subject(fields))
    }

    /// An event as the store would hold it, read as far as the filters need: one per event,
    /// shared by every filter evaluated on it.
    final class Subject {
        let fields: JSONObject
        /// The columns `IndexedColumns` extracts.
        private(set) lazy var columns = IndexedColumns(.object(fields))
        /// Whether `message` is certain: the top level has at most one `message` key.
        let messageKnown: Bool
        /// `message` when it is a string (the store keeps it apart from the document).
        let message: String?
        /// The message's tokens as the token index folds them; nil when it is not ASCII (the
        /// index's folding of other scripts is SQLite's own) or absent.
        private(set) lazy var tokens: [String]? = {
            guard let message, messageKnown, message.utf8.allSatisfy({ $0 < 0x80 }) else { return nil }
            return FullTextTokens.tokens(of: message).map { $0.lowercased() }
        }()

        init(_ fields: JSONObject) {
            self.fields = fields
            var found: JSONValue?
            var count = 0
            for member in fields.members where member.key == "message" {
                count += 1
                if found == nil { found = member.value }
            }
            messageKnown = count <= 1
            if case .string(let text)? = found { message = text } else { message = nil }
        }
    }

    static func truth(_ node: QueryNode, _ subject: Subject) -> Truth {
        switch node {
        case .all:
            return .yes
        case .text(let match):
            return text(match, subject)
        case .field(let field, let predicate):
            return Self.field(field, predicate, subject)
        case .exists(let field):
            return exists(field, subject)
        case .not(let inner):
            return !truth(inner, subject)
        case .and(let nodes):
            var result = Truth.yes
            for child in nodes {
                switch truth(child, subject) {
                case .no: return .no
                case .unsure: result = .unsure
                case .null: if result == .yes { result = .null }
                case .yes: break
                }
            }
            return result
        case .or(let nodes):
            var result = Truth.no
            for child in nodes {
                switch truth(child, subject) {
                case .yes: return .yes
                case .unsure: result = .unsure
                case .null: if result == .no { result = .null }
                case .no: break
                }
            }
            return result
        }
    }

    // MARK: - Free text

    /// A free-text leaf: true or false in SQL (the token index, and `vigil_phrase` on the
    /// message for several tokens).
    static func text(_ match: TextMatch, _ subject: Subject) -> Truth {
        guard match.text.utf8.allSatisfy({ $0 < 0x80 }) else { return .unsure }
        let phrase = FullTextTokens.tokens(of: match.text).map { $0.lowercased() }
        guard !phrase.isEmpty else { return .unsure }
        let prefix = SQLiteDialect.isPrefix(match)
        // The index also holds each event's addresses as marker tokens (`fieldToken`): a term
        // that could meet one is left to the store.
        for (i, token) in phrase.enumerated() {
            for marker in [SQLiteDialect.sourceAddressMarker, SQLiteDialect.destinationAddressMarker] {
                if token.hasPrefix(marker) || (prefix && i == phrase.count - 1 && marker.hasPrefix(token)) { return .unsure }
            }
        }
        guard subject.messageKnown else { return .unsure }
        guard let tokens = subject.tokens else { return subject.message == nil ? .no : .unsure }
        return FullTextTokens.phraseStarts(in: tokens, phrase: phrase, prefix: prefix, first: true).isEmpty ? .no : .yes
    }

    // MARK: - Values

    /// A field's value as the SQL expression of `SQLiteDialect.value(of:)` gives it.
    enum Value {
        /// SQL NULL: a missing field, a JSON null, an absent column.
        case null
        /// A JSON null in the document (`json_type` says 'null'; the value is NULL too).
        case jsonNull
        case text(String)
        case int(Int64)
        /// A JSON boolean in the document: `json_extract` gives 1 or 0.
        case bool(Bool)
        /// An array in the document (its JSON text in SQL).
        case array([JSONValue])
        /// What the predicate cannot follow exactly (reals, objects, duplicate keys...).
        case unsure
    }

    static func columnValue(_ column: String, _ subject: Subject) -> Value {
        let c = subject.columns
        let text: String?
        switch column {
        case "source_port": return c.sourcePort.map(Value.int) ?? .null
        case "destination_port": return c.destinationPort.map(Value.int) ?? .null
        case "dataset": text = c.dataset
        case "host_name": text = c.hostName
        case "source_ip": text = c.sourceIP
        case "destination_ip": text = c.destinationIP
        case "network_transport": text = c.networkTransport
        case "user_name": text = c.userName
        case "event_action": text = c.eventAction
        case "event_outcome": text = c.eventOutcome
        case "observer_vendor": text = c.observerVendor
        case "message":
            guard subject.messageKnown else { return .unsure }
            text = subject.message
        default: return .unsure  // `ts`
        }
        guard let text else { return .null }
        return text.utf8.contains(0) ? .unsure : .text(text)
    }

    /// A field of the stored document (`json_extract(vigil_doc(body), path)`).
    static func documentValue(_ field: String, _ subject: Subject) -> Value {
        let parts = field.split(separator: ".")  // as `SQLiteDialect.jsonPath` splits it
        guard let first = parts.first, first != "message" else { return .unsure }
        // The document leaves the columns' fields out (and keeps their objects): a path to a
        // column or to an object holding one reads something else there.
        for name in IndexedColumns.fieldNames {
            let columnParts = name.split(separator: ".")
            if parts.count <= columnParts.count, zip(parts, columnParts).allSatisfy({ $0 == $1 }) { return .unsure }
        }
        var current = JSONValue.object(subject.fields)
        for part in parts {
            guard case .object(let object) = current else { return .null }
            var found: JSONValue?
            for member in object.members where member.key == part {
                guard found == nil else { return .unsure }
                found = member.value
            }
            guard let found else { return .null }
            current = found
        }
        switch current {
        case .null: return .jsonNull
        case .string(let text): return text.utf8.contains(0) ? .unsure : .text(text)
        case .int(let value): return .int(value)
        case .bool(let value): return .bool(value)
        case .array(let items): return .array(items)
        case .double, .object: return .unsure
        }
    }

    static func value(_ field: String, _ subject: Subject) -> Value {
        if let column = SQLiteDialect.columns[field] { return columnValue(column, subject) }
        return documentValue(field, subject)
    }

    static func equalBytes(_ a: String, _ b: String) -> Bool { a.utf8.elementsEqual(b.utf8) }

    /// Whether SQLite could take this query value for an object's or array's JSON text.
    static func looksLikeJSONText(_ value: String) -> Bool { value.hasPrefix("{") || value.hasPrefix("[") }

    // MARK: - Field predicates

    static func field(_ field: String, _ predicate: FieldPredicate, _ subject: Subject) -> Truth {
        guard field != FieldName.timestamp else { return .unsure }
        switch predicate {
        case .equals(let wanted):
            if let column = SQLiteDialect.columns[field] { return columnEquals(column, wanted, subject) }
            return documentEquals(documentValue(field, subject), wanted)
        case .prefix(let prefix):
            let text: String
            switch value(field, subject) {
            case .text(let value): text = value
            case .int(let value): text = String(value)
            case .bool(let value): text = value ? "1" : "0"
            case .null, .jsonNull: return .null
            case .array, .unsure: return .unsure
            }
            let count = prefix.unicodeScalars.count
            return String(String.UnicodeScalarView(text.unicodeScalars.prefix(count))).utf8.elementsEqual(prefix.utf8) ? .yes : .no
        case .range(let lower, let upper):
            return range(value(field, subject), lower: lower, upper: upper)
        case .cidr(let network):
            return cidr(value(field, subject), network)
        }
    }

    static func columnEquals(_ column: String, _ wanted: String, _ subject: Subject) -> Truth {
        if SQLiteDialect.integerColumns.contains(column) {
            guard let number = Int64(wanted) else { return .unsure }  // text against an INTEGER column: affinity
            guard case .int(let value) = columnValue(column, subject) else { return .null }
            return value == number ? .yes : .no
        }
        let value = columnValue(column, subject)
        if let marker = SQLiteDialect.tokenColumns[column] {
            // `event.id IN (token index MATCH token) AND column = value`: an event without an
            // address has the token only if its message holds it literally.
            switch value {
            case .text(let text): return equalBytes(text, wanted) ? .yes : .no
            case .null:
                guard subject.messageKnown else { return .unsure }
                guard let tokens = subject.tokens else { return subject.message == nil ? .no : .unsure }
                return tokens.contains(SQLiteDialect.fieldToken(marker, wanted)) ? .null : .no
            default: return .unsure
            }
        }
        switch value {
        case .text(let text): return equalBytes(text, wanted) ? .yes : .no
        case .null: return .null
        default: return .unsure
        }
    }

    /// `field:value` on the document: the dialect's four ways of being equal, OR'ed.
    static func documentEquals(_ value: Value, _ wanted: String) -> Truth {
        if case .unsure = value { return .unsure }
        var options: [Truth] = []
        // json_extract(...) = 'wanted'
        switch value {
        case .text(let text): options.append(equalBytes(text, wanted) ? .yes : .no)
        case .int, .bool: options.append(.no)
        case .null, .jsonNull: options.append(.null)
        case .array: options.append(looksLikeJSONText(wanted) ? .unsure : .no)
        case .unsure: return .unsure
        }
        // json_extract(...) = number
        if let number = SQLiteDialect.number(wanted) {
            switch (value, number) {
            case (.text, _), (.array, _): options.append(.no)
            case (.null, _), (.jsonNull, _): options.append(.null)
            case (.int(let a), .int(let b)): options.append(a == b ? .yes : .no)
            case (.bool(let a), .int(let b)): options.append((a ? 1 : 0) == b ? .yes : .no)
            default: options.append(.unsure)
            }
        }
        // json_type(...) = 'true' / 'false'
        if wanted == "true" || wanted == "false" {
            switch value {
            case .null: options.append(.null)  // no such path: json_type is NULL
            case .bool(let flag): options.append((flag ? "true" : "false") == wanted ? .yes : .no)
            default: options.append(.no)
            }
        }
        // json_type(...) = 'array' AND EXISTS (an element = 'wanted'): false, not NULL, without one.
        if case .array(let items) = value {
            var element = Truth.no
            for item in items {
                switch item {
                case .string(let text):
                    if text.utf8.contains(0) { element = .unsure } else if equalBytes(text, wanted) { return .yes }
                case .object, .array:
                    if looksLikeJSONText(wanted) { element = .unsure }
                case .double:
                    element = .unsure
                case .null, .bool, .int:
                    break
                }
            }
            options.append(element)
        } else {
            options.append(.no)
        }
        var result = Truth.no
        for option in options {
            switch option {
            case .yes: return .yes
            case .unsure: result = .unsure
            case .null: if result == .no { result = .null }
            case .no: break
            }
        }
        return result
    }

    /// `typeof(value) IN ('integer', 'real')` (or `= 'text'`) AND the bounds.
    static func range(_ value: Value, lower: RangeBound?, upper: RangeBound?) -> Truth {
        let bounds = [lower, upper].compactMap { $0 }
        let numeric = bounds.allSatisfy { SQLiteDialect.number($0.value) != nil }
        if numeric {
            let number: Int64
            switch value {
            case .int(let value): number = value
            case .bool(let value): number = value ? 1 : 0
            case .text, .array, .null, .jsonNull: return .no
            case .unsure: return .unsure
            }
            func bound(_ bound: RangeBound?) -> Int64?? {
                guard let bound else { return .some(nil) }
                guard case .int(let limit)? = SQLiteDialect.number(bound.value) else { return nil }  // a real bound
                return .some(limit)
            }
            guard let low = bound(lower), let high = bound(upper) else { return .unsure }
            if let low, let lower { guard lower.inclusive ? number >= low : number > low else { return .no } }
            if let high, let upper { guard upper.inclusive ? number <= high : number < high else { return .no } }
            return .yes
        }
        let text: String
        switch value {
        case .text(let value): text = value
        case .int, .bool, .null, .jsonNull: return .no
        case .array, .unsure: return .unsure
        }
        // BINARY collation: bytes, a shorter prefix first.
        func less(_ a: String, _ b: String) -> Bool { a.utf8.lexicographicallyPrecedes(b.utf8) }
        if let lower {
            guard lower.inclusive ? !less(text, lower.value) : less(lower.value, text) else { return .no }
        }
        if let upper {
            guard upper.inclusive ? !less(upper.value, text) : less(text, upper.value) else { return .no }
        }
        return .yes
    }

    /// `vigil_cidr(value, block)`, after the dialect's text prefix of an IPv4 block's octets.
    static func cidr(_ value: Value, _ network: IPNetwork) -> Truth {
        let text: String
        switch value {
        case .text(let value): text = value
        case .null, .jsonNull: return .no  // vigil_cidr(NULL) is false
        case .int, .bool, .array, .unsure: return .unsure
        }
        guard let block = IPNetwork(network.description), block.contains(text: text) else { return .no }
        let octets = network.address.isIPv4 ? min(3, (network.prefixBits - 96) / 8) : 0
        guard octets > 0 else { return .yes }
        let prefix = network.address.bytes[12..<(12 + octets)].map(String.init).joined(separator: ".") + "."
        let head = String(String.UnicodeScalarView(text.unicodeScalars.prefix(prefix.utf8.count)))
        return head.utf8.elementsEqual(prefix.utf8) || text.utf8.contains(UInt8(ascii: ":")) ? .yes : .no
    }

    // MARK: - Exists

    static func exists(_ field: String, _ subject: Subject) -> Truth {
        if let column = SQLiteDialect.columns[field] {
            switch columnValue(column, subject) {
            case .null: return .no
            case .unsure: return .unsure
            default: return .yes
            }
        }
        // json_type(...) <> 'null': NULL when there is no such path.
        switch documentValue(field, subject) {
        case .null: return .null
        case .jsonNull: return .no
        case .unsure: return .unsure
        default: return .yes
        }
    }
}

/// The filters of several queries (a tenant's per-event native rules) on one event.
struct SQLiteEventPredicates: EventPredicates {
    /// Nil for a query the store refuses: it never matches here.
    let predicates: [SQLiteEventPredicate?]

    func matching(_ fields: JSONObject) -> [Int] {
        let subject = SQLiteEventPredicate.Subject(fields)
        var matched: [Int] = []
        for (index, predicate) in predicates.enumerated() {
            if let predicate, SQLiteEventPredicate.truth(predicate.filter, subject) == .yes { matched.append(index) }
        }
        return matched
    }
}

extension SQLiteEventStore {
    public func eventPredicates(for queries: [Query]) -> (any EventPredicates)? {
        SQLiteEventPredicates(predicates: queries.map(SQLiteEventPredicate.init))
    }
}
