import Foundation
import Logging
import VigilIntake
import Testing
import VigilCore
import VigilQuery
import VigilStorage
@testable import VigilStorageSQLite

extension SearchResult {
    /// The events of an event search (none for an aggregation).
    var events: [Event] {
        if case .events(let page) = self { return page.hits.map(\.event) }
        return []
    }

    /// The total of an event search; -1 for an aggregation, which no test expects.
    var total: Int {
        if case .events(let page) = self { return page.total }
        return -1
    }

    var table: AggregateTable? {
        if case .table(let table) = self { return table }
        return nil
    }
}

struct SQLiteEventStoreTests {
    let acme = TenantName("acme")!
    let other = TenantName("other")!
    let day: EpochMillis = 1_795_478_400_000  // 2026-11-24T00:00:00Z

    func makeStore() throws -> (SQLiteEventStore, URL) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("store-\(UUID().uuidString)", isDirectory: true)
        return (try SQLiteEventStore(dataDirectory: dir, logger: Logger(label: "test")), dir)
    }

    func event(_ tenant: TenantName, _ n: UInt64, at timestamp: EpochMillis, _ message: String, _ extra: [(String, JSONValue)] = []) -> Event {
        var fields = JSONObject([("message", .string(message))])
        for (key, value) in extra { FieldNesting.set(value, at: key, in: &fields) }
        return Event(tenant: tenant, key: EventKey(high: 0, low: n), timestamp: timestamp, ingested: timestamp + 1, fields: fields)
    }

    func search(_ store: SQLiteEventStore, _ tenant: TenantName, _ query: String, limit: Int = 100) async throws -> SearchResult {
        try await store.search(SearchRequest(tenant: tenant, query: try QueryParser().parse(query), from: day - 86_400_000, to: day + 2 * 86_400_000, limit: limit, budget: patientBudget()))
    }

    @Test func storesPartitionsPerTenantAndDayAndSearchesAcrossThem() async throws {
        let (store, dir) = try makeStore()
        let stored = try await store.write(events: [StoredEvent]([
            event(acme, 1, at: day + 1000, "failed password for root", [("host.name", .string("web-1"))]),
            event(acme, 2, at: day + 86_400_000 + 5, "accepted password for alice", [("host.name", .string("web-2")), ("source.port", .int(22))]),
            event(other, 3, at: day + 2000, "failed password for bob"),
        ].map(StoredEvent.init)), quarantined: [])
        #expect(stored == 3)
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("events/acme").path).filter { $0.hasSuffix(".sqlite") }.sorted()
        #expect(files == ["20261124.sqlite", "20261125.sqlite", "tenant.sqlite"])

        let all = try await search(store, acme, "*")
        #expect(all.total == 2)
        #expect(all.events.map(\.key.low) == [2, 1])  // newest first
        #expect(all.events[1].fields["message"] == .string("failed password for root"))
        #expect(JSONValue.object(all.events[1].fields).value(atPath: "host.name") == .string("web-1"))

        #expect(try await search(store, acme, "failed").total == 1)
        #expect(try await search(store, acme, #""password for alice""#).total == 1)
        #expect(try await search(store, acme, "host.name:web-2").total == 1)
        #expect(try await search(store, acme, "source.port:22").total == 1)
        #expect(try await search(store, other, "*").total == 1)
        #expect(try await search(store, acme, "*", limit: 1).events.count == 1)
        #expect(try await search(store, acme, "*", limit: 1).total == 2)
    }

    @Test func rewritingTheSameEventChangesNothing() async throws {
        let (store, _) = try makeStore()
        let batch = [event(acme, 1, at: day, "one"), event(acme, 2, at: day, "two")].map(StoredEvent.init)
        #expect(try await store.write(events: batch, quarantined: []) == 2)
        #expect(try await store.write(events: batch, quarantined: []) == 0)
        #expect(try await search(store, acme, "*").total == 2)
        #expect(try await search(store, acme, "one").total == 1)  // the FTS row was not duplicated either
        #expect(try await store.existingKeys(tenant: acme, keys: [EventKey(high: 0, low: 1), EventKey(high: 0, low: 9)]) == [EventKey(high: 0, low: 1)])
        #expect(try await store.existingKeys(tenant: other, keys: [EventKey(high: 0, low: 1)]).isEmpty)
    }

    /// Unique keys (a syslog frame's) are not recorded in the key table; a replay of their
    /// records (the same sequences: a restart before the spool was committed) adds nothing,
    /// the day partition skipping what it committed. Other keys in the batch are recorded.
    @Test func uniqueKeysAreNotRecordedAndTheirReplayAddsNothing() async throws {
        let (store, _) = try makeStore()
        func records(_ range: ClosedRange<Int>, unique: Bool, position: Int64) -> [StoredEvent] {
            range.map { n in
                var stored = StoredEvent(event(acme, UInt64(n), at: day + Int64(n), "frame \(n)"))
                stored.keyIsUnique = unique
                stored.sequence = IntakeSequence(generation: 1, position: position + Int64(n))
                return stored
            }
        }
        let frames = records(1...4, unique: true, position: 0)
        let batch = try await store.claim(events: frames, quarantined: [])
        #expect(batch.claimed.map(\.key.low) == [1, 2, 3, 4])
        #expect(try await store.insert(batch) == 4)
        let keys = frames.map(\.key)
        #expect(try await store.existingKeys(tenant: acme, keys: keys).isEmpty, "unique keys are not in the key table")
        // The replay: claimed again (nothing records them), skipped by the partition.
        let replay = try await store.claim(events: frames, quarantined: [])
        #expect(replay.claimed.count == 4)
        #expect(try await store.insert(replay) == 0)
        #expect(try await search(store, acme, "*").total == 4)
        #expect(try await search(store, acme, "frame").total == 4, "no token-index row twice")
        // A batch with both kinds: the client keys are recorded, and a second copy of one of
        // them (another record) is a duplicate.
        let mixed = records(5...6, unique: true, position: 100) + records(7...8, unique: false, position: 100)
        let claimed = try await store.claim(events: mixed, quarantined: [])
        #expect(claimed.claimed.map(\.key.low) == [5, 6, 7, 8])
        #expect(try await store.insert(claimed) == 4)
        #expect(try await store.existingKeys(tenant: acme, keys: mixed.map(\.key)) == [mixed[2].key, mixed[3].key])
        let copy = try await store.claim(events: records(7...7, unique: false, position: 200), quarantined: [])
        #expect(copy.claimed.isEmpty)
        #expect(try await search(store, acme, "*").total == 8)
    }

    @Test func aBatchIsSplitByDayAndTimeOrderedWithArrivalOrderWithinAMillisecond() async throws {
        let events = [
            event(acme, 1, at: day + 86_400_000 + 9, "next day"),
            event(acme, 2, at: day + 7, "b"),
            event(acme, 3, at: day + 3, "a"),
            event(acme, 4, at: day + 7, "c"),
        ].map(StoredEvent.init)
        let days = SQLiteEventStore.days(events)
        #expect(days.map(\.key) == [Timestamp.day(of: day), Timestamp.day(of: day) + 1])
        #expect(days.map { $0.events.map(\.key.low) } == [[2, 3, 4], [1]])
        #expect(SQLiteEventStore.timeOrder(days[0].events).map { days[0].events[$0].key.low } == [3, 2, 4])
        #expect(SQLiteEventStore.timeOrder(days[1].events).map { days[1].events[$0].key.low } == [1])

        // A key twice in one batch, and a key already stored: the claim keeps first copies only.
        let (store, _) = try makeStore()
        _ = try await store.write(events: [events[3]], quarantined: [])
        let batch = try await store.claim(events: events + [events[1]], quarantined: [])
        #expect(batch.claimed.map(\.key.low) == [1, 2, 3])
        #expect(try await store.insert(batch) == 3)
        let stored = try await search(store, acme, "*")
        #expect(stored.total == 4)
        // Rows written in time order still carry their own body and token-index text.
        let messages: [UInt64: String] = [1: "next day", 2: "b", 3: "a", 4: "c"]
        for event in stored.events { #expect(event.fields["message"] == messages[event.key.low].map(JSONValue.string), "event \(event.key.low)") }
        for (low, message) in messages where message.count == 1 {
            #expect(try await search(store, acme, message).events.map(\.key.low) == [low], "\(message)")
        }
    }

    @Test func eventsPastAMillisecondsRoomSpillIntoTheNextOnesInsteadOfFailingTheBatch() async throws {
        // Three row ids per millisecond here, 1,048,576 in the server: a batch that fills one
        // used to fail on every retry and hold up the pipeline behind it.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("store-\(UUID().uuidString)", isDirectory: true)
        let store = try SQLiteEventStore(dataDirectory: dir, logger: Logger(label: "test"), positionsPerMillisecond: 3)
        let words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"]
        // Five events in day+7's millisecond, then one in day+8's: two of the five spill into
        // day+8, before the one that belongs there.
        let first = (0..<5).map { event(acme, UInt64($0), at: day + 7, words[$0]) } + [event(acme, 5, at: day + 8, words[5])]
        #expect(try await store.write(events: first.map(StoredEvent.init), quarantined: []) == 6)
        // A later batch finds both milliseconds full (one by its own events, one by spilled
        // ones) and goes on to day+9.
        let second = (6..<9).map { event(acme, UInt64($0), at: day + 7, words[$0]) } + [event(acme, 9, at: day + 8, words[9])]
        #expect(try await store.write(events: second.map(StoredEvent.init), quarantined: []) == 4)

        let all = try await search(store, acme, "*")
        #expect(all.total == 10)
        let stamps = Dictionary(uniqueKeysWithValues: all.events.map { ($0.key.low, $0.timestamp - day) })
        #expect(stamps == [0: 7, 1: 7, 2: 7, 3: 8, 4: 8, 5: 8, 6: 9, 7: 9, 8: 9, 9: 10])
        // Newest first, arrival order within a millisecond kept.
        #expect(all.events.map(\.key.low) == [9, 8, 7, 6, 5, 4, 3, 2, 1, 0])
        // Every row keeps its own body and token-index text, and the per-minute counts see them all.
        for (n, word) in words.enumerated() {
            let hits = try await search(store, acme, word)
            #expect(hits.events.map(\.key.low) == [UInt64(n)], "\(word)")
            #expect(hits.events.first?.fields["message"] == .string(word))
        }
        #expect(try await search(store, acme, "* | stats count()").table?.rows.first?.first == .int(10))
        // The same batch again adds nothing.
        #expect(try await store.write(events: second.map(StoredEvent.init), quarantined: []) == 0)
        #expect(try await search(store, acme, "*").total == 10)
    }

    @Test func idleDayPartitionsAreClosedPastTheLimitAndOnesInUseStayOpen() async throws {
        // Three open partitions at most here, 64 in the server: a year of days written or
        // searched used to keep every one open, until the process ran out of descriptors.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("store-\(UUID().uuidString)", isDirectory: true)
        let store = try SQLiteEventStore(dataDirectory: dir, logger: Logger(label: "test"), maxOpenPartitions: 3)
        let days = 0..<10
        for k in days {
            let written = try await store.write(events: [StoredEvent(event(acme, UInt64(k), at: day + Int64(k) * 86_400_000 + 5, "day\(k) entry"))], quarantined: [])
            #expect(written == 1)
            #expect(store.openPartitionCount <= 3)
        }
        // Every day reopens and answers; a batch spanning all of them writes to each.
        let spanning = days.map { StoredEvent(event(acme, 100 + UInt64($0), at: day + Int64($0) * 86_400_000 + 9, "day\($0) again")) }
        #expect(try await store.write(events: spanning, quarantined: []) == days.count)
        for k in days {
            let from = day + Int64(k) * 86_400_000, to = from + 86_400_000
            let found = try await store.search(SearchRequest(tenant: acme, query: try QueryParser().parse("day\(k)"), from: from, to: to, limit: 10, budget: patientBudget()))
            #expect(found.events.map(\.key.low).sorted() == [UInt64(k), 100 + UInt64(k)], "day \(k)")
            #expect(store.openPartitionCount <= 3)
        }
        // A partition someone holds is not closed however many others open after it.
        let held = try #require(try store.partition(acme, day: Timestamp.day(of: day), create: false))
        for k in 1...6 { _ = try store.partition(acme, day: Timestamp.day(of: day) + Int64(k), create: false) }
        #expect(try store.partition(acme, day: Timestamp.day(of: day), create: false) === held)
        #expect(try await search(store, acme, "entry").total == 2)
    }

    @Test func theKeyFilterLoadsTheKeysStoredBeforeItAndLearnsEveryNewClaim() async throws {
        let (store, dir) = try makeStore()
        let first = (1...50).map { event(acme, UInt64($0), at: day + Int64($0), "e\($0)") }.map(StoredEvent.init)
        #expect(try await store.write(events: first, quarantined: []) == 50)
        // Another store on the same directory: its filter loads those keys in the background,
        // and the answer is the same while it loads and once it has.
        let reopened = try SQLiteEventStore(dataDirectory: dir, logger: Logger(label: "test"))
        let probe = (1...100).map { EventKey(high: 0, low: UInt64($0)) }
        #expect(try await reopened.existingKeys(tenant: acme, keys: probe) == Set(probe.prefix(50)))
        let filter = reopened.keyFilter(acme, pool: try reopened.tenantDatabase(acme))
        let deadline = Date().addingTimeInterval(30)
        while !filter.isLoaded {
            try #require(Date() < deadline, "the key filter did not load")
            try await Task.sleep(for: .milliseconds(2))
        }
        #expect(filter.possiblyStored(Array(probe.prefix(50))).count == 50)
        #expect(try await reopened.existingKeys(tenant: acme, keys: probe) == Set(probe.prefix(50)))
        // A claim made once the filter exists puts its key in it.
        #expect(try await reopened.write(events: [StoredEvent(event(acme, 77, at: day + 77, "late"))], quarantined: []) == 1)
        #expect(filter.possiblyStored([probe[76]]) == [probe[76]])
        #expect(try await reopened.existingKeys(tenant: acme, keys: probe) == Set(probe.prefix(50) + [probe[76]]))
        #expect(try await reopened.existingKeys(tenant: other, keys: probe).isEmpty)
    }

    /// Uniform keys, and content keys, whose first five bytes are a second (here the few
    /// seconds of a burst): the filter must not lean on the bytes they share.
    @Test(arguments: [false, true])
    func theKeyFilterHasNoFalseNegativesAndFewFalsePositivesAsItGrows(timePrefixed: Bool) {
        var random = SystemRandomNumberGenerator()
        func key() -> EventKey {
            guard timePrefixed else { return EventKey(high: random.next(), low: random.next()) }
            let digest = (0..<16).map { _ in UInt8.random(in: 0...255, using: &random) }
            return EventKey(second: 1_795_514_400 + Int64.random(in: 0..<3, using: &random), digest: digest)
        }
        let filter = KeyFilter(firstCapacity: 1_000)
        let stored = (0..<10_000).map { _ in key() }
        #expect(filter.possiblyStored(Array(stored.prefix(10))).count == 10)  // not loaded: every key is a maybe
        filter.insert(stored)
        filter.markLoaded()
        #expect(filter.layerCount == 4)  // 1,000 + 2,000 + 4,000 + 8,000 keys of room
        #expect(filter.possiblyStored(stored).count == stored.count)
        let absent = (0..<100_000).map { _ in key() }
        let falsePositives = filter.possiblyStored(absent).count
        #expect(falsePositives < 500, "\(falsePositives) false positives in 100,000")
    }

    @Test func jsonFieldsMatchByTypeAndNamesAreChecked() async throws {
        let (store, _) = try makeStore()
        _ = try await store.write(events: [StoredEvent]([
            event(acme, 1, at: day, "a", [("gate.count", .int(42)), ("gate.flag", .bool(true)), ("user.name", .string("o'brien"))]),
        ].map(StoredEvent.init)), quarantined: [])
        #expect(try await search(store, acme, "gate.count:42").total == 1)
        #expect(try await search(store, acme, "gate.flag:true").total == 1)
        #expect(try await search(store, acme, #"user.name:"o'brien""#).total == 1)
        #expect(try await search(store, acme, "gate.count:43").total == 0)
        // The parser refuses such names; a store given one directly refuses it too.
        #expect(throws: QuerySyntaxError.self) { _ = try QueryParser().parse("doc')--:x") }
        await #expect(throws: QueryRefusal.self) {
            _ = try await store.search(SearchRequest(tenant: acme, query: Query(filter: .field("doc')--", .equals("x"))), from: day, to: day + 1000, limit: 1, budget: patientBudget()))
        }
    }

    @Test func quarantineIsKeptPerTenantWithItsReason() async throws {
        let (store, _) = try makeStore()
        _ = try await store.write(events: [], quarantined: [
            QuarantineItem(tenant: acme, reason: .malformedJSON, detail: "line 1", source: "ingest", received: day, raw: Array("{".utf8)),
            QuarantineItem(tenant: acme, reason: .oversize, detail: "big", source: "hec", received: day + 1, raw: []),
        ])
        let all = try await store.quarantine(tenant: acme, reason: nil, from: day - 1, to: day + 10, limit: 10)
        #expect(all.map(\.reason) == [.oversize, .malformedJSON])
        #expect(try await store.quarantine(tenant: acme, reason: .malformedJSON, from: day - 1, to: day + 10, limit: 10).first?.raw == Array("{".utf8))
        #expect(try await store.quarantine(tenant: other, reason: nil, from: day - 1, to: day + 10, limit: 10).isEmpty)
    }

    @Test func tenantKeysAreStoredAsHashesAndResolve() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("catalog-\(UUID().uuidString)", isDirectory: true)
        let directory = try SQLiteTenantDirectory(dataDirectory: dir)
        let admin = try #require(try directory.bootstrap(presetAdminKey: nil, now: day))
        #expect(try directory.bootstrap(presetAdminKey: nil, now: day) == nil)  // printed once only
        let key = try await directory.createTenant(acme)
        await #expect(throws: StoreError.self) { _ = try await directory.createTenant(acme) }
        #expect(try await directory.principal(forKey: admin) == .admin)
        #expect(try await directory.principal(forKey: key) == .tenant(acme))
        #expect(try await directory.principal(forKey: "vgl_nope") == nil)
        let catalog = try Data(contentsOf: dir.appendingPathComponent("catalog.sqlite"))
        #expect(catalog.range(of: Data(key.utf8)) == nil)
        #expect(try await directory.listTenants() == [acme, .defaultTenant])
    }
}

struct SQLiteEventStoreConcurrencyTests {
    @Test func searchesRacingTheFirstWriteOfAPartitionNeverFail() async throws {
        let day: EpochMillis = 1_795_478_400_000
        for round in 0..<20 {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("race-\(UUID().uuidString)", isDirectory: true)
            let store = try SQLiteEventStore(dataDirectory: dir, logger: Logger(label: "test"))
            let tenant = TenantName("acme")!
            let event = StoredEvent(Event(tenant: tenant, key: EventKey(high: 1, low: UInt64(round)), timestamp: day, ingested: day,
                                          fields: JSONObject([("message", .string("m"))])))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { _ = try await store.write(events: [event], quarantined: []) }
                for _ in 0..<4 {
                    group.addTask {
                        _ = try await store.search(SearchRequest(tenant: tenant, query: Query(filter: .all), from: day - 1000, to: day + 1000, limit: 10, budget: patientBudget()))
                    }
                }
                try await group.waitForAll()
            }
            #expect(try await store.search(SearchRequest(tenant: tenant, query: Query(filter: .all), from: day - 1000, to: day + 1000, limit: 10, budget: patientBudget())).total == 1)
        }
    }
}

struct SQLiteRetentionTests {
    @Test func retentionDropsWholeExpiredPartitionsAndTheirKeysAndOldQuarantine() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("retention-\(UUID().uuidString)", isDirectory: true)
        let store = try SQLiteEventStore(dataDirectory: dir, logger: Logger(label: "test"))
        let tenants = try SQLiteTenantDirectory(dataDirectory: dir)
        let acme = TenantName("acme")!
        _ = try await tenants.createTenant(acme)
        try await tenants.setRetentionDays(acme, days: 3)
        let now: EpochMillis = 1_795_514_400_000
        let day = Timestamp.millisPerDay
        func event(_ n: UInt64, _ age: Int64) -> StoredEvent {
            StoredEvent(Event(tenant: acme, key: EventKey(high: 7, low: n), timestamp: now - age * day, ingested: now, fields: JSONObject([("message", .string("e\(n)"))])))
        }
        _ = try await store.write(events: [event(1, 5), event(2, 4), event(3, 3), event(4, 0)], quarantined: [
            QuarantineItem(tenant: acme, reason: .oversize, detail: "old", source: "ingest", received: now - 20 * day, raw: []),
            QuarantineItem(tenant: acme, reason: .oversize, detail: "new", source: "ingest", received: now - day, raw: []),
        ])
        let service = RetentionService(store: store, tenants: tenants, policies: RetentionPolicies(), clock: ManualClock(now), logger: Logger(label: "test"))
        let report = try await service.runOnce()
        #expect(report.droppedPartitions.map(\.day) == [Timestamp.day(of: now) - 5, Timestamp.day(of: now) - 4])
        #expect(report.purgedQuarantine == 1)
        let all = try await store.search(SearchRequest(tenant: acme, query: Query(filter: .all), from: now - 10 * day, to: now + day, limit: 10, budget: patientBudget()))
        #expect(all.events.map(\.key.low).sorted() == [3, 4])
        #expect(try await store.existingKeys(tenant: acme, keys: [EventKey(high: 7, low: 1), EventKey(high: 7, low: 3)]) == [EventKey(high: 7, low: 3)])
        #expect(try await service.runOnce().droppedPartitions.isEmpty)
    }
}
