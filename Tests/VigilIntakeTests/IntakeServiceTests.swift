import Foundation
import Logging
import Synchronization
import Testing
import VigilCore
import VigilQuery
import VigilStorage
@testable import VigilIntake

/// An in-memory store for the admission logic; the SQLite store has its own tests.
final class InMemoryEventStore: EventStore {
    let events = Mutex<[StoredEvent]>([])
    let quarantined = Mutex<[QuarantineItem]>([])

    func write(events new: [StoredEvent], quarantined items: [QuarantineItem]) async throws -> Int {
        quarantined.withLock { $0.append(contentsOf: items) }
        return events.withLock { events in
            var stored = 0
            for event in new where !events.contains(where: { $0.tenant == event.tenant && $0.key == event.key }) {
                events.append(event)
                stored += 1
            }
            return stored
        }
    }

    func existingKeys(tenant: TenantName, keys: [EventKey]) async throws -> Set<EventKey> {
        let stored = Set(events.withLock { $0.filter { $0.tenant == tenant }.map(\.key) })
        return Set(keys.filter(stored.contains))
    }

    func search(_ request: SearchRequest) async throws -> SearchResult {
        let matching = events.withLock { $0.filter { $0.tenant == request.tenant && $0.timestamp >= request.from && $0.timestamp < request.to } }
        let hits = matching.prefix(request.limit).compactMap { $0.event() }.map { SearchHit(event: $0, position: 0) }
        return .events(EventPage(hits: hits, total: matching.count, totalIsExact: true, nextCursor: nil))
    }

    func tail(tenant: TenantName, query: Query, cursor: TailCursor?, now: EpochMillis, limit: Int, budget: QueryBudget) async throws -> (hits: [SearchHit], cursor: TailCursor) {
        ([], TailCursor(since: now))
    }

    func eventsIngested(tenant: TenantName, query: Query, from: EpochMillis, to: EpochMillis, after: (EpochMillis, EventKey)?, limit: Int) async throws -> [Event] {
        []  // not used by intake tests
    }

    func quarantine(tenant: TenantName, reason: QuarantineReason?, from: EpochMillis, to: EpochMillis, limit: Int) async throws -> [QuarantineItem] {
        quarantined.withLock { $0.filter { $0.tenant == tenant && (reason == nil || $0.reason == reason) } }
    }

    func quarantine(tenant: TenantName, ids: [Int64]) async throws -> [QuarantineItem] {
        quarantined.withLock { $0.filter { $0.tenant == tenant && $0.id.map(ids.contains) == true } }
    }

    func removeQuarantined(tenant: TenantName, ids: [Int64]) async throws {
        quarantined.withLock { $0.removeAll { $0.tenant == tenant && $0.id.map(ids.contains) == true } }
    }

    func dropPartitions(tenant: TenantName, before day: Int64) async throws -> [Int64] {
        events.withLock { events in
            let days = Set(events.filter { $0.tenant == tenant && Timestamp.day(of: $0.timestamp) < day }.map { Timestamp.day(of: $0.timestamp) })
            events.removeAll { $0.tenant == tenant && Timestamp.day(of: $0.timestamp) < day }
            return days.sorted()
        }
    }

    func purgeQuarantine(tenant: TenantName, receivedBefore time: EpochMillis) async throws -> Int {
        quarantined.withLock { items in
            let before = items.count
            items.removeAll { $0.tenant == tenant && $0.received < time }
            return before - items.count
        }
    }

    func storedTenants() throws -> [TenantName] { Array(Set(events.withLock { $0.map(\.tenant) })).sorted() }
}

struct IntakeServiceTests {
    let now: EpochMillis = 1_795_514_400_000
    let tenant = TenantName("acme")!

    func makeService() throws -> (IntakeService, Spool, InMemoryEventStore) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("intake-\(UUID().uuidString)")
        let spool = try Spool(configuration: SpoolConfiguration(directory: dir))
        let store = InMemoryEventStore()
        let service = IntakeService(queue: spool, store: store, clock: ManualClock(now), limits: IntakeLimits(), logger: Logger(label: "test"))
        return (service, spool, store)
    }

    func lines(_ text: String) -> [DecodedItem] { NativeDecoder.decode(Array(text.utf8), limits: IntakeLimits()) }

    /// Moves everything in the spool into the store with the pipeline's own step.
    func drain(_ spool: Spool, _ store: InMemoryEventStore, _ service: IntakeService) async throws {
        let pipeline = PipelineService(queue: spool, store: store, intake: service, logger: Logger(label: "test"))
        while let batch = try await spool.nextBatch(maxRecords: 1000, drainOnly: true) {
            try await pipeline.process(batch, stored: .init(label: "test"))
        }
    }

    @Test func theUnstoredFrontierHoldsUntilThePipelineStoresAndIgnoresDuplicates() async throws {
        let (service, spool, store) = try makeService()
        #expect(service.oldestUnstoredIngest() == nil)
        _ = try await service.submit(tenant: tenant, source: "test", items: lines("{\"event_id\":\"f1\"}\n{\"event_id\":\"f2\"}"))
        #expect(service.oldestUnstoredIngest() == now)
        try await drain(spool, store, service)
        #expect(service.oldestUnstoredIngest() == nil)
        // A duplicate is never queued, so it holds nothing back.
        _ = try await service.submit(tenant: tenant, source: "test", items: lines("{\"event_id\":\"f1\"}"))
        #expect(service.oldestUnstoredIngest() == nil)
    }

    /// Looks at whether the intake calls itself idle while a request is being admitted.
    final class IdleProbe: AdmissionStep, Sendable {
        let service = Mutex<IntakeService?>(nil)
        let seen = Mutex<[Bool]>([])
        func apply(to fields: inout JSONObject, received: EpochMillis) -> EpochMillis? {
            if let service = service.withLock({ $0 }) { seen.withLock { $0.append(service.isIdle(forMillis: 0)) } }
            return nil
        }
    }

    /// The scheduler runs a held-back tick again once the intake is idle: never while a
    /// request is admitted or its events wait to be stored, nor until ingest has paused.
    @Test func theIntakeIsIdleOnceEverythingIsStoredAndIngestPauses() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("intake-\(UUID().uuidString)")
        let spool = try Spool(configuration: SpoolConfiguration(directory: dir))
        let clock = ManualClock(now)
        let probe = IdleProbe()
        let store = InMemoryEventStore()
        let service = IntakeService(queue: spool, store: store, clock: clock, limits: IntakeLimits(), steps: [probe], logger: Logger(label: "test"))
        probe.service.withLock { $0 = service }
        #expect(service.isIdle(forMillis: 50), "nothing received yet")
        _ = try await service.submit(tenant: tenant, source: "test", items: lines("{\"event_id\":\"a\"}"))
        #expect(probe.seen.withLock { $0 } == [false], "a request is being admitted")
        clock.advance(byMillis: 1_000)
        #expect(!service.isIdle(forMillis: 50), "queued, not stored")
        try await drain(spool, store, service)
        #expect(service.isIdle(forMillis: 50))
        _ = try await service.submit(tenant: tenant, source: "test", items: lines("{\"event_id\":\"b\"}"))
        try await drain(spool, store, service)
        clock.advance(byMillis: 49)
        #expect(!service.isIdle(forMillis: 50), "stored, but a request came 49 ms ago")
        clock.advance(byMillis: 1)
        #expect(service.isIdle(forMillis: 50))
    }

    struct TagStep: AdmissionStep {
        func apply(to fields: inout JSONObject, received: EpochMillis) -> EpochMillis? {
            fields["tags"] = .array([.string("stepped")])
            return fields["device_time"].flatMap { if case .int(let t) = $0 { return t } else { return nil } }
        }
    }

    /// Looks at the unstored frontier while a request is being admitted (before its append).
    final class FrontierProbe: AdmissionStep, Sendable {
        let service = Mutex<IntakeService?>(nil)
        let seen = Mutex<[EpochMillis?]>([])
        func apply(to fields: inout JSONObject, received: EpochMillis) -> EpochMillis? {
            let frontier = service.withLock { $0 }?.oldestUnstoredIngest()
            seen.withLock { $0.append(frontier) }
            return nil
        }
    }

    /// Between receipt and the append a request's events are neither stored nor queued; the
    /// frontier must hold at their receive time then too, or a detection window could close
    /// over them (a race seen with a 0 s lag).
    @Test func theUnstoredFrontierHoldsWhileARequestIsAdmitted() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("intake-\(UUID().uuidString)")
        let spool = try Spool(configuration: SpoolConfiguration(directory: dir))
        let probe = FrontierProbe()
        let service = IntakeService(queue: spool, store: InMemoryEventStore(), clock: ManualClock(now), limits: IntakeLimits(),
                                    steps: [probe], logger: Logger(label: "test"))
        probe.service.withLock { $0 = service }
        _ = try await service.submit(tenant: tenant, source: "test", items: lines("{\"event_id\":\"a\"}"))
        #expect(probe.seen.withLock { $0 } == [now])
        #expect(service.oldestUnstoredIngest() == now, "queued, not stored")
        // A request that admits nothing leaves no mark behind.
        _ = try await service.submit(tenant: tenant, source: "test", items: lines("{\"event_id\":\"a\"}"))
        try await drain(spool, InMemoryEventStore(), service)
        #expect(service.oldestUnstoredIngest() == nil)
    }

    @Test func admissionStepsRewriteFieldsAndTheirTimestampIsRangeChecked() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("intake-\(UUID().uuidString)")
        let spool = try Spool(configuration: SpoolConfiguration(directory: dir))
        let store = InMemoryEventStore()
        let service = IntakeService(queue: spool, store: store, clock: ManualClock(now), limits: IntakeLimits(), steps: [TagStep()], logger: Logger(label: "test"))
        let outcome = try await service.submit(tenant: tenant, source: "test", items: lines("""
        {"message":"a","device_time":\(now - 5000)}
        {"message":"b","device_time":1000}
        """))
        #expect(outcome.accepted == 1)
        guard case .quarantined(.timestampOutOfRange, _) = outcome.statuses[1] else { Issue.record("expected out of range"); return }
        try await drain(spool, store, service)
        let stored = store.events.withLock { $0 }
        #expect(stored.count == 1)
        #expect(stored.first?.timestamp == now - 5000)
        #expect(stored.first.map { String(decoding: $0.document, as: UTF8.self).contains("stepped") } == true)
    }

    /// A content key's digest starts with the bytes it always had (`h\0<tenant>\0<ms>\0`):
    /// a key that changed would let a replay after an upgrade store an event twice.
    @Test(arguments: [Int64(0), 7, 999, 1_795_478_400_123, -1, -86_400_000, .max, .min])
    func contentKeyPrefixIsTheBytesItWas(_ timestamp: Int64) {
        for tenant in ["default", "acme", String(repeating: "t", count: 64)] {
            let bytes = IntakeService.withContentKeyPrefix(tenant: tenant, timestamp: timestamp) { Array($0) }
            #expect(bytes == Array("h\u{0}\(tenant)\u{0}\(timestamp)\u{0}".utf8))
        }
    }

    @Test func countsAcceptedDuplicatesAndQuarantined() async throws {
        let (service, spool, store) = try makeService()
        let outcome = try await service.submit(tenant: tenant, source: "test", items: lines("""
        {"event_id":"a","message":"one"}
        {"event_id":"a","message":"one again"}
        {"message":5}
        {"@timestamp":"2020-01-01T00:00:00Z","message":"old"}
        {"message":"no id"}
        """))
        #expect(outcome.accepted == 2)
        #expect(outcome.duplicates == 1)
        #expect(outcome.quarantined == 2)
        #expect(outcome.statuses[2] == .quarantined(.invalidField, detail: "message must be a string"))
        guard case .quarantined(.timestampOutOfRange, _) = outcome.statuses[3] else { Issue.record("expected out of range"); return }
        try await drain(spool, store, service)
        #expect(store.events.withLock { $0.count } == 2)
        #expect(store.quarantined.withLock { $0.map(\.reason) } == [.invalidField, .timestampOutOfRange])
    }

    @Test func aRetriedBatchIsAllDuplicatesBeforeAndAfterStorage() async throws {
        let (service, spool, store) = try makeService()
        let batch = """
        {"@timestamp":"2026-11-24T09:00:00Z","message":"same line"}
        {"@timestamp":"2026-11-24T09:00:00Z","message":"same line"}
        {"source_id":"agent-1","seq":7,"message":"x"}
        """
        #expect(try await service.submit(tenant: tenant, source: "test", items: lines(batch)).accepted == 3)
        // Before the pipeline stored anything: caught by the pending keys.
        #expect(try await service.submit(tenant: tenant, source: "test", items: lines(batch)).duplicates == 3)
        try await drain(spool, store, service)
        // After: caught by the store.
        #expect(try await service.submit(tenant: tenant, source: "test", items: lines(batch)).duplicates == 3)
        #expect(store.events.withLock { $0.count } == 3)
        // Another tenant is independent.
        #expect(try await service.submit(tenant: TenantName("other")!, source: "test", items: lines(batch)).accepted == 3)
    }

    /// Stored events leave the pending keys of their own tenant, in a batch whose tenants
    /// alternate too, and only their own keys: what is still queued stays pending.
    @Test func storedEventsLeaveTheirTenantsPendingKeys() async throws {
        let (service, _, _) = try makeService()
        let other = TenantName("other")!
        _ = try await service.submit(tenant: tenant, source: "test", items: lines("{\"event_id\":\"a1\"}\n{\"event_id\":\"a2\"}\n{\"event_id\":\"a3\"}"))
        _ = try await service.submit(tenant: other, source: "test", items: lines("{\"event_id\":\"b1\"}\n{\"event_id\":\"b2\"}"))
        let pending = service.pending.withLock { $0 }
        let (acme, others) = (try #require(pending[tenant]), try #require(pending[other]))
        #expect(acme.count == 3 && others.count == 2)
        func event(_ tenant: TenantName, _ key: EventKey) -> StoredEvent {
            StoredEvent(tenant: tenant, key: key, timestamp: now, ingested: now, fields: JSONObject())
        }
        let (a, b) = (acme.sorted(), others.sorted())
        service.markStored([event(tenant, a[0]), event(other, b[0]), event(other, b[1]), event(tenant, a[1])])
        let left = service.pending.withLock { $0 }
        #expect(left[tenant] == [a[2]], "the one acme event not stored yet")
        #expect(left[other]?.isEmpty ?? true)
    }

    /// Content keys start with the event's second, so the key table takes a batch of recent
    /// events at its end; an identical copy in the same request still gets a key of its own.
    @Test func contentKeysSortByTheEventsSecond() async throws {
        let (service, spool, store) = try makeService()
        let batch = """
        {"@timestamp":"2026-11-24T09:00:02.500Z","message":"later"}
        {"@timestamp":"2026-11-24T09:00:00Z","message":"same line"}
        {"@timestamp":"2026-11-24T09:00:00Z","message":"same line"}
        """
        #expect(try await service.submit(tenant: tenant, source: "test", items: lines(batch)).accepted == 3)
        try await drain(spool, store, service)
        let keys = store.events.withLock { $0.map(\.key) }
        let second = try #require(Timestamp.parseRFC3339("2026-11-24T09:00:00Z")) / 1000
        func prefix(_ second: Int64) -> [UInt8] { (0..<5).map { UInt8(truncatingIfNeeded: second >> (32 - 8 * Int64($0))) } }
        #expect(keys.map { Array($0.bytes.prefix(5)) } == [prefix(second + 2), prefix(second), prefix(second)])
        #expect(Set(keys).count == 3)
        #expect(keys[1] < keys[0] && keys[2] < keys[0])
    }

    @Test func identityFieldsMoveUnderVigil() async throws {
        let (service, spool, store) = try makeService()
        _ = try await service.submit(tenant: tenant, source: "test", items: lines(#"{"event_id":"e1","source_id":"s","seq":3,"message":"m","host.name":"h"}"#))
        try await drain(spool, store, service)
        let event = try #require(store.events.withLock { $0.first }?.event())
        let doc = JSONValue.object(event.fields)
        #expect(doc.value(atPath: "vigil.event_id") == .string("e1"))
        #expect(doc.value(atPath: "vigil.seq") == .int(3))
        #expect(doc.value(atPath: "vigil.tenant") == .string("acme"))
        #expect(doc.value(atPath: "host.name") == .string("h"))
        #expect(event.fields["event_id"] == nil)
        #expect(event.timestamp == now)
    }

    @Test(arguments: [
        #"{"source_id":"s","message":"m"}"#,
        #"{"seq":1,"message":"m"}"#,
        #"{"source_id":"s","seq":-1,"message":"m"}"#,
        #"{"event_id":"","message":"m"}"#,
        #"{"@timestamp":true,"message":"m"}"#,
    ])
    func quarantinesInvalidIdentityFields(_ line: String) async throws {
        let (service, _, _) = try makeService()
        let outcome = try await service.submit(tenant: tenant, source: "test", items: lines(line))
        guard case .quarantined(.invalidField, _) = outcome.statuses[0] else { Issue.record("expected invalid_field for \(line)"); return }
    }

    @Test func aRefusedAppendReleasesItsKeys() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("intake-\(UUID().uuidString)")
        var configuration = SpoolConfiguration(directory: dir)
        configuration.maxBytes = 10
        let spool = try Spool(configuration: configuration)
        let service = IntakeService(queue: spool, store: InMemoryEventStore(), clock: ManualClock(now), limits: IntakeLimits(), logger: Logger(label: "test"))
        await #expect(throws: IntakeError.self) {
            _ = try await service.submit(tenant: tenant, source: "test", items: lines(#"{"event_id":"a","message":"m"}"#))
        }
        #expect(service.pending.withLock { $0[tenant]?.isEmpty ?? true })
    }
}
