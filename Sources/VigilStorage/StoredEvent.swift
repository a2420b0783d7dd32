import VigilCore

/// The ECS fields every backend keeps in columns of their own.
public struct IndexedColumns: Sendable, Equatable {
    public var dataset: String?
    public var hostName: String?
    public var sourceIP: String?
    public var sourcePort: Int64?
    public var destinationIP: String?
    public var destinationPort: Int64?
    public var networkTransport: String?
    public var userName: String?
    public var eventAction: String?
    public var eventOutcome: String?
    public var observerVendor: String?

    public init() {}

    /// The dotted ECS name of each column, in storage order.
    public static let fieldNames = [
        "event.dataset", "host.name", "source.ip", "source.port", "destination.ip", "destination.port",
        "network.transport", "user.name", "event.action", "event.outcome", "observer.vendor",
    ]

    static let paths = KeyPathSet(fieldNames.map { $0.split(separator: ".").map(String.init) })
    static var keyPaths: [[String]] { paths.paths }

    /// Reads the columns from a nested (ECS-shaped) document, as `value(atKeys:)` finds them,
    /// the roots in one pass over the top level.
    public init(_ doc: JSONValue) {
        let values: [JSONValue?] = if case .object(let object) = doc { object.values(at: Self.paths) } else { [] }
        self.init(values: values)
    }

    /// The columns of flat fields' nested document (`FlatFields.object()`).
    public init(flat: FlatFields) {
        self.init(values: StoredEvent.flatPaths.positions(in: flat.schema).dropLast().map { $0.flatMap { flat.value($0) } })
    }

    /// From the value at each of `fieldNames` (or none at all).
    init(values: [JSONValue?]) {
        func value(_ i: Int) -> JSONValue? { values.isEmpty ? nil : values[i] }
        func text(_ i: Int) -> String? { value(i)?.scalarText }
        func int(_ i: Int) -> Int64? {
            switch value(i) {
            case .int(let value)?: return value
            case .string(let text)?: return Int64(text)
            default: return nil
            }
        }
        dataset = text(0)
        hostName = text(1)
        sourceIP = text(2)
        sourcePort = int(3)
        destinationIP = text(4)
        destinationPort = int(5)
        networkTransport = text(6)
        userName = text(7)
        eventAction = text(8)
        eventOutcome = text(9)
        observerVendor = text(10)
    }
}

extension IndexedColumns {
    /// The JSON value each column stands for, by `fieldNames` index: what the stored document
    /// may leave out because `restore` puts exactly it back.
    var values: [JSONValue?] {
        [dataset.map(JSONValue.string), hostName.map(JSONValue.string), sourceIP.map(JSONValue.string), sourcePort.map(JSONValue.int),
         destinationIP.map(JSONValue.string), destinationPort.map(JSONValue.int), networkTransport.map(JSONValue.string),
         userName.map(JSONValue.string), eventAction.map(JSONValue.string), eventOutcome.map(JSONValue.string),
         observerVendor.map(JSONValue.string)]
    }

    /// The fields the stored document leaves out, so they are not stored twice
    /// (`JSONWriter.bytes(_:omitting:values:)` with `values`). Only an exact copy goes (a port
    /// sent as the string "443" stays: the column's integer would not give it back), only
    /// where its key is unique in its object, and the objects that held them stay (even
    /// empty), so `restore` rebuilds the same document.
    static let omitted = JSONWriter.OmittedPaths(keyPaths)

    /// Puts back the fields the document left out (`omitted`): each column whose path the
    /// document lacks.
    public func restore(into fields: inout JSONObject) {
        for (keys, value) in zip(Self.keyPaths, values) {
            guard let value else { continue }
            Self.insert(keys[...], value: value, into: &fields)
        }
    }

    private static func insert(_ keys: ArraySlice<String>, value: JSONValue, into object: inout JSONObject) {
        guard let key = keys.first else { return }
        guard let index = object.members.firstIndex(where: { $0.key == key }) else {
            var built = value
            for outer in keys.dropFirst().reversed() { built = .object(JSONObject([(outer, built)])) }
            object.members.append((key, built))
            return
        }
        guard keys.count > 1, case .object(var child) = object.members[index].value else { return }
        object.members[index].value = .null
        insert(keys.dropFirst(), value: value, into: &child)
        object.members[index].value = .object(child)
    }
}

/// An event encoded for storage: its columns extracted and its document serialized once, at
/// admission, so the pipeline stores it without parsing JSON again.
public struct StoredEvent: Sendable, Equatable {
    public var tenant: TenantName
    public var key: EventKey
    public var timestamp: EpochMillis
    public var ingested: EpochMillis
    public var columns: IndexedColumns
    /// `message` when it is a string (it has a column and the token index of its own).
    public var message: String?
    /// The JSON document without `message` and without the fields the columns hold
    /// (`IndexedColumns.omitted`); `event()` puts them back.
    public var document: [UInt8]
    /// Its intake record, when it came through the queue (not part of the binary form).
    public var sequence: IntakeSequence?
    /// The tags of the per-event rules it matched at admission (`AdmissionMatcher`): carried by
    /// its intake record, not stored with it.
    public var matched: [UInt64] = []
    /// The key comes from an id this server gave one input (a syslog frame's
    /// `syslog-<boot>-<n>`): no other event, and no retry, can make it. The store then does not
    /// record it for duplicate checks (`docs/idempotency.md`); a replay of its intake record is
    /// still skipped by the day partition's committed sequence. Carried by the intake record.
    public var keyIsUnique = false

    public init(tenant: TenantName, key: EventKey, timestamp: EpochMillis, ingested: EpochMillis,
                columns: IndexedColumns, message: String?, document: [UInt8]) {
        self.tenant = tenant
        self.key = key
        self.timestamp = timestamp
        self.ingested = ingested
        self.columns = columns
        self.message = message
        self.document = document
    }

    public init(_ event: Event) {
        self.init(tenant: event.tenant, key: event.key, timestamp: event.timestamp, ingested: event.ingested, fields: event.fields)
    }

    /// Encodes an event's fields. Taking them (`consuming`) matters on the ingest path: a
    /// caller that hands over its only reference lets `message` be removed from the top-level
    /// object in place; the nested objects are not changed at all (the columns' fields are
    /// left out while writing).
    public init(tenant: TenantName, key: EventKey, timestamp: EpochMillis, ingested: EpochMillis, fields: consuming JSONObject) {
        var fields = fields
        var message: String?
        if case .string(let text)? = fields["message"] {
            message = text
            fields.removeValue(forKey: "message")
        }
        let columns = IndexedColumns(.object(fields))
        // Written without the columns' fields, the document untouched.
        self.init(tenant: tenant, key: key, timestamp: timestamp, ingested: ingested,
                  columns: columns, message: message, document: JSONWriter.bytes(fields, omitting: IndexedColumns.omitted, values: columns.values))
    }

    /// The columns' paths and `message`, in flat schemas.
    static let flatPaths = FlatPathLookup(IndexedColumns.fieldNames + ["message"])

    /// Encodes flat fields (`FlatFields`): the event the initializer taking their nested
    /// document (`FlatFields.object()` with `appending` added) makes, without building it.
    ///
    /// Each column is read from its field as `IndexedColumns(values:)` reads the document's
    /// value (a text column takes a scalar's text, a port an integer or a string of digits),
    /// without making a `JSONValue` per field: a text is made once, as the column's String.
    public init(tenant: TenantName, key: EventKey, timestamp: EpochMillis, ingested: EpochMillis, flat: FlatFields,
                appending: [(key: String, value: JSONValue)]) {
        let schema = flat.schema
        let positions = Self.flatPaths.positions(in: schema)
        // A field goes where the nested document's would: only an exact copy of its column
        // (`IndexedColumns.omitted`), so a string in a port column, or a number in a text
        // column, stays in the document.
        var omitting = [Bool](repeating: false, count: schema.paths.count)
        func text(_ column: Int) -> String? {
            guard let position = positions[column] else { return nil }
            if let text = flat.text(position) {
                omitting[position] = true
                return text
            }
            if let number = flat.int(position) { return String(number) }
            guard let value = flat.value(position) else { return nil }
            if case .string = value { omitting[position] = true }
            return value.scalarText
        }
        func int(_ column: Int) -> Int64? {
            guard let position = positions[column] else { return nil }
            if let number = flat.int(position) {
                omitting[position] = true
                return number
            }
            if let text = flat.text(position) { return Int64(text) }
            switch flat.value(position) {
            case .int(let number)?:
                omitting[position] = true
                return number
            case .string(let text)?: return Int64(text)
            default: return nil
            }
        }
        var columns = IndexedColumns()
        columns.dataset = text(0)
        columns.hostName = text(1)
        columns.sourceIP = text(2)
        columns.sourcePort = int(3)
        columns.destinationIP = text(4)
        columns.destinationPort = int(5)
        columns.networkTransport = text(6)
        columns.userName = text(7)
        columns.eventAction = text(8)
        columns.eventOutcome = text(9)
        columns.observerVendor = text(10)
        var message: String?
        if let position = positions[positions.count - 1] {
            if let text = flat.text(position) {
                message = text
            } else if case .string(let text)? = flat.value(position) {
                message = text
            }
            if message != nil { omitting[position] = true }
        }
        self.init(tenant: tenant, key: key, timestamp: timestamp, ingested: ingested,
                  columns: columns, message: message, document: flat.write(omitting: omitting, appending: appending))
    }

    /// The event back, for search results; nil when the document is damaged.
    public func event() -> Event? {
        guard case .object(var fields) = (try? JSONParser.parse(document)) ?? .null else { return nil }
        columns.restore(into: &fields)
        if let message { fields.members.insert(("message", .string(message)), at: 0) }
        return Event(tenant: tenant, key: key, timestamp: timestamp, ingested: ingested, fields: fields)
    }

    // MARK: - Binary form (intake spool)

    /// Appends the binary form: `str tenant, 16 key bytes, i64 timestamp, i64 ingested,
    /// 11 columns (u8 present + str, or + i64 for ports), u8 present + str message, bytes document`.
    public func encode(into out: inout [UInt8]) {
        // The bytes are moved into the writer and back: a writer made from a copy of `out`
        // would copy them on its first write, `out` still referring to them.
        var writer = BinaryWriter()
        swap(&writer.out, &out)
        defer { swap(&out, &writer.out) }
        writer.string(tenant.rawValue)
        key.withUnsafeBytes { writer.raw($0) }
        writer.int64(timestamp)
        writer.int64(ingested)
        let c = columns
        writer.optionalString(c.dataset)
        writer.optionalString(c.hostName)
        writer.optionalString(c.sourceIP)
        writer.optionalInt64(c.sourcePort)
        writer.optionalString(c.destinationIP)
        writer.optionalInt64(c.destinationPort)
        writer.optionalString(c.networkTransport)
        writer.optionalString(c.userName)
        writer.optionalString(c.eventAction)
        writer.optionalString(c.eventOutcome)
        writer.optionalString(c.observerVendor)
        writer.optionalString(message)
        writer.bytes(document)
    }

    public static func decode(_ reader: inout BinaryReader) -> StoredEvent? {
        guard let tenantText = reader.string(), let tenant = TenantName(tenantText), let keyBytes = reader.raw(16),
              let timestamp = reader.int64(), let ingested = reader.int64()
        else { return nil }
        var c = IndexedColumns()
        guard let dataset = reader.optionalString(), let hostName = reader.optionalString(), let sourceIP = reader.optionalString(),
              let sourcePort = reader.optionalInt64(), let destinationIP = reader.optionalString(),
              let destinationPort = reader.optionalInt64(), let transport = reader.optionalString(),
              let userName = reader.optionalString(), let action = reader.optionalString(), let outcome = reader.optionalString(),
              let vendor = reader.optionalString(), let message = reader.optionalString(), let document = reader.bytes()
        else { return nil }
        (c.dataset, c.hostName, c.sourceIP, c.sourcePort) = (dataset, hostName, sourceIP, sourcePort)
        (c.destinationIP, c.destinationPort, c.networkTransport, c.userName) = (destinationIP, destinationPort, transport, userName)
        (c.eventAction, c.eventOutcome, c.observerVendor) = (action, outcome, vendor)
        return StoredEvent(tenant: tenant, key: EventKey(bytes: keyBytes), timestamp: timestamp, ingested: ingested,
                           columns: c, message: message, document: document)
    }
}

/// Little-endian binary writing for spool records.
public struct BinaryWriter {
    public var out: [UInt8]

    public init(out: [UInt8] = []) { self.out = out }

    public mutating func raw(_ bytes: [UInt8]) { out.append(contentsOf: bytes) }
    public mutating func raw(_ bytes: UnsafeRawBufferPointer) { out.append(contentsOf: bytes) }

    // Fixed-width values are appended as one run of bytes, not byte by byte (each append
    // checked the array's uniqueness and capacity again).

    public mutating func int64(_ value: Int64) {
        withUnsafeBytes(of: value.littleEndian) { out.append(contentsOf: $0) }
    }

    mutating func length(_ count: Int) {
        withUnsafeBytes(of: UInt32(count).littleEndian) { out.append(contentsOf: $0) }
    }

    public mutating func bytes(_ bytes: [UInt8]) {
        length(bytes.count)
        out.append(contentsOf: bytes)
    }

    public mutating func string(_ text: String) {
        var text = text
        text.withUTF8 { utf8 in
            length(utf8.count)
            out.append(contentsOf: utf8)
        }
    }

    public mutating func optionalString(_ text: String?) {
        guard let text else { out.append(0); return }
        out.append(1)
        string(text)
    }

    public mutating func optionalInt64(_ value: Int64?) {
        guard let value else { out.append(0); return }
        out.append(1)
        int64(value)
    }
}

/// Reads what `BinaryWriter` wrote; every read returns nil past the end instead of trapping.
/// Optional reads return `.some(nil)` for an absent value and nil for damaged input.
public struct BinaryReader {
    let input: [UInt8]
    var index = 0

    public init(_ bytes: [UInt8]) { input = bytes }

    public mutating func byte() -> UInt8? {
        guard index < input.count else { return nil }
        defer { index += 1 }
        return input[index]
    }

    public mutating func raw(_ count: Int) -> [UInt8]? {
        guard count >= 0, count <= input.count - index else { return nil }
        defer { index += count }
        return Array(input[index..<(index + count)])
    }

    public mutating func int64() -> Int64? {
        guard 8 <= input.count - index else { return nil }
        var bits: UInt64 = 0
        for i in 0..<8 { bits |= UInt64(input[index + i]) << UInt64(8 * i) }
        index += 8
        return Int64(bitPattern: bits)
    }

    mutating func length() -> Int? {
        guard 4 <= input.count - index else { return nil }
        let count = Int(input[index]) | Int(input[index + 1]) << 8 | Int(input[index + 2]) << 16 | Int(input[index + 3]) << 24
        index += 4
        return count
    }

    public mutating func bytes() -> [UInt8]? {
        guard let count = length() else { return nil }
        return raw(count)
    }

    public mutating func string() -> String? {
        guard let count = length(), count <= input.count - index else { return nil }
        defer { index += count }
        return String(decoding: input[index..<(index + count)], as: UTF8.self)
    }

    public mutating func optionalString() -> String?? {
        guard let flag = byte() else { return nil }
        if flag == 0 { return .some(nil) }
        guard flag == 1, let text = string() else { return nil }
        return .some(text)
    }

    public mutating func optionalInt64() -> Int64?? {
        guard let flag = byte() else { return nil }
        if flag == 0 { return .some(nil) }
        guard flag == 1, let value = int64() else { return nil }
        return .some(value)
    }
}
