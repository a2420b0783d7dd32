import Foundation
import Logging
import Synchronization
import Testing
import VigilCore
import VigilQuery
import VigilStorage
@testable import VigilIntake

/// A store that splits writes in two stages like the SQLite store and checks the order the
/// pipeline drives them in. The inserts of chosen claims fail once.
final class StagedStore: EventStore {
    let inner = InMemoryEventStore()
    let failingClaims: Set<Int>

    struct State {
        var claims = 0
        var failed: Set<Int> = []
        /// Claims whose insert was started (a claim overlapping a failed insert is dropped and
        /// its batch claimed again).
        var attempted: Set<Int> = []
        /// The newest record sequence an insert has stored: SQLite partitions skip records at
        /// or below it, so an insert of anything new below it would lose events.
        var newest: IntakeSequence?
        var violations: [String] = []
        var inserting = false
    }
    let state = Mutex(State())

    struct Rows: Sendable {
        var claim: Int
        var events: [StoredEvent]
        var quarantined: [QuarantineItem]
    }

    init(failingClaims: Set<Int>) { self.failingClaims = failingClaims }

    func claim(events: [StoredEvent], quarantined: [QuarantineItem]) async throws -> ClaimedBatch {
        let number = state.withLock { state in
            defer { state.claims += 1 }
            return state.claims
        }
        return ClaimedBatch(claimed: events, rows: Rows(claim: number, events: events, quarantined: quarantined))
    }

    func insert(_ batch: ClaimedBatch) async throws -> Int {
        let rows = batch.rows as! Rows
        let fail = state.withLock { state -> Bool in
            if state.inserting { state.violations.append("two inserts at once") }
            state.inserting = true
            state.attempted.insert(rows.claim)
            guard failingClaims.contains(rows.claim), !state.failed.contains(rows.claim) else { return false }
            state.failed.insert(rows.claim)
            state.inserting = false
            return true
        }
        if fail { throw StoreError(.unavailable, "injected failure of claim \(rows.claim)") }
        await Task.yield()  // give an out-of-order insert a chance to overlap
        let stored = try await inner.write(events: rows.events, quarantined: rows.quarantined)
        state.withLock { state in
            state.inserting = false
            if stored > 0, let first = rows.events.compactMap(\.sequence).min(), let newest = state.newest, first <= newest {
                state.violations.append("claim \(rows.claim) stored records from \(first.position) after \(newest.position)")
            }
            if let last = rows.events.compactMap(\.sequence).max() { state.newest = max(state.newest ?? last, last) }
        }
        return stored
    }

    func write(events: [StoredEvent], quarantined: [QuarantineItem]) async throws -> Int {
        try await inner.write(events: events, quarantined: quarantined)
    }
    func existingKeys(tenant: TenantName, keys: [EventKey]) async throws -> Set<EventKey> { try await inner.existingKeys(tenant: tenant, keys: keys) }
    func search(_ request: SearchRequest) async throws -> SearchResult { try await inner.search(request) }
    func tail(tenant: TenantName, query: Query, cursor: TailCursor?, now: EpochMillis, limit: Int, budget: QueryBudget) async throws -> (hits: [SearchHit], cursor: TailCursor) {
        try await inner.tail(tenant: tenant, query: query, cursor: cursor, now: now, limit: limit, budget: budget)
    }
    func eventsIngested(tenant: TenantName, query: Query, from: EpochMillis, to: EpochMillis, after: (EpochMillis, EventKey)?, limit: Int) async throws -> [Event] { [] }
    func quarantine(tenant: TenantName, reason: QuarantineReason?, from: EpochMillis, to: EpochMillis, limit: Int) async throws -> [QuarantineItem] {
        try await inner.quarantine(tenant: tenant, reason: reason, from: from, to: to, limit: limit)
    }
    func quarantine(tenant: TenantName, ids: [Int64]) async throws -> [QuarantineItem] { try await inner.quarantine(tenant: tenant, ids: ids) }
    func removeQuarantined(tenant: TenantName, ids: [Int64]) async throws { try await inner.removeQuarantined(tenant: tenant, ids: ids) }
    func dropPartitions(tenant: TenantName, before day: Int64) async throws -> [Int64] { try await inner.dropPartitions(tenant: tenant, before: day) }
    func purgeQuarantine(tenant: TenantName, receivedBefore time: EpochMillis) async throws -> Int { try await inner.purgeQuarantine(tenant: tenant, receivedBefore: time) }
    func storedTenants() throws -> [TenantName] { try inner.storedTenants() }
}

struct PipelineServiceTests {
    let now: EpochMillis = 1_795_514_400_000
    let tenant = TenantName("acme")!

    /// Ten requests of three events, batches of four records: the pipeline claims a batch
    /// while the one before is inserted. Inserts of the 2nd and 5th claims fail once; every
    /// event ends up stored once, inserts never overlap nor go back in the queue, and the
    /// spool is committed to its end.
    @Test(arguments: [Set<Int>(), [1, 4], [0, 1, 2]])
    func failedInsertsAreWrittenAgainInQueueOrderAndNothingIsLostOrDoubled(failing: Set<Int>) async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pipeline-\(UUID().uuidString)")
        let spool = try Spool(configuration: SpoolConfiguration(directory: dir))
        let store = StagedStore(failingClaims: failing)
        let service = IntakeService(queue: spool, store: store, clock: ManualClock(now), limits: IntakeLimits(), logger: Logger(label: "test"))
        for request in 0..<10 {
            let text = (0..<3).map { #"{"event_id":"r\#(request)-\#($0)","message":"m"}"# }.joined(separator: "\n")
            let outcome = try await service.submit(tenant: tenant, source: "test", items: NativeDecoder.decode(Array(text.utf8), limits: IntakeLimits()))
            #expect(outcome.accepted == 3)
        }
        var pipeline = PipelineService(queue: spool, store: store, intake: service, logger: Logger(label: "test"))
        pipeline.batchRecords = 4
        let running = Task { try await pipeline.run() }
        // Polls until every event is stored and the frontier is released (all committed).
        let deadline = Date().addingTimeInterval(30)
        while store.inner.events.withLock({ $0.count }) < 30 || service.oldestUnstoredIngest() != nil {
            try #require(Date() < deadline, "the pipeline did not store everything")
            try await Task.sleep(for: .milliseconds(5))
        }
        running.cancel()
        _ = try? await running.value
        let stored = store.inner.events.withLock { $0 }
        #expect(stored.count == 30)
        #expect(Set(stored.map(\.key)).count == 30)
        let state = store.state.withLock { $0 }
        #expect(state.violations.isEmpty, "\(state.violations)")
        #expect(state.failed == failing.intersection(state.attempted))
        #expect(failing.isEmpty || !state.failed.isEmpty)
        let rest = try await spool.nextBatch(maxRecords: 100, drainOnly: true)
        #expect(rest == nil)
    }
}
