import Foundation
public import VigilCore

/// One event after a protocol pack (or the generic syslog fallback) has normalized it.
///
/// `fields` is a nested ECS document without `@timestamp` (that lives in `timestamp`, the
/// shape `VigilCore.Event` stores). It always holds `message` (the original line, verbatim,
/// for line input) and `event.dataset`.
public struct NormalizedEvent: Sendable, Equatable {
    public var fields: JSONObject
    /// Event time, UTC; nil when the line carried no usable time (the server decides).
    public var timestamp: EpochMillis?
    /// `panos.traffic`, `cisco.asa`, `zeek.dns`, `windows.sysmon_operational`, `syslog`, ...
    public var dataset: String
    /// A pack recognised the input but could not parse all of it.
    public var parseFailure: Bool
    /// False when the year was inferred (RFC 3164 `Mmm dd hh:mm:ss`).
    public var timestampHasYear: Bool
    /// False when the source time had no zone and UTC was assumed.
    public var timestampHasZone: Bool
    /// `fields` is the input document itself with the pack's fields set into it
    /// (`PackResult.buildsOnDocument`): it takes the document's place, nothing to merge.
    public var buildsOnDocument: Bool

    public init(
        fields: JSONObject, timestamp: EpochMillis?, dataset: String, parseFailure: Bool = false,
        timestampHasYear: Bool = true, timestampHasZone: Bool = true, buildsOnDocument: Bool = false
    ) {
        self.fields = fields
        self.timestamp = timestamp
        self.dataset = dataset
        self.parseFailure = parseFailure
        self.timestampHasYear = timestampHasYear
        self.timestampHasZone = timestampHasZone
        self.buildsOnDocument = buildsOnDocument
    }

    /// The document with `@timestamp` first (when known), as an ECS consumer sees it.
    public var document: JSONObject {
        var doc = JSONObject()
        if let timestamp { doc.members.append(("@timestamp", .string(Timestamp.formatRFC3339(timestamp)))) }
        doc.members.append(contentsOf: fields.members)
        return doc
    }
}

/// What a pack sees: the original input plus what the normalizer already parsed.
public struct PackInput: Sendable {
    /// The original line, verbatim (empty for JSON documents).
    public var line: String
    /// The syslog header, when the line had one (`format == .none` otherwise).
    public var syslog: SyslogMessage
    /// The text after the syslog header (the whole line when there was none).
    public var body: String
    /// The JSON document, for document input or a line that was a JSON object.
    public var document: JSONObject?
    /// When the server received it; the reference for year inference.
    public var receivedAt: EpochMillis

    public init(line: String, syslog: SyslogMessage, body: String, document: JSONObject?, receivedAt: EpochMillis) {
        self.line = line
        self.syslog = syslog
        self.body = body
        self.document = document
        self.receivedAt = receivedAt
    }
}

/// What a pack returns for an input it recognises.
public struct PackResult: Sendable, Equatable {
    public var dataset: String
    /// Nested ECS fields (the normalizer adds `message`, `event.dataset` and syslog header fields).
    public var fields: JSONObject
    /// Event time from the payload; nil falls back to the syslog header time.
    public var timestamp: EpochMillis?
    public var timestampHasZone: Bool
    public var parseFailure: Bool
    /// `fields` starts from the input document (nested, every member kept in its place) and
    /// has the pack's fields set into it, as `ECSBuilder(document)` does. The document is
    /// then replaced by `fields`, not merged with it: merging a document into itself with
    /// additions was a tenth of a Winlogbeat event's admission.
    public var buildsOnDocument: Bool

    public init(dataset: String, fields: JSONObject, timestamp: EpochMillis? = nil, timestampHasZone: Bool = true, parseFailure: Bool = false,
                buildsOnDocument: Bool = false) {
        self.dataset = dataset
        self.fields = fields
        self.timestamp = timestamp
        self.timestampHasZone = timestampHasZone
        self.parseFailure = parseFailure
        self.buildsOnDocument = buildsOnDocument
    }
}

/// Normalizes one vendor's logs to ECS.
///
/// `normalize` returns nil for input that is not this pack's ("not my line"), so the
/// normalizer can try the next pack. It never traps on any input.
public protocol ProtocolPack: Sendable {
    /// A stable name (`panos`, `cisco.asa`, ...), for metrics labels.
    var name: String { get }
    func normalize(_ input: PackInput) -> PackResult?
}
