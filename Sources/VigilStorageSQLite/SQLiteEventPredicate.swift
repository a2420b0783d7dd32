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
///
/// The filter is compiled once (terms tokenized, paths split, numbers and blocks parsed), so
/// an event costs a walk of the tree and a look at the fields it names.
struct SQLiteEventPredicate: Sendable {
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

        /// SQL's AND: false wins whatever the other side is; then "may say either"; then NULL.
        static func && (a: Truth, b: Truth) -> Truth {
            if a == .no || b == .no { return .no }
            if a == .unsure || b == .unsure { return .unsure }
            return a == .null || b == .null ? .null : .yes
        }

        /// SQL's OR: true wins whatever the other side is; then "may say either"; then NULL.
        static func || (a: Truth, b: Truth) -> Truth {
            !(!a && !b)
        }
    }

    /// Where a field's value comes from, as `SQLiteDialect.value(of:)` reads it.
    enum Source: Sendable {
        /// A column (`message` included), by its index in `Column`.
        case column(Column)
        /// A path in the stored document (`json_extract`).
        case document(DocumentPath)
        /// `@timestamp`, or a path into what the stored document leaves out.
        case unknown
    }

    /// A path in the stored document, split as `SQLiteDialect.jsonPath` splits it, and its
    /// parts joined again by dots (what `FlatFields.documentValue(atPath:setting:)` reads),
    /// both made once per query.
    struct DocumentPath: Sendable {
        let parts: [String]
        let dotted: String
    }

    enum Column: Sendable {
        case sourcePort, destinationPort
        case text(TextColumn)
        /// `source.ip` / `destination.ip`: equality also asks the token index for the marker token.
        case address(TextColumn, marker: String)
        case message
    }

    enum TextColumn: Sendable {
        case dataset, hostName, sourceIP, destinationIP, networkTransport, userName, eventAction, eventOutcome, observerVendor

    }

    indirect enum Node: Sendable {
        case constant(Truth)
        /// Free text: the term's folded tokens (ASCII), the last one a prefix with `prefix`.
        case text(phrase: [[UInt8]], prefix: Bool)
        case equalsInteger(Column, Int64)
        case equalsColumn(Column, wanted: String)
        /// An address column's value, or the marker token (`fieldToken`) in the message.
        case equalsAddress(Column, wanted: String, token: [UInt8])
        case equalsDocument(DocumentPath, wanted: String, number: SQLValue?)
        case prefix(Source, String, scalars: Int)
        /// Bounds as the dialect binds them: integers when `numeric` (nil for a real), else text.
        case range(Source, numeric: Bool, lower: RangeBound?, upper: RangeBound?, lowerInt: Int64?, upperInt: Int64?, real: Bool)
        /// The block as `vigil_cidr` parses it back, and the dialect's octet prefix (nil: none).
        case cidr(Source, block: IPNetwork?, octets: String?)
        case exists(Source)
        case not(Node)
        case and([Node])
        case or([Node])
    }

    let root: Node

    /// Nil for a query the store refuses (a field name it does not allow, text without tokens)
    /// or one with pipe stages.
    init?(_ query: Query) {
        guard query.stages.isEmpty, (try? SQLiteDialect().filter(query.filter)) != nil else { return nil }
        root = Self.compile(query.filter)
    }

    func matches(_ fields: JSONObject) -> Bool {
        evaluate(fields) == .yes
    }

    func evaluate(_ fields: JSONObject) -> Truth {
        Self.truth(root, Subject(fields))
    }

    // MARK: - Compiling

    static func compile(_ node: QueryNode) -> Node {
        switch node {
        case .all: return .constant(.yes)
        case .text(let match): return text(match)
        case .field(let field, let predicate): return compile(field, predicate)
        case .exists(let field): return .exists(source(field))
        case .not(let inner): return .not(compile(inner))
        case .and(let nodes): return .and(nodes.map(compile))
        case .or(let nodes): return .or(nodes.map(compile))
        }
    }

    static func text(_ match: TextMatch) -> Node {
        guard match.text.utf8.allSatisfy({ $0 < 0x80 }) else { return .constant(.unsure) }
        let phrase = FullTextTokens.tokens(of: match.text).map { Array($0.lowercased().utf8) }
        guard !phrase.isEmpty else { return .constant(.unsure) }
        let prefix = SQLiteDialect.isPrefix(match)
        // The index also holds each event's addresses as marker tokens (`fieldToken`): a term
        // that could meet one is left to the store.
        for (i, token) in phrase.enumerated() {
            for marker in [SQLiteDialect.sourceAddressMarker, SQLiteDialect.destinationAddressMarker].map({ Array($0.utf8) }) {
                if token.starts(with: marker) || (prefix && i == phrase.count - 1 && marker.starts(with: token)) { return .constant(.unsure) }
            }
        }
        return .text(phrase: phrase, prefix: prefix)
    }

    static func column(_ name: String) -> Column? {
        switch name {
        case "source_port": return .sourcePort
        case "destination_port": return .destinationPort
        case "dataset": return .text(.dataset)
        case "host_name": return .text(.hostName)
        case "source_ip": return .address(.sourceIP, marker: SQLiteDialect.sourceAddressMarker)
        case "destination_ip": return .address(.destinationIP, marker: SQLiteDialect.destinationAddressMarker)
        case "network_transport": return .text(.networkTransport)
        case "user_name": return .text(.userName)
        case "event_action": return .text(.eventAction)
        case "event_outcome": return .text(.eventOutcome)
        case "observer_vendor": return .text(.observerVendor)
        case "message": return .message
        default: return nil  // `ts`
        }
    }

    /// The document leaves the columns' fields out (and keeps their objects): a path to a
    /// column, or to an object holding one, reads something else there.
    static let columnPaths = IndexedColumns.fieldNames.map { $0.split(separator: ".").map(String.init) }

    static func source(_ field: String) -> Source {
        if let name = SQLiteDialect.columns[field] { return column(name).map(Source.column) ?? .unknown }
        let parts = field.split(separator: ".").map(String.init)
        guard let first = parts.first, first != "message" else { return .unknown }
        for path in columnPaths where parts.count <= path.count && zip(parts, path).allSatisfy({ $0 == $1 }) { return .unknown }
        return .document(DocumentPath(parts: parts, dotted: parts.joined(separator: ".")))
    }

    static func compile(_ field: String, _ predicate: FieldPredicate) -> Node {
        guard field != FieldName.timestamp else { return .constant(.unsure) }
        let source = source(field)
        switch predicate {
        case .equals(let wanted):
            switch source {
            case .column(let column):
                switch column {
                case .sourcePort, .destinationPort:
                    // Text against an INTEGER column goes through its affinity: left to SQLite.
                    return Int64(wanted).map { .equalsInteger(column, $0) } ?? .constant(.unsure)
                case .address(_, let marker):
                    return .equalsAddress(column, wanted: wanted, token: Array(SQLiteDialect.fieldToken(marker, wanted).utf8))
                case .text, .message:
                    return .equalsColumn(column, wanted: wanted)
                }
            case .document(let path): return .equalsDocument(path, wanted: wanted, number: SQLiteDialect.number(wanted))
            case .unknown: return .constant(.unsure)
            }
        case .prefix(let prefix):
            return .prefix(source, prefix, scalars: prefix.unicodeScalars.count)
        case .range(let lower, let upper):
            let bounds = [lower, upper].compactMap { $0 }
            let numeric = bounds.allSatisfy { SQLiteDialect.number($0.value) != nil }
            func integer(_ bound: RangeBound?) -> Int64? {
                guard let bound, case .int(let value)? = SQLiteDialect.number(bound.value) else { return nil }
                return value
            }
            let real = numeric && bounds.contains { if case .double? = SQLiteDialect.number($0.value) { return true } else { return false } }
            return .range(source, numeric: numeric, lower: lower, upper: upper, lowerInt: integer(lower), upperInt: integer(upper), real: real)
        case .cidr(let network):
            let octets = network.address.isIPv4 ? min(3, (network.prefixBits - 96) / 8) : 0
            let prefix = octets > 0 ? network.address.bytes[12..<(12 + octets)].map(String.init).joined(separator: ".") + "." : nil
            return .cidr(source, block: IPNetwork(network.description), octets: prefix)
        }
    }

    // MARK: - The event

    /// An event as the store would hold it, read as far as the filters need: one per event,
    /// shared by every filter evaluated on it.
    final class Subject {
        /// The event's document: given, or made from `flat` when a path needs it.
        lazy var fields: JSONObject = flat?.object(setting: appended) ?? appended
        /// Flat fields the event was prepared from (nil: a document), and the members added
        /// at their top level (none of the fields' own top-level keys).
        let flat: FlatFields?
        let appended: JSONObject
        /// The columns `IndexedColumns` extracts, once a filter asks for one (`isExtracted`).
        /// Not optional, so that a column is read in place: through an optional the whole was
        /// copied, and each of its strings retained and released, for every column asked for.
        private var extracted = IndexedColumns(.null)
        private var isExtracted = false
        /// Whether `message` is certain: the top level has at most one `message` key.
        let messageKnown: Bool
        /// `message` when it is a string (the store keeps it apart from the document).
        let message: String?
        /// The message's bytes and its tokens' ranges in them, when it is ASCII (the token
        /// index's folding of other scripts is SQLite's own): the index's tokens are the runs of
        /// letters and digits, lower-cased.
        private(set) lazy var tokens: (bytes: [UInt8], ranges: [Range<Int>])? = {
            guard let message, messageKnown else { return nil }
            let bytes = Array(message.utf8)
            guard let ranges = bytes.withUnsafeBufferPointer(FullTextTokens.asciiTokenRanges) else { return nil }
            return (bytes, ranges)
        }()

        init(_ fields: JSONObject) {
            flat = nil
            appended = JSONObject()
            let (found, unique) = Subject.member("message", of: fields)
            messageKnown = unique
            if case .string(let text)? = found { message = text } else { message = nil }
            self.fields = fields
        }

        /// Flat fields and members added to them, whose keys are none of theirs
        /// (`SQLiteEventPredicates.matching(flat:appending:)`).
        init(flat: FlatFields, appending: JSONObject) {
            self.flat = flat
            appended = appending
            // The document's keys are unique (a schema lists each path once).
            let (found, unique) = Subject.member("message", of: appending)
            messageKnown = unique
            if case .string(let text)? = found ?? flat.schema.path("message").flatMap({ flat.value($0) }) { message = text } else { message = nil }
        }

        /// The object's member named `key`, and whether it is the only one of that name. Through
        /// the buffer: reading each member out of the array would retain its key and value.
        static func member(_ key: String, of object: JSONObject) -> (value: JSONValue?, unique: Bool) {
            object.members.withUnsafeBufferPointer { members in
                var index: Int?
                for i in 0..<members.count where members[i].key == key {
                    guard index == nil else { return (nil, false) }
                    index = i
                }
                return (index.map { members[$0].value }, true)
            }
        }

        func extract() {
            guard !isExtracted else { return }
            extracted = if let flat { IndexedColumns(flat: flat) } else { IndexedColumns(.object(fields)) }
            isExtracted = true
        }

        func text(_ column: TextColumn) -> String? {
            extract()
            switch column {
            case .dataset: return extracted.dataset
            case .hostName: return extracted.hostName
            case .sourceIP: return extracted.sourceIP
            case .destinationIP: return extracted.destinationIP
            case .networkTransport: return extracted.networkTransport
            case .userName: return extracted.userName
            case .eventAction: return extracted.eventAction
            case .eventOutcome: return extracted.eventOutcome
            case .observerVendor: return extracted.observerVendor
            }
        }

        func port(source: Bool) -> Int64? {
            extract()
            return source ? extracted.sourcePort : extracted.destinationPort
        }

        /// Whether the message holds the phrase as consecutive tokens (`FullTextTokens.contains`).
        func contains(_ phrase: [[UInt8]], prefix: Bool) -> Bool? {
            guard let (bytes, ranges) = tokens else { return nil }
            return bytes.withUnsafeBufferPointer { FullTextTokens.asciiPhraseFound(phrase, prefix: prefix, in: $0, tokens: ranges) }
        }
    }

    // MARK: - Evaluating

    static func truth(_ node: Node, _ subject: Subject) -> Truth {
        switch node {
        case .constant(let truth):
            return truth
        case .text(let phrase, let prefix):
            // One token: the token index; several: also `vigil_phrase` on the message. Either is
            // true or false, never NULL; an event without a message holds none of these tokens.
            guard subject.messageKnown else { return .unsure }
            if subject.message == nil { return .no }
            guard let found = subject.contains(phrase, prefix: prefix) else { return .unsure }
            return found ? .yes : .no
        case .equalsInteger(let column, let wanted):
            guard case .int(let value) = columnValue(column, subject) else { return .null }
            return value == wanted ? .yes : .no
        case .equalsColumn(let column, let wanted):
            switch columnValue(column, subject) {
            case .text(let text): return equalBytes(text, wanted) ? .yes : .no
            case .null: return .null
            default: return .unsure
            }
        case .equalsAddress(let column, let wanted, let token):
            // `event.id IN (token index MATCH token) AND column = value`: an event without an
            // address has the token only if its message holds it literally.
            switch columnValue(column, subject) {
            case .text(let text): return equalBytes(text, wanted) ? .yes : .no
            case .null:
                guard subject.messageKnown else { return .unsure }
                if subject.message == nil { return .no }
                guard let found = subject.contains([token], prefix: false) else { return .unsure }
                return found ? .null : .no
            default: return .unsure
            }
        case .equalsDocument(let path, let wanted, let number):
            return documentEquals(documentValue(path, subject), wanted, number: number)
        case .prefix(let source, let prefix, let scalars):
            let text: String
            switch value(source, subject) {
            case .text(let value): text = value
            case .int(let value): text = String(value)
            case .bool(let value): text = value ? "1" : "0"
            case .null, .jsonNull: return .null
            case .array, .unsure: return .unsure
            }
            // The same scalars are the same bytes.
            return text.unicodeScalars.prefix(scalars).elementsEqual(prefix.unicodeScalars) ? .yes : .no
        case .range(let source, let numeric, let lower, let upper, let lowerInt, let upperInt, let real):
            return range(value(source, subject), numeric: numeric, lower: lower, upper: upper, lowerInt: lowerInt, upperInt: upperInt, real: real)
        case .cidr(let source, let block, let octets):
            return cidr(value(source, subject), block: block, octets: octets)
        case .exists(let source):
            switch value(source, subject) {
            case .null:
                // A column IS NOT NULL; the document's `json_type(...) <> 'null'` is NULL
                // when there is no such path.
                if case .column = source { return .no }
                return .null
            case .jsonNull: return .no
            case .unsure: return .unsure
            default: return .yes
            }
        case .not(let inner):
            return !truth(inner, subject)
        case .and(let nodes):
            var result = Truth.yes
            for child in nodes where result != .no { result = result && truth(child, subject) }
            return result
        case .or(let nodes):
            var result = Truth.no
            for child in nodes where result != .yes { result = result || truth(child, subject) }
            return result
        }
    }

    // MARK: - Values

    /// A field's value as the SQL expression of `SQLiteDialect.value(of:)` gives it.
    enum Value {
        /// SQL NULL: a missing field, an absent column.
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

    static func value(_ source: Source, _ subject: Subject) -> Value {
        switch source {
        case .column(let column): return columnValue(column, subject)
        case .document(let path): return documentValue(path, subject)
        case .unknown: return .unsure
        }
    }

    static func columnValue(_ column: Column, _ subject: Subject) -> Value {
        let text: String?
        switch column {
        case .sourcePort: return subject.port(source: true).map(Value.int) ?? .null
        case .destinationPort: return subject.port(source: false).map(Value.int) ?? .null
        case .text(let column), .address(let column, _): text = subject.text(column)
        case .message:
            guard subject.messageKnown else { return .unsure }
            text = subject.message
        }
        guard let text else { return .null }
        return text.utf8.contains(0) ? .unsure : .text(text)
    }

    /// A field of the stored document (`json_extract(vigil_doc(body), path)`).
    static func documentValue(_ path: DocumentPath, _ subject: Subject) -> Value {
        var current: JSONValue
        if let flat = subject.flat, let known = flat.documentValue(atPath: path.dotted, setting: subject.appended) {
            guard let known else { return .null }
            current = known
        } else {
            current = JSONValue.object(subject.fields)
            for part in path.parts {
                guard case .object(let object) = current else { return .null }
                let (found, unique) = Subject.member(part, of: object)
                guard unique else { return .unsure }
                guard let found else { return .null }
                current = found
            }
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

    static func equalBytes(_ a: String, _ b: String) -> Bool { a.utf8.elementsEqual(b.utf8) }

    /// Whether SQLite could take this query value for an object's or array's JSON text.
    static func looksLikeJSONText(_ value: String) -> Bool { value.hasPrefix("{") || value.hasPrefix("[") }

    // MARK: - Field predicates

    /// `field:value` on the document: the dialect's four ways of being equal, OR'ed.
    static func documentEquals(_ value: Value, _ wanted: String, number: SQLValue?) -> Truth {
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
        if let number {
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
        return options.reduce(.no, ||)
    }

    /// `typeof(value) IN ('integer', 'real')` (or `= 'text'`) AND the bounds.
    static func range(_ value: Value, numeric: Bool, lower: RangeBound?, upper: RangeBound?, lowerInt: Int64?, upperInt: Int64?, real: Bool) -> Truth {
        if numeric {
            let number: Int64
            switch value {
            case .int(let value): number = value
            case .bool(let value): number = value ? 1 : 0
            case .text, .array, .null, .jsonNull: return .no
            case .unsure: return .unsure
            }
            guard !real else { return .unsure }
            if let lowerInt, let lower { guard lower.inclusive ? number >= lowerInt : number > lowerInt else { return .no } }
            if let upperInt, let upper { guard upper.inclusive ? number <= upperInt : number < upperInt else { return .no } }
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
    static func cidr(_ value: Value, block: IPNetwork?, octets: String?) -> Truth {
        let text: String
        switch value {
        case .text(let value): text = value
        case .null, .jsonNull: return .no  // vigil_cidr(NULL) is false
        case .int, .bool, .array, .unsure: return .unsure
        }
        guard let block, block.contains(text: text) else { return .no }
        guard let octets else { return .yes }
        let head = text.unicodeScalars.prefix(octets.unicodeScalars.count)
        return head.elementsEqual(octets.unicodeScalars) || text.utf8.contains(UInt8(ascii: ":")) ? .yes : .no
    }
}

/// The filters of several queries (a tenant's per-event native rules) on one event.
struct SQLiteEventPredicates: EventPredicates {
    /// Nil for a query the store refuses: it never matches here.
    let predicates: [SQLiteEventPredicate?]

    func matching(_ fields: JSONObject) -> [Int] {
        matching(SQLiteEventPredicate.Subject(fields))
    }

    func matching(flat: FlatFields, appending: JSONObject) -> [Int] {
        // A member replacing one of the fields' own hides it: then the document decides.
        guard !flat.isReplaced(by: appending) else {
            return matching(flat.object(setting: appending))
        }
        return matching(SQLiteEventPredicate.Subject(flat: flat, appending: appending))
    }

    func matching(_ subject: SQLiteEventPredicate.Subject) -> [Int] {
        var matched: [Int] = []
        for (index, predicate) in predicates.enumerated() {
            if let predicate, SQLiteEventPredicate.truth(predicate.root, subject) == .yes { matched.append(index) }
        }
        return matched
    }
}

extension SQLiteEventStore {
    public func eventPredicates(for queries: [Query]) -> (any EventPredicates)? {
        SQLiteEventPredicates(predicates: queries.map(SQLiteEventPredicate.init))
    }
}
