import Crypto
import Logging
import Metrics
import Synchronization
import VigilCore
import VigilStorage

/// A step of admission that sees every event's fields before its key is made: protocol packs
/// recognising documents shipped over HTTP, threat-intel enrichment.
public protocol AdmissionStep: Sendable {
    /// May rewrite the fields; returns a timestamp when the step found a better one than the
    /// candidate had (a pack reading the device's own time).
    func apply(to fields: inout JSONObject, received: EpochMillis) -> EpochMillis?
    /// False for steps that normalize (the packs): events that were normalized on the way in
    /// (syslog) skip them.
    var appliesToNormalized: Bool { get }
    /// True when `apply` would leave flat fields (`FlatFields`) as they are and find no time:
    /// admission then encodes them without building the nested document.
    func leavesUnchanged(_ fields: FlatFields) -> Bool
}

extension AdmissionStep {
    public var appliesToNormalized: Bool { true }
    public func leavesUnchanged(_ fields: FlatFields) -> Bool { false }
}

/// What happened to each decoded item of a request.
public enum ItemStatus: Sendable, Equatable {
    case accepted
    case duplicate
    case quarantined(QuarantineReason, detail: String)
}

public struct IngestOutcome: Sendable {
    public var statuses: [ItemStatus]
    public var accepted: Int { statuses.filter { $0 == .accepted }.count }
    public var duplicates: Int { statuses.filter { $0 == .duplicate }.count }
    public var quarantined: Int {
        statuses.filter { if case .quarantined = $0 { return true } else { return false } }.count
    }
}

/// Admission: normalizes decoded items into events, gives each its idempotency key, drops
/// duplicates, and appends events and quarantined items durably to the intake queue.
///
/// Duplicate detection spans the store (`EventStore.existingKeys`) and events that are in the
/// queue but not stored yet (`pending`), so a retry that races the pipeline is still caught.
public final class IntakeService: Sendable {
    let queue: any IntakeQueue
    let store: any EventStore
    let clock: any VigilClock
    public let limits: IntakeLimits
    public let retention: RetentionPolicies
    let logger: Logger
    /// Applied in order to every admitted event (packs first, then enrichment).
    let steps: [any AdmissionStep]
    /// Per-event detection rules, matched on each event's final fields.
    let matcher: (any AdmissionMatcher)?
    /// Keys appended to the queue and not yet stored, per tenant.
    let pending = Mutex<[TenantName: Set<EventKey>]>([:])
    /// Events in the queue and not yet stored, by receive time: the scheduler never closes a
    /// detection window past the oldest of them (it would miss them).
    let unstoredByIngest = Mutex<[EpochMillis: Int]>([:])
    /// The receive time of the latest request (0: none yet).
    let lastReceived = Atomic<EpochMillis>(0)

    let receivedCounter: Counter
    let acceptedCounter: Counter
    let duplicateCounter: Counter

    public init(queue: any IntakeQueue, store: any EventStore, clock: any VigilClock, limits: IntakeLimits,
                retention: RetentionPolicies = RetentionPolicies(), steps: [any AdmissionStep] = [], matcher: (any AdmissionMatcher)? = nil, logger: Logger) {
        self.retention = retention
        self.steps = steps
        self.matcher = matcher
        self.queue = queue
        self.store = store
        self.clock = clock
        self.limits = limits
        self.logger = logger
        receivedCounter = Counter(label: "vigil_events_received_total")
        acceptedCounter = Counter(label: "vigil_events_accepted_total")
        duplicateCounter = Counter(label: "vigil_events_duplicates_total")
    }

    /// Marks keys of records already in the queue as pending (called at start-up with what
    /// the spool still holds).
    public func restorePending(_ records: [[UInt8]]) {
        var restored = 0
        pending.withLock { pending in
            for bytes in records {
                if case .event(let event)? = IntakeRecord.decode(bytes) {
                    if !event.keyIsUnique { pending[event.tenant, default: []].insert(event.key) }
                    unstoredByIngest.withLock { $0[event.ingested, default: 0] += 1 }
                    restored += 1
                }
            }
        }
        if restored > 0 { logger.debug("Restored pending keys from the intake spool", metadata: ["events": "\(restored)"]) }
    }

    /// Called by the pipeline once events are stored.
    public func markStored(_ events: [StoredEvent]) {
        // By index, reading fields in place: a copy of each event would retain a dozen strings.
        pending.withLock { pending in
            // A tenant's set is moved out and back once per run of its events (a batch is
            // nearly always one tenant's), not looked up by name for every event.
            Self.forEachRun(in: events, same: { events[$0].tenant == events[$1].tenant }) { run in
                let tenant = events[run.lowerBound].tenant
                guard var keys = pending.removeValue(forKey: tenant) else { return }
                for index in run where !events[index].keyIsUnique { keys.remove(events[index].key) }
                if !keys.isEmpty { pending[tenant] = consume keys }
            }
        }
        unstoredByIngest.withLock { counts in
            // A request's events share their receive time: counted down once per run of them.
            Self.forEachRun(in: events, same: { events[$0].ingested == events[$1].ingested }) { run in
                let ingested = events[run.lowerBound].ingested
                guard let count = counts[ingested] else { return }
                if count <= run.count { counts.removeValue(forKey: ingested) } else { counts[ingested] = count - run.count }
            }
        }
    }

    /// Calls `body` with each run of consecutive positions of `events` that `same` (two
    /// positions) puts together, in order. Positions, not events: a copy of an event retains
    /// a dozen strings.
    static func forEachRun(in events: [StoredEvent], same: (Int, Int) -> Bool, _ body: (Range<Int>) -> Void) {
        var start = events.startIndex
        while start < events.endIndex {
            var end = start + 1
            while end < events.endIndex, same(start, end) { end += 1 }
            body(start..<end)
            start = end
        }
    }

    /// The receive time of the oldest event acknowledged but not yet stored; nil when the
    /// store holds everything acknowledged. Events received later than this are not all
    /// visible in the store yet.
    public func oldestUnstoredIngest() -> EpochMillis? {
        unstoredByIngest.withLock { $0.keys.min() }
    }

    /// Whether ingest has paused: no request is being admitted, everything acknowledged is
    /// stored, and no request came in the last `millis`.
    public func isIdle(forMillis millis: Int64) -> Bool {
        let drained = unstoredByIngest.withLock { $0.isEmpty }
        return drained && clock.now() - lastReceived.load(ordering: .relaxed) >= millis
    }

    /// Admits a request's items for a tenant.
    /// - Returns: the status of every item, in order.
    /// - Throws: `IntakeError` when the queue refuses (full, disk full); then nothing was kept.
    public func submit(tenant: TenantName, source: String, items: [DecodedItem], quarantineFailures: Bool = true) async throws -> IngestOutcome {
        // The receive time is taken under the lock that also marks the request in flight: a
        // detection window that closes at `now` either sees this mark (and stops before it) or
        // was computed before this receive time — so no window closes over events that are
        // still being admitted (between receipt and the append, they are neither stored nor
        // counted as unstored otherwise).
        let received = unstoredByIngest.withLock { counts in
            let now = clock.now()
            counts[now, default: 0] += 1
            lastReceived.store(now, ordering: .relaxed)
            return now
        }
        defer { removeUnstored(received, count: 1) }
        // After the receive time: a rule adopted before it is in this matcher (see `AdmissionMatcher`).
        let rules = matcher?.matcher(for: tenant)
        receivedCounter.increment(by: items.count)
        var statuses = [ItemStatus](repeating: .accepted, count: items.count)
        // Events are kept in one array and referred to by position from here on: each copy of
        // an event (into a tuple, a second array, a record) retains a dozen strings.
        var records: [[UInt8]] = []
        // Each record as it was encoded, for the queue to hand to the pipeline as it is.
        var decoded: [IntakeRecord?] = []
        // Optional so that an admitted event can be moved into its record instead of copied.
        var events: [StoredEvent?] = []
        // Each event's key, apart: reading `events[i]!.key` copied the whole optional event.
        var eventKeys: [EventKey] = []
        // Unique keys (`StoredEvent.keyIsUnique`, a syslog frame's) need no duplicate check:
        // they are neither reserved as pending nor looked up in the store.
        var uniqueKeys: [Bool] = []
        var itemOfEvent: [Int] = []
        var ordinals: [EventKey: Int] = [:]
        ordinals.reserveCapacity(items.count)
        let firstKeptDay = retention.firstKeptDay(for: tenant, now: received)
        // By index: the items are read where they are (an enumerated copy retained each document).
        for index in items.indices {
            // Switched over where it is and moved on: a bound event was copied into the array.
            let admission = normalize(items[index], tenant: tenant, source: source, received: received, firstKeptDay: firstKeptDay, rules: rules, ordinals: &ordinals)
            switch consume admission {
            case .event(let event):
                eventKeys.append(event.key)
                uniqueKeys.append(event.keyIsUnique)
                events.append(consume event)
                itemOfEvent.append(index)
            case .quarantine(let rejection):
                statuses[index] = .quarantined(rejection.reason, detail: rejection.detail)
                // A replay leaves what still fails where it is instead of quarantining it twice.
                if quarantineFailures {
                    records.append(IntakeRecord.quarantine(rejection).encoded())
                    decoded.append(.quarantine(rejection))
                }
            }
        }

        // Reserve keys: a key already pending, or twice in this request, is a duplicate.
        var reserved: [Int] = []
        // The reserved keys that are not unique, which release and the store's check take.
        var checked: [EventKey] = []
        let toCheck = uniqueKeys.count { !$0 }
        if toCheck == 0 {
            reserved = Array(events.indices)
        } else {
            pending.withLock { pending in
                // The tenant's set is moved out and back (not copied: it would copy every key), so
                // the tenant is looked up twice per request instead of once per event.
                var keys = pending.removeValue(forKey: tenant) ?? []
                // Room for the request at once: grown one doubling at a time, the set rehashed
                // every key it held each time.
                keys.reserveCapacity(keys.count + toCheck)
                for position in events.indices {
                    if uniqueKeys[position] {
                        reserved.append(position)
                    } else if keys.insert(eventKeys[position]).inserted {
                        reserved.append(position)
                        checked.append(eventKeys[position])
                    } else {
                        statuses[itemOfEvent[position]] = .duplicate
                    }
                }
                if !keys.isEmpty { pending[tenant] = consume keys }
            }
        }
        let stored: Set<EventKey>
        do {
            stored = checked.isEmpty ? [] : try await store.existingKeys(tenant: tenant, keys: checked)
        } catch {
            release(tenant, checked)
            throw error
        }
        // Admitted keys that are not unique (released if the append fails), and the count of all.
        var admitted: [EventKey] = []
        var admittedCount = 0
        var alreadyStored: [EventKey] = []
        for position in reserved {
            let key = eventKeys[position]
            if !uniqueKeys[position], stored.contains(key) {
                statuses[itemOfEvent[position]] = .duplicate
                alreadyStored.append(key)
            } else {
                if !uniqueKeys[position] { admitted.append(key) }
                admittedCount += 1
                var event: StoredEvent?
                swap(&event, &events[position])
                records.append(IntakeRecord.encoded(event!))
                decoded.append(.event(event.take()!))
            }
        }
        release(tenant, alreadyStored)
        // Counted before the append: the pipeline may store them before append returns.
        if admittedCount > 0 { unstoredByIngest.withLock { $0[received, default: 0] += admittedCount } }
        do {
            try await queue.append(records, decoded: consume decoded)
        } catch {
            release(tenant, admitted)
            removeUnstored(received, count: admittedCount)
            throw error
        }
        let outcome = IngestOutcome(statuses: statuses)
        acceptedCounter.increment(by: outcome.accepted)
        duplicateCounter.increment(by: outcome.duplicates)
        for status in statuses {
            if case .quarantined(let reason, _) = status {
                Counter(label: "vigil_events_quarantined_total", dimensions: [("reason", reason.rawValue)]).increment()
            }
        }
        return outcome
    }

    func removeUnstored(_ received: EpochMillis, count: Int) {
        guard count > 0 else { return }
        unstoredByIngest.withLock { counts in
            let left = (counts[received] ?? 0) - count
            if left <= 0 { counts.removeValue(forKey: received) } else { counts[received] = left }
        }
    }

    func release(_ tenant: TenantName, _ keys: [EventKey]) {
        guard !keys.isEmpty else { return }
        pending.withLock { pending in
            for key in keys { pending[tenant]?.remove(key) }
        }
    }

    // MARK: - Normalization

    /// `firstKeptDay`: the tenant's retention at `received` (`RetentionPolicies.firstKeptDay`),
    /// looked up once per request.
    func normalize(_ item: DecodedItem, tenant: TenantName, source: String, received: EpochMillis, firstKeptDay: Int64, rules: (any EventMatcher)?,
                   ordinals: inout [EventKey: Int]) -> Admission {
        func reject(_ reason: QuarantineReason, _ detail: String, _ raw: [UInt8]) -> Admission {
            .quarantine(QuarantineItem(tenant: tenant, reason: reason, detail: detail, source: source, received: received,
                                    raw: Array(raw.prefix(limits.quarantineRawBytes))))
        }
        let candidate: Candidate
        switch item {
        case .rejected(let reason, let detail, let raw): return reject(reason, detail, raw)
        case .candidate(let c): candidate = c
        }
        var fields: JSONObject
        if let flat = candidate.flat {
            if let admitted = admitFlat(flat, candidate, tenant: tenant, received: received, firstKeptDay: firstKeptDay, rules: rules) { return admitted }
            fields = flat.object()
        } else {
            fields = FieldNesting.nest(candidate.object)
        }
        var found: EpochMillis?
        for step in steps where step.appliesToNormalized || !candidate.normalized {
            if let better = step.apply(to: &fields, received: candidate.defaultTimestamp ?? received) { found = better }
        }

        var timestampField = candidate.timestamp
        if timestampField == .absent, let found { timestampField = .millis(found) }
        let timestamp: EpochMillis
        switch timestampField {
        case .absent: timestamp = candidate.defaultTimestamp ?? received
        case .invalid(let detail): return reject(.invalidField, detail, candidate.raw)
        case .millis(let millis):
            guard millis >= received - limits.maxPastMillis, millis <= received + limits.maxFutureMillis else {
                return reject(.timestampOutOfRange, "@timestamp \(Timestamp.formatRFC3339(millis)) is outside the accepted range of \(limits.maxPastMillis / 86_400_000) days back and \(limits.maxFutureMillis / 3_600_000) hours ahead", candidate.raw)
            }
            timestamp = millis
        }
        guard Timestamp.day(of: timestamp) >= firstKeptDay else {
            return reject(.timestampOutOfRange, "@timestamp \(Timestamp.formatRFC3339(timestamp)) is older than the tenant's retention of \(retention.days(for: tenant)) days", candidate.raw)
        }
        if let message = fields["message"], message.stringValue == nil {
            return reject(.invalidField, "message must be a string", candidate.raw)
        }

        // Identity fields move under vigil.*.
        var vigil = fields.removeValue(forKey: "vigil")?.objectValue ?? JSONObject()
        vigil["tenant"] = .string(tenant.rawValue)
        let eventIDValue = fields.removeValue(forKey: "event_id")
        var eventID = candidate.transportID
        if eventID == nil, let eventIDValue {
            guard let text = eventIDValue.scalarText, !text.isEmpty else {
                return reject(.invalidField, "event_id must be a non-empty string", candidate.raw)
            }
            eventID = text
        }
        if let eventID, eventID.utf8.count > 512 {
            return reject(.invalidField, "event_id is longer than 512 bytes", candidate.raw)
        }
        let sourceIDValue = fields.removeValue(forKey: "source_id")
        let seqValue = fields.removeValue(forKey: "seq")
        var sourceSeq: (String, Int64)?
        if sourceIDValue != nil || seqValue != nil {
            guard case .string(let sourceID)? = sourceIDValue, !sourceID.isEmpty, sourceID.utf8.count <= 256 else {
                return reject(.invalidField, "source_id must be a non-empty string of at most 256 bytes when seq is given", candidate.raw)
            }
            guard case .int(let seq)? = seqValue, seq >= 0 else {
                return reject(.invalidField, "seq must be a non-negative integer when source_id is given", candidate.raw)
            }
            sourceSeq = (sourceID, seq)
            vigil["source_id"] = .string(sourceID)
            vigil["seq"] = .int(seq)
        }
        if let eventID { vigil["event_id"] = .string(eventID) }

        var key: EventKey
        if let eventID, candidate.idIsServers {
            key = Self.serverIDKey(tenant: tenant.rawValue, id: eventID, timestamp: timestamp)
        } else if let eventID {
            key = Self.key(["e", tenant.rawValue, eventID])
        } else if let (sourceID, seq) = sourceSeq {
            key = Self.key(["s", tenant.rawValue, sourceID, String(seq)])
        } else {
            // Content key: the same line with the same time is the same event. The n-th
            // identical copy inside one request gets ordinal n, so a request's own repeats
            // are kept while a retry of the whole request is recognised.
            // The key starts with the event's second (`EventKey(second:digest:)`): the digest
            // covers the timestamp, so a copy of the event has the same second.
            var hasher = SHA256()
            Self.withContentKeyPrefix(tenant: tenant.rawValue, timestamp: timestamp) { hasher.update(bufferPointer: $0) }
            hasher.update(data: candidate.raw)
            let second = timestamp / 1000  // before 1970: EventKey counts it as second 0
            key = hasher.finalize().withUnsafeBytes { EventKey(second: second, digest: $0) }
            // One lookup: read the count and add one to it in place.
            let ordinal = { (count: inout Int) -> Int in
                defer { count += 1 }
                return count
            }(&ordinals[key, default: 0])
            if ordinal > 0 {
                key = EventKey(second: second, digest: Self.key(["o", tenant.rawValue, key.description, String(ordinal)]).bytes)
            }
        }
        fields["vigil"] = .object(vigil)
        // Matched on the fields as they will be stored (the matcher keeps no reference to them).
        let matched = rules?.tags(fields) ?? []
        // Encoded for the queue here, where `fields` is the only reference to the document.
        var event = StoredEvent(tenant: tenant, key: key, timestamp: timestamp, ingested: received, fields: fields)
        event.matched = matched
        event.keyIsUnique = eventID != nil && candidate.idIsServers
        return .event(event)
    }

    /// Admits flat fields (`FlatFields`, a syslog frame's) as they are, without their nested
    /// document, when nothing in admission would change them: every step leaving them
    /// unchanged, a server id, a time in range. Nil sends them the usual way (their nested
    /// document), which also makes every rejection's reason. Per-event rules match the nested
    /// fields the document way would have stored; the event is still encoded from the flat ones.
    /// Top-level fields admission moves under `vigil.*` (or reads for the key): flat fields
    /// holding one go the document's way.
    static let identityKeys = ["vigil", "event_id", "source_id", "seq"]

    func admitFlat(_ flat: FlatFields, _ candidate: Candidate, tenant: TenantName, received: EpochMillis, firstKeptDay: Int64,
                   rules: (any EventMatcher)?) -> Admission? {
        guard let eventID = candidate.transportID, candidate.idIsServers, !eventID.isEmpty, eventID.utf8.count <= 512,
              !Self.identityKeys.contains(where: flat.schema.topLevelKeys.contains)
        else { return nil }
        for step in steps where step.appliesToNormalized || !candidate.normalized {
            guard step.leavesUnchanged(flat) else { return nil }
        }
        let timestamp: EpochMillis
        switch candidate.timestamp {
        case .absent: timestamp = candidate.defaultTimestamp ?? received
        case .invalid: return nil
        case .millis(let millis):
            guard millis >= received - limits.maxPastMillis, millis <= received + limits.maxFutureMillis else { return nil }
            timestamp = millis
        }
        guard Timestamp.day(of: timestamp) >= firstKeptDay else { return nil }
        let added = JSONObject([("vigil", .object(JSONObject([("tenant", .string(tenant.rawValue)), ("event_id", .string(eventID))])))])
        var event = StoredEvent(tenant: tenant, key: Self.serverIDKey(tenant: tenant.rawValue, id: eventID, timestamp: timestamp), timestamp: timestamp,
                                ingested: received, flat: flat, appending: added.members)
        event.keyIsUnique = true
        // The fields `normalize` matches: the nested document, `vigil` last.
        if let rules { event.matched = rules.tags(flat: flat, appending: added) }
        return .event(event)
    }

    /// Runs quarantined items through the current pipeline again.
    /// - Returns: each item's new status; `.accepted` and `.duplicate` mean it is now stored
    ///   and may leave the quarantine. Nothing is quarantined a second time.
    public func replay(tenant: TenantName, items: [QuarantineItem]) async throws -> [ItemStatus] {
        var decoded: [DecodedItem] = []
        for item in items {
            var one: DecodedItem
            switch item.reason {
            case .unknownTenant:
                // The tenant the sender meant is not known here: keep it for an operator.
                one = .rejected(.unknownTenant, detail: item.detail, raw: item.raw)
            default:
                switch item.source {
                case "hec": one = HECDecoder.decodeOne(item.raw, limits: limits)
                case "hec_raw":
                    one = (try? HECDecoder.decodeRaw(item.raw, host: nil, source: nil, sourcetype: nil, limits: limits).first)
                        ?? .rejected(.unparseable, detail: "empty line", raw: item.raw)
                default: one = NativeDecoder.decodeObjectLine(item.raw[...], lineNumber: 1, limits: limits, timestampKeys: ["@timestamp"])
                }
            }
            if case .candidate(var candidate) = one {
                candidate.defaultTimestamp = item.received
                one = .candidate(candidate)
            }
            decoded.append(one)
        }
        return try await submit(tenant: tenant, source: "replay", items: decoded, quarantineFailures: false).statuses
    }

    enum Admission {
        case event(StoredEvent)
        case quarantine(QuarantineItem)
    }

    /// The bytes a content key's digest starts with, `h\0<tenant>\0<timestamp>\0`, made on
    /// the stack: as a string turned into an array they were two allocations per event.
    static func withContentKeyPrefix<Result>(tenant: String, timestamp: Int64, _ body: (UnsafeRawBufferPointer) -> Result) -> Result {
        var tenant = tenant
        return tenant.withUTF8 { name in
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: name.count + 24) { out in
                var n = 0
                func put(_ byte: UInt8) {
                    out[n] = byte
                    n += 1
                }
                put(UInt8(ascii: "h"))
                put(0)
                for byte in name { put(byte) }
                put(0)
                if timestamp < 0 { put(UInt8(ascii: "-")) }
                // The digits of the magnitude (Int64.min has no positive counterpart), in order.
                var magnitude = timestamp.magnitude, digits = 0
                repeat {
                    digits += 1
                    magnitude /= 10
                } while magnitude > 0
                magnitude = timestamp.magnitude
                for i in stride(from: n + digits - 1, through: n, by: -1) {
                    out[i] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                    magnitude /= 10
                }
                n += digits
                put(0)
                return body(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(out)[..<n]))
            }
        }
    }

    /// The first 16 bytes of `SHA-256(part, 0, part, 0, ...)`, big endian.
    static func key(_ parts: [String]) -> EventKey {
        digest(parts) { digest in
            EventKey(high: UInt64(bigEndian: digest.loadUnaligned(as: UInt64.self)),
                     low: UInt64(bigEndian: digest.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
        }
    }

    /// `SHA-256(part, 0, part, 0, ...)`, handed to `body`. The parts are written one after the
    /// other into one temporary buffer and hashed at once: updating the hasher part by part
    /// (two calls a part) cost more than the hashing itself, for every event with an id.
    static func digest<T>(_ parts: [String], _ body: (UnsafeRawBufferPointer) -> T) -> T {
        let size = parts.reduce(0) { $0 + $1.utf8.count + 1 }
        return withUnsafeTemporaryAllocation(byteCount: size, alignment: 1) { buffer in
            var offset = 0
            for var part in parts {
                part.withUTF8 { bytes in
                    if let base = bytes.baseAddress { (buffer.baseAddress! + offset).copyMemory(from: base, byteCount: bytes.count) }
                    offset += bytes.count
                }
                buffer[offset] = 0
                offset += 1
            }
            return SHA256.hash(data: UnsafeRawBufferPointer(buffer)).withUnsafeBytes(body)
        }
    }

    /// The key of an event whose id the server gave it (`Candidate.idIsServers`): the event's
    /// second, then 11 bytes of `SHA-256("e", tenant, id)` — time-ordered like content keys.
    static func serverIDKey(tenant: String, id: String, timestamp: EpochMillis) -> EventKey {
        digest(["e", tenant, id]) { EventKey(second: timestamp / 1000, digest: $0) }
    }
}
