import VigilCore
import VigilQuery

/// Why an event went to quarantine instead of the store.
public enum QuarantineReason: String, Sendable, CaseIterable, Codable {
    case malformedJSON = "malformed_json"
    case missingTimestamp = "missing_timestamp"
    case timestampOutOfRange = "timestamp_out_of_range"
    case oversize
    case invalidField = "invalid_field"
    case unknownTenant = "unknown_tenant"
    case unparseable
}

/// Where a record sits in the intake queue: (the queue's generation, its position there).
/// The same record read again, after a crash or a failed write, has the same sequence; no
/// other record has it. Store writes use it to make replays idempotent.
public struct IntakeSequence: Sendable, Hashable, Comparable {
    public var generation: Int64
    public var position: Int64

    public init(generation: Int64, position: Int64) {
        self.generation = generation
        self.position = position
    }

    public static func < (lhs: IntakeSequence, rhs: IntakeSequence) -> Bool {
        (lhs.generation, lhs.position) < (rhs.generation, rhs.position)
    }

    /// One 32-bit number for equality checks (generation and position mixed), for stores that
    /// keep a single small column: two different records share it once in 4 billion, and
    /// only a second copy of an event that meets its original's record number is affected.
    public var token: Int64 {
        var z = UInt64(bitPattern: generation) &* 0x9E37_79B9_7F4A_7C15 ^ UInt64(bitPattern: position)
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return Int64(Int32(truncatingIfNeeded: z ^ (z >> 31)))
    }
}

/// One quarantined input, kept with its reason so it can be inspected and replayed.
public struct QuarantineItem: Sendable, Equatable {
    /// The store's id, once stored.
    public var id: Int64?
    public var tenant: TenantName
    public var reason: QuarantineReason
    /// A human explanation; never contains the raw bytes.
    public var detail: String
    /// The endpoint or listener it came through (`ingest`, `hec`, `bulk`, `syslog`).
    public var source: String
    public var received: EpochMillis
    /// The raw input, cut to the quarantine's byte bound.
    public var raw: [UInt8]
    /// Its intake record, when it came through the queue (not stored with it).
    public var sequence: IntakeSequence?

    public init(id: Int64? = nil, tenant: TenantName, reason: QuarantineReason, detail: String, source: String, received: EpochMillis, raw: [UInt8],
                sequence: IntakeSequence? = nil) {
        self.sequence = sequence
        self.id = id
        self.tenant = tenant
        self.reason = reason
        self.detail = detail
        self.source = source
        self.received = received
        self.raw = raw
    }
}

/// Where normalized events are kept. Implementations: `SQLiteEventStore` (embedded).
///
/// Writes are idempotent by `Event.key`: writing an event whose key is already stored for
/// its tenant changes nothing, so replaying the intake queue after a crash never duplicates.
public protocol EventStore: Sendable {
    /// Stores events and quarantined items; returns how many events were newly stored.
    func write(events: [StoredEvent], quarantined: [QuarantineItem]) async throws -> Int
    /// The same, also returning the events this batch holds: new ones, and replays of the
    /// very records that stored them (a crash may have come between the store and what the
    /// pipeline does next). Other copies of stored events (duplicates) are not among them.
    func writeClaiming(events: [StoredEvent], quarantined: [QuarantineItem]) async throws -> (stored: Int, claimed: [StoredEvent])
    /// `writeClaiming` in two stages, so the pipeline can claim the keys of one batch while
    /// the rows of the batch before it go in: `claim` records the keys and quarantined items
    /// and builds the rows; `insert` stores them. Inserts must run in claim order, one at a
    /// time, and each exactly after its own claim (both are idempotent: a failed batch is
    /// written again from the start).
    func claim(events: [StoredEvent], quarantined: [QuarantineItem]) async throws -> ClaimedBatch
    /// The second stage of `claim`: returns how many events were newly stored.
    func insert(_ batch: ClaimedBatch) async throws -> Int
    /// The subset of `keys` already stored for the tenant.
    func existingKeys(tenant: TenantName, keys: [EventKey]) async throws -> Set<EventKey>
    /// Events or an aggregation table for a tenant-scoped, time-bounded, limited search.
    func search(_ request: SearchRequest) async throws -> SearchResult
    /// Events stored since `cursor` (nil: start now, returning no events) whose timestamp
    /// is within a day of `now`, oldest first, at most `limit`.
    func tail(tenant: TenantName, query: Query, cursor: TailCursor?, now: EpochMillis, limit: Int, budget: QueryBudget) async throws -> (hits: [SearchHit], cursor: TailCursor)
    /// Events of a tenant received (ingest time) in `[from, to)`, whatever their timestamp,
    /// that match `query`'s filter, ordered by receive time then key; at most `limit`, after
    /// `after` (the last (ingested, key) of the previous page). Detection windows read this.
    func eventsIngested(tenant: TenantName, query: Query, from: EpochMillis, to: EpochMillis, after: (EpochMillis, EventKey)?, limit: Int) async throws -> [Event]
    /// Quarantined items of a tenant, newest first.
    func quarantine(tenant: TenantName, reason: QuarantineReason?, from: EpochMillis, to: EpochMillis, limit: Int) async throws -> [QuarantineItem]
    /// Quarantined items of a tenant by id (unknown ids are skipped).
    func quarantine(tenant: TenantName, ids: [Int64]) async throws -> [QuarantineItem]
    /// Removes quarantined items that a replay stored.
    func removeQuarantined(tenant: TenantName, ids: [Int64]) async throws
    /// Drops every partition of the tenant whose UTC day is before `day`, with its
    /// idempotency keys. Returns the days dropped.
    func dropPartitions(tenant: TenantName, before day: Int64) async throws -> [Int64]
    /// Deletes quarantined items received before `time`; returns how many.
    func purgeQuarantine(tenant: TenantName, receivedBefore time: EpochMillis) async throws -> Int
    /// Tenants that have data in the store.
    func storedTenants() throws -> [TenantName]
    /// The writer has nothing queued: a moment to give back write-ahead space.
    func writerIdle() async
    /// The queries' filters evaluated on an event's fields as admission has them, where this
    /// store can do it in memory: an event matches a query only if the store's own
    /// `eventsIngested` would return it (never more); an event it cannot decide for certain,
    /// or a query it cannot evaluate, is not matched. Nil when the store has no such evaluation.
    func eventPredicates(for queries: [Query]) -> (any EventPredicates)?
}

extension EventStore {
    public func writerIdle() async {}

    public func eventPredicates(for queries: [Query]) -> (any EventPredicates)? { nil }

    /// One stage does it all for stores that do not split the work.
    public func claim(events: [StoredEvent], quarantined: [QuarantineItem]) async throws -> ClaimedBatch {
        let (stored, claimed) = try await writeClaiming(events: events, quarantined: quarantined)
        return ClaimedBatch(claimed: claimed, rows: stored)
    }

    public func insert(_ batch: ClaimedBatch) async throws -> Int {
        batch.rows as? Int ?? 0
    }
}

/// A batch whose keys are claimed (`EventStore.claim`), with the rows its store built for
/// the insert.
public struct ClaimedBatch: Sendable {
    /// The events the batch holds (see `EventStore.writeClaiming`).
    public var claimed: [StoredEvent]
    /// What the store prepared for `insert`, opaque to callers.
    public var rows: any Sendable

    public init(claimed: [StoredEvent], rows: any Sendable) {
        self.claimed = claimed
        self.rows = rows
    }
}

/// A principal behind an API key.
public enum Principal: Sendable, Equatable {
    case admin
    case tenant(TenantName)
}

/// Tenants and API keys. Keys are stored only as SHA-256 hashes.
public protocol TenantDirectory: Sendable {
    func tenantExists(_ tenant: TenantName) async throws -> Bool
    /// Creates a tenant and returns a new API key for it. Throws if it exists.
    func createTenant(_ tenant: TenantName) async throws -> String
    func listTenants() async throws -> [TenantName]
    /// Resolves a presented key; nil when unknown.
    func principal(forKey key: String) async throws -> Principal?
    /// Days of events the tenant keeps (default 30).
    func retentionDays(_ tenant: TenantName) async throws -> Int
    func setRetentionDays(_ tenant: TenantName, days: Int) async throws
    /// Search limits set for this tenant, by API name (`timeout_ms`, ...).
    func searchLimitOverrides(_ tenant: TenantName) async throws -> [String: Int]
    /// Sets (a value) or clears (nil) search limit overrides of the tenant.
    func setSearchLimitOverrides(_ tenant: TenantName, _ overrides: [String: Int?]) async throws
}

/// An error from a store, with a code fit for a metric label.
public struct StoreError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case tenantExists = "tenant_exists"
        case unknownTenant = "unknown_tenant"
        case unavailable
        case interrupted
        case cancelled
    }
    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "StoreError.\(code.rawValue): \(message)" }
}

/// A query the store refuses to plan (a field name outside the allowed alphabet, ...):
/// the caller's mistake, answered with a 4xx.
public struct QueryRefusal: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}

extension EventStore {
    /// Stores that cannot tell duplicates apart in a batch claim every event of it.
    public func writeClaiming(events: [StoredEvent], quarantined: [QuarantineItem]) async throws -> (stored: Int, claimed: [StoredEvent]) {
        (try await write(events: events, quarantined: quarantined), events)
    }
}
