import VigilCore
import VigilStorage

/// Limits applied while decoding and admitting events.
public struct IntakeLimits: Sendable {
    /// Largest request body after decompression (file key: `max_body_bytes`).
    public var maxBodyBytes = 16 << 20
    /// Largest single event line (`max_line_bytes`); larger lines are quarantined as `oversize`.
    public var maxLineBytes = 1 << 20
    /// How far in the past `@timestamp` may be (`max_event_age_secs`, default 30 days).
    public var maxPastMillis: Int64 = 30 * 86_400_000
    /// How far in the future `@timestamp` may be (`max_event_future_secs`, default 1 day).
    public var maxFutureMillis: Int64 = 86_400_000
    /// Bytes of raw input kept with a quarantined item (`quarantine_raw_bytes`): four times
    /// the line limit, so an `oversize` line can be replayed whole after the limit is raised.
    public var quarantineRawBytes = 4 << 20

    public init() {}
}

/// An event as decoded from a request, before admission normalizes it.
public struct Candidate: Sendable {
    public enum TimestampField: Sendable, Equatable {
        case absent
        case millis(EpochMillis)
        case invalid(String)
    }

    public var object: JSONObject
    /// The fields as flat values (the syslog packs that make them); `object` is then empty.
    public var flat: FlatFields?
    /// The nested document: `object`, or the one the flat fields stand for.
    public var document: JSONObject { flat?.object() ?? object }
    public var timestamp: TimestampField
    /// The original bytes: hashed for the content key, kept if quarantined later.
    public var raw: [UInt8]
    /// An id given by the transport (Elasticsearch `_id`), used as `event_id`.
    public var transportID: String?
    /// `transportID` is the server's own, unique to this one input (a syslog frame's
    /// `syslog-<boot>-<n>`), not a client's: no other event can have it, so its key may lead
    /// with the event's second (`docs/idempotency.md`). A client's id keeps the plain digest:
    /// the same `event_id` sent again with another time is the same event.
    public var idIsServers = false
    /// The time used when the event has none: the receive time, or for a quarantine replay
    /// the time the item was first received (so a replay's keys are stable).
    public var defaultTimestamp: EpochMillis?
    /// Already normalized by the protocol packs (syslog): admission steps that run the packs
    /// skip it.
    public var normalized = false

    public init(object: JSONObject, timestamp: TimestampField, raw: [UInt8], transportID: String? = nil) {
        self.object = object
        self.timestamp = timestamp
        self.raw = raw
        self.transportID = transportID
    }
}

/// One decoded input: a candidate event, or bytes that can only go to quarantine.
public enum DecodedItem: Sendable {
    case candidate(Candidate)
    case rejected(QuarantineReason, detail: String, raw: [UInt8])
}

// MARK: - Native NDJSON

/// Decodes `POST /api/v1/ingest` bodies: one JSON object per line.
public enum NativeDecoder {
    public static func decode(_ body: [UInt8], limits: IntakeLimits) -> [DecodedItem] {
        var items: [DecodedItem] = []
        var lineNumber = 0
        for line in LineSplitter.lines(body) {
            lineNumber += 1
            if LineSplitter.isBlank(line) { continue }
            items.append(decodeObjectLine(line, lineNumber: lineNumber, limits: limits, timestampKeys: ["@timestamp"]))
        }
        return items
    }

    /// Decodes one line holding a JSON object whose timestamp is RFC 3339 or epoch milliseconds.
    static func decodeObjectLine(_ line: ArraySlice<UInt8>, lineNumber: Int, limits: IntakeLimits, timestampKeys: [String]) -> DecodedItem {
        let raw = Array(line)
        guard raw.count <= limits.maxLineBytes else {
            return .rejected(.oversize, detail: "line \(lineNumber) is \(raw.count) bytes; the limit is \(limits.maxLineBytes)", raw: raw)
        }
        let value: JSONValue
        do {
            value = try JSONParser.parse(raw)
        } catch {
            return .rejected(.malformedJSON, detail: "line \(lineNumber): \(error)", raw: raw)
        }
        guard case .object(var object) = value else {
            return .rejected(.malformedJSON, detail: "line \(lineNumber) is not a JSON object", raw: raw)
        }
        var timestamp = Candidate.TimestampField.absent
        for key in timestampKeys {
            if let field = object.removeValue(forKey: key) {
                timestamp = TimestampDecoding.millisOrRFC3339(field, name: key)
                break
            }
        }
        return .candidate(Candidate(object: object, timestamp: timestamp, raw: raw))
    }
}

enum TimestampDecoding {
    /// RFC 3339 text or epoch milliseconds (number or numeric text).
    static func millisOrRFC3339(_ value: JSONValue, name: String) -> Candidate.TimestampField {
        switch value {
        case .string(let text):
            if let millis = Timestamp.parseRFC3339(text) { return .millis(millis) }
            if let millis = Int64(text) { return .millis(millis) }
            return .invalid("\(name) is not an RFC 3339 time or epoch milliseconds")
        case .int(let millis): return .millis(millis)
        case .double(let millis) where millis.isFinite && abs(millis) < 9e15: return .millis(Int64(millis))
        default: return .invalid("\(name) must be an RFC 3339 string or epoch milliseconds")
        }
    }

    /// Epoch seconds with an optional fraction (Splunk `time`).
    static func epochSeconds(_ value: JSONValue) -> Candidate.TimestampField {
        switch value {
        case .int(let seconds) where abs(seconds) < 9_000_000_000_000: return .millis(seconds * 1000)
        case .double(let seconds) where seconds.isFinite && abs(seconds) < 9e12: return .millis(Int64((seconds * 1000).rounded()))
        case .string(let text):
            if let seconds = Double(text), seconds.isFinite, abs(seconds) < 9e12 { return .millis(Int64((seconds * 1000).rounded())) }
            return .invalid("time is not epoch seconds")
        default: return .invalid("time must be epoch seconds")
        }
    }
}

/// Splits bytes on LF, dropping a CR before it.
enum LineSplitter {
    static func lines(_ body: [UInt8]) -> [ArraySlice<UInt8>] {
        var result: [ArraySlice<UInt8>] = []
        var start = 0
        // Line ends found with `memchr`: a byte loop over every request body was half a
        // percent of a busy server.
        body.withUnsafeBytes { bytes in
            ByteScan.forEachOffset(of: 0x0A, in: bytes) { end in
                result.append(trimCR(body[start..<end]))
                start = end + 1
            }
        }
        if start < body.count { result.append(trimCR(body[start..<body.count])) }
        return result
    }

    /// Only spaces and tabs: skipped, not an event.
    static func isBlank(_ line: ArraySlice<UInt8>) -> Bool {
        line.allSatisfy { $0 == 0x20 || $0 == 0x09 }
    }

    static func trimCR(_ line: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        line.last == 0x0D ? line.dropLast() : line
    }
}

// MARK: - Splunk HEC

/// Splunk HTTP Event Collector status codes, as Splunk documents them.
public enum HECStatus: Int, Sendable {
    case success = 0
    case tokenRequired = 2
    case invalidAuthorization = 3
    case invalidToken = 4
    case noData = 5
    case invalidDataFormat = 6
    case serverBusy = 9
    case dataChannelMissing = 10
    case eventFieldRequired = 12
    case eventFieldBlank = 13
    case healthy = 17

    public var text: String {
        switch self {
        case .success: return "Success"
        case .tokenRequired: return "Token is required"
        case .invalidAuthorization: return "Invalid authorization"
        case .invalidToken: return "Invalid token"
        case .noData: return "No data"
        case .invalidDataFormat: return "Invalid data format"
        case .serverBusy: return "Server is busy"
        case .dataChannelMissing: return "Data channel is missing"
        case .eventFieldRequired: return "Event field is required"
        case .eventFieldBlank: return "Event field cannot be blank"
        case .healthy: return "HEC is healthy"
        }
    }
}

/// A request HEC refuses as a whole; nothing of it is accepted.
public struct HECRequestError: Error, Sendable {
    public var status: HECStatus
    /// The 0-based index of the event that broke the request.
    public var invalidEventNumber: Int?
}

/// Decodes Splunk HEC bodies.
public enum HECDecoder {
    /// `/services/collector/event`: concatenated JSON objects with `event`, `time`, `host`,
    /// `source`, `sourcetype`, `index`, `fields`. A bad event refuses the whole request, as
    /// Splunk does, so a client retry can never half-duplicate a batch.
    public static func decodeEvents(_ body: [UInt8], limits: IntakeLimits) throws(HECRequestError) -> [DecodedItem] {
        let values: [JSONValue]
        do {
            values = try JSONParser.parseConcatenated(body)
        } catch {
            throw HECRequestError(status: .invalidDataFormat, invalidEventNumber: error.documentIndex)
        }
        guard !values.isEmpty else { throw HECRequestError(status: .noData) }
        var items: [DecodedItem] = []
        items.reserveCapacity(values.count)
        for (index, value) in values.enumerated() {
            guard case .object(var envelope) = value else {
                throw HECRequestError(status: .invalidDataFormat, invalidEventNumber: index)
            }
            guard let event = envelope.removeValue(forKey: "event") else {
                throw HECRequestError(status: .eventFieldRequired, invalidEventNumber: index)
            }
            var object = JSONObject()
            switch event {
            case .null: throw HECRequestError(status: .eventFieldBlank, invalidEventNumber: index)
            case .string(let text) where text.isEmpty: throw HECRequestError(status: .eventFieldBlank, invalidEventNumber: index)
            case .object(let fields):
                guard !fields.isEmpty else { throw HECRequestError(status: .eventFieldBlank, invalidEventNumber: index) }
                object = fields
            case .string(let text): object["message"] = .string(text)
            case .array: object["message"] = .string(JSONWriter.string(event))
            default: object["message"] = .string(event.scalarText ?? "")
            }
            var timestamp = Candidate.TimestampField.absent
            if let time = envelope.removeValue(forKey: "time") {
                timestamp = TimestampDecoding.epochSeconds(time)
            } else if let inner = object.removeValue(forKey: "@timestamp") {
                timestamp = TimestampDecoding.millisOrRFC3339(inner, name: "@timestamp")
            }
            if case .string(let host)? = envelope["host"] { object["host.name"] = .string(host) }
            for key in ["source", "sourcetype", "index"] {
                if case .string(let text)? = envelope[key] { object["splunk.\(key)"] = .string(text) }
            }
            if case .object(let fields)? = envelope["fields"] {
                for (key, value) in fields.members where object[key] == nil { object[key] = value }
            }
            let raw = JSONWriter.bytes(value)
            if raw.count > limits.maxLineBytes {
                items.append(.rejected(.oversize, detail: "event \(index) is \(raw.count) bytes; the limit is \(limits.maxLineBytes)", raw: raw))
                continue
            }
            items.append(.candidate(Candidate(object: object, timestamp: timestamp, raw: raw)))
        }
        return items
    }

    /// Decodes one quarantined HEC event again (its raw bytes are the event's JSON).
    public static func decodeOne(_ raw: [UInt8], limits: IntakeLimits) -> DecodedItem {
        do {
            return try decodeEvents(raw, limits: limits).first ?? .rejected(.unparseable, detail: "no event", raw: raw)
        } catch {
            return .rejected(.malformedJSON, detail: "HEC: \(error.status.text)", raw: raw)
        }
    }

    /// `/services/collector/raw`: one event per line; `host`, `source`, `sourcetype` come
    /// from the query string.
    public static func decodeRaw(_ body: [UInt8], host: String?, source: String?, sourcetype: String?, limits: IntakeLimits) throws(HECRequestError) -> [DecodedItem] {
        var items: [DecodedItem] = []
        var lineNumber = 0
        for line in LineSplitter.lines(body) {
            lineNumber += 1
            if LineSplitter.isBlank(line) { continue }
            let raw = Array(line)
            guard raw.count <= limits.maxLineBytes else {
                items.append(.rejected(.oversize, detail: "line \(lineNumber) is \(raw.count) bytes; the limit is \(limits.maxLineBytes)", raw: raw))
                continue
            }
            guard let text = String(validating: raw, as: UTF8.self) else {
                items.append(.rejected(.unparseable, detail: "line \(lineNumber) is not valid UTF-8", raw: raw))
                continue
            }
            var object = JSONObject()
            object["message"] = .string(text)
            if let host { object["host.name"] = .string(host) }
            if let source { object["splunk.source"] = .string(source) }
            if let sourcetype { object["splunk.sourcetype"] = .string(sourcetype) }
            items.append(.candidate(Candidate(object: object, timestamp: .absent, raw: raw)))
        }
        guard !items.isEmpty else { throw HECRequestError(status: .noData) }
        return items
    }
}

// MARK: - Elasticsearch bulk

/// One operation of an Elasticsearch `_bulk` request.
public struct BulkOperation: Sendable {
    public enum Outcome: Sendable {
        case item(DecodedItem)
        /// Refused without being stored or quarantined (an unsupported action).
        case refused(status: Int, type: String, reason: String)
    }
    public var action: String
    public var index: String
    public var id: String?
    public var outcome: Outcome
}

/// A bulk body that is not a bulk request at all (Elasticsearch answers 400 for the whole call).
public struct BulkRequestError: Error, Sendable {
    public var reason: String
}

/// Decodes `_bulk` NDJSON: action lines (`index`, `create`; `update` and `delete` refused per
/// item) each followed by a document line.
public enum BulkDecoder {
    public static func decode(_ body: [UInt8], defaultIndex: String?, limits: IntakeLimits) throws(BulkRequestError) -> [BulkOperation] {
        let lines = LineSplitter.lines(body)
        var operations: [BulkOperation] = []
        var index = 0
        while index < lines.count {
            let line = lines[index]
            let lineNumber = index + 1
            index += 1
            if LineSplitter.isBlank(line) { continue }
            guard case .object(let actionObject)? = try? JSONParser.parse(line), actionObject.count == 1,
                  let (action, metaValue) = actionObject.members.first, case .object(let meta) = metaValue
            else {
                throw BulkRequestError(reason: "Malformed action/metadata line [\(lineNumber)], expected an object with one action")
            }
            let targetIndex = meta["_index"]?.stringValue ?? defaultIndex ?? ""
            let id = meta["_id"]?.scalarText
            switch action {
            case "index", "create":
                guard index < lines.count else {
                    throw BulkRequestError(reason: "The bulk request must be terminated by a newline [\\n] after the source of line [\(lineNumber)]")
                }
                let docLine = lines[index]
                index += 1
                var item = NativeDecoder.decodeObjectLine(docLine, lineNumber: index, limits: limits, timestampKeys: ["@timestamp"])
                if action == "create", case .candidate(let candidate) = item, candidate.timestamp == .absent {
                    // `create` is the data-stream operation, and Elasticsearch refuses a
                    // data-stream document without @timestamp: so does Vigil, with a reason.
                    item = .rejected(.missingTimestamp, detail: "line \(index): a create (data stream) document needs @timestamp", raw: candidate.raw)
                }
                if case .candidate(var candidate) = item {
                    candidate.transportID = id
                    if !targetIndex.isEmpty, candidate.object["data_stream"] == nil {
                        candidate.object["vigil.index"] = .string(targetIndex)
                    }
                    item = .candidate(candidate)
                }
                operations.append(BulkOperation(action: action, index: targetIndex, id: id, outcome: .item(item)))
            case "update":
                index += 1  // its partial document
                operations.append(BulkOperation(action: action, index: targetIndex, id: id, outcome: .refused(
                    status: 400, type: "action_request_validation_exception", reason: "Vigil stores events immutably: update is not supported")))
            case "delete":
                operations.append(BulkOperation(action: action, index: targetIndex, id: id, outcome: .refused(
                    status: 400, type: "action_request_validation_exception", reason: "Vigil stores events immutably: delete is not supported")))
            default:
                throw BulkRequestError(reason: "Malformed action/metadata line [\(lineNumber)], expected one of [create, delete, index, update] but found [\(action.prefix(32))]")
            }
        }
        return operations
    }
}
