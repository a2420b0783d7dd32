import Foundation
import GRDB
import Logging
import Testing
import VigilCore
import VigilQuery
import VigilStorage
@testable import VigilStorageSQLite

/// The query language end to end on a real SQLite store: filters, stages, cursors,
/// highlights, the FTS plan, the interrupt at the timeout, and live tail.
struct SQLiteSearchTests {
    let acme = TenantName("acme")!
    let other = TenantName("other")!
    static let day: EpochMillis = 1_795_478_400_000  // 2026-11-24T00:00:00Z
    var day: EpochMillis { Self.day }

    func event(_ tenant: TenantName, _ n: UInt64, at timestamp: EpochMillis, _ message: String, _ extra: [(String, JSONValue)]) -> StoredEvent {
        var fields = JSONObject([("message", .string(message))])
        for (key, value) in extra { FieldNesting.set(value, at: key, in: &fields) }
        return StoredEvent(Event(tenant: tenant, key: EventKey(high: 9, low: n), timestamp: timestamp, ingested: timestamp + 1, fields: fields))
    }

    func makeStore() async throws -> SQLiteEventStore {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("search-\(UUID().uuidString)", isDirectory: true)
        let store = try SQLiteEventStore(dataDirectory: dir, logger: Logger(label: "test"))
        _ = try await store.write(events: [
            event(acme, 1, at: day + 1000, "Failed password for root from 10.1.2.3 port 22 ssh2",
                  [("host.name", .string("web-1")), ("source.ip", .string("10.1.2.3")), ("user.name", .string("root")), ("event.outcome", .string("failure")), ("bytes", .int(100))]),
            event(acme, 2, at: day + 2000, "Accepted password for alice from 192.168.1.5",
                  [("host.name", .string("web-2")), ("source.ip", .string("192.168.1.5")), ("user.name", .string("alice")), ("event.outcome", .string("success")), ("bytes", .int(250))]),
            event(acme, 3, at: day + 3000, "Connexion refusée pour l'utilisateur Zoë",
                  [("host.name", .string("web-1")), ("source.ip", .string("2001:db8::7")), ("user.name", .string("zoe")), ("bytes", .double(50.5))]),
            event(acme, 4, at: day + 4000, "failed PASSWORD again <script>",
                  [("host.name", .string("web-3")), ("user.name", .string("root")), ("event.outcome", .string("failure")), ("bytes", .string("n/a"))]),
            event(acme, 5, at: day + Timestamp.millisPerDay + 10, "Failed password for admin",
                  [("host.name", .string("web-2")), ("user.name", .string("admin")), ("event.outcome", .string("failure")), ("bytes", .int(1000))]),
            event(other, 6, at: day + 1000, "Failed password for root",
                  [("host.name", .string("web-1")), ("user.name", .string("root")), ("bytes", .int(7))]),
        ], quarantined: [])
        return store
    }

    func request(_ query: String, tenant: TenantName? = nil, limit: Int = 100, cursor: SearchCursor? = nil,
                 limits: SearchLimits = SearchLimits()) throws -> SearchRequest {
        SearchRequest(tenant: tenant ?? acme, query: try QueryParser().parse(query), from: day, to: day + 2 * Timestamp.millisPerDay,
                      limit: limit, cursor: cursor, limits: limits, budget: patientBudget())
    }

    func ids(_ store: SQLiteEventStore, _ query: String) async throws -> [UInt64] {
        try await store.search(request(query)).events.map(\.key.low)
    }

    @Test(arguments: [
        ("failed", [5, 4, 1]),
        ("failed password", [5, 4, 1]),
        (#""failed password""#, [5, 4, 1]),
        (#""password for""#, [5, 2, 1]),
        ("pass*", [5, 4, 2, 1]),
        ("refusee zoe", [3]),
        ("failed NOT root", [5, 4]),
        ("failed AND NOT user.name:root", [5]),
        ("user.name:root OR user.name:alice", [4, 2, 1]),
        ("(user.name:root OR user.name:alice) AND host.name:web-1", [1]),
        ("user.name:ro*", [4, 1]),
        ("bytes>=100", [5, 2, 1]),
        ("bytes:[50 TO 100]", [3, 1]),
        ("bytes:{50.5 TO 100]", [1]),
        ("bytes<100", [3]),
        ("bytes:n/a", [4]),
        ("bytes:100", [1]),
        ("@timestamp>=2026-11-24T00:00:02.500Z", [5, 4, 3]),
        ("@timestamp:[1795478400000 TO 1795478402000]", [2, 1]),
        ("source.ip:10.1.2.3", [1]),
        ("source.ip:2001:db8::7", [3]),
        ("source.ip:10.1.2.4", []),
        ("source.ip:10.1.2.3 OR source.ip:192.168.1.5", [2, 1]),
        ("failed source.ip:10.1.2.3", [1]),
        ("NOT source.ip:10.1.2.3 AND host.name:web-1", [3]),
        ("source.ip:10.1.2.3 NOT failed", []),
        ("destination.ip:10.1.2.3", []),
        ("source.ip:10.0.0.0/8", [1]),
        ("source.ip:10.1.2.0/23", [1]),
        ("source.ip:10.1.3.0/24", []),
        ("source.ip:10.1.2.3/32", [1]),
        ("source.ip:0.0.0.0/0", [2, 1]),
        ("source.ip:192.168.0.0/16 OR source.ip:2001:db8::/32", [3, 2]),
        ("_exists_:event.outcome", [5, 4, 2, 1]),
        ("NOT _exists_:event.outcome", [3]),
        ("host.name:web-2 source.ip:*", [2]),
        ("nothing-matches-this", []),
        ("(failed OR accepted) AND NOT root", [5, 4, 2]),
        ("(failed OR accepted) AND NOT (root OR admin) AND host.name:web-2", [2]),
        ("failed AND NOT (again OR admin)", [1]),
        ("(failed AND again) OR zoe", [4, 3]),
        ("NOT (failed OR accepted)", [3]),
    ] as [(String, [UInt64])])
    func filtersSelectTheRightEvents(_ query: String, _ expected: [UInt64]) async throws {
        let store = try await makeStore()
        #expect(try await ids(store, query) == expected, "query: \(query)")
    }

    @Test func fieldEqualityMatchesAnyElementOfAnArray() async throws {
        let store = try await makeStore()
        _ = try await store.write(events: [
            event(acme, 8, at: day + 9000, "tagged", [("tags", .array([.string("ioc_match"), .string("vpn")])), ("event.category", .array([.string("network")]))]),
            event(acme, 9, at: day + 9001, "single", [("tags", .string("ioc_match"))]),
            event(acme, 10, at: day + 9002, "other tags", [("tags", .array([.string("ioc")]))]),
        ], quarantined: [])
        #expect(try await ids(store, "tags:ioc_match") == [9, 8])
        #expect(try await ids(store, "tags:vpn AND event.category:network") == [8])
        #expect(try await ids(store, "NOT tags:ioc_match AND tags:*") == [10])
    }

    @Test func eventsByIngestTimeIncludeLateEventsInOldPartitionsAndPageByKey() async throws {
        let store = try await makeStore()
        // A late event: yesterday's timestamp, received now (after everything else).
        var late = event(acme, 7, at: day - 5000, "late failed login", [])
        late.ingested = day + Timestamp.millisPerDay + 100
        _ = try await store.write(events: [late], quarantined: [])
        let all = try await store.eventsIngested(tenant: acme, query: try QueryParser().parse("*"), from: day, to: day + 2 * Timestamp.millisPerDay, after: nil, limit: 100)
        #expect(all.map(\.key.low) == [1, 2, 3, 4, 5, 7])
        let failed = try await store.eventsIngested(tenant: acme, query: try QueryParser().parse("failed"), from: day + 1500, to: day + 2 * Timestamp.millisPerDay, after: nil, limit: 100)
        #expect(failed.map(\.key.low) == [4, 5, 7])
        let page = try await store.eventsIngested(tenant: acme, query: try QueryParser().parse("*"), from: day, to: day + 2 * Timestamp.millisPerDay, after: (all[2].ingested, all[2].key), limit: 2)
        #expect(page.map(\.key.low) == [4, 5])
        // The window is half-open and per tenant.
        let window = try await store.eventsIngested(tenant: other, query: try QueryParser().parse("*"), from: day + 1001, to: day + 1002, after: nil, limit: 100)
        #expect(window.map(\.key.low) == [6])
        let empty = try await store.eventsIngested(tenant: other, query: try QueryParser().parse("*"), from: day + 1002, to: day + 5000, after: nil, limit: 100)
        #expect(empty.isEmpty)
    }

    @Test func aggregationsMergeAcrossPartitions() async throws {
        let store = try await makeStore()
        let stats = try #require(try await store.search(request("* | stats count(), dc(user.name), sum(bytes), avg(bytes), max(bytes) by host.name")).table)
        #expect(stats.columns == ["host.name", "count()", "dc(user.name)", "sum(bytes)", "avg(bytes)", "max(bytes)"])
        #expect(stats.rows == [
            [.string("web-1"), .int(2), .int(2), .double(150.5), .double(75.25), .int(100)],
            [.string("web-2"), .int(2), .int(2), .int(1250), .double(625), .int(1000)],
            [.string("web-3"), .int(1), .int(1), .null, .null, .null],
        ])
        let chart = try #require(try await store.search(request("* | timechart span=1d count()")).table)
        #expect(chart.rows == [[.int(day), .int(4)], [.int(day + Timestamp.millisPerDay), .int(1)]])
        let top = try #require(try await store.search(request("failed | stats count() by user.name | sort count() desc | head 1")).table)
        #expect(top.rows == [[.string("root"), .int(2)]])
        let none = try #require(try await store.search(request("nothing-here | stats count()")).table)
        #expect(none.rows == [[.int(0)]])
        var limits = SearchLimits()
        limits.maxGroups = 2
        await #expect(throws: SearchLimitError.self) { try await store.search(request("* | stats count() by user.name", limits: limits)) }
        await #expect(throws: QueryRefusal.self) { try await store.search(request("* | stats count() by user.name | sort bogus")) }
    }

    @Test func timechartBucketsComeFromRowIdsForAnySpanAndRange() async throws {
        let store = try await makeStore()
        // Whole-minute spans fold minutes of day into buckets; others compute from the row id.
        let hours = try #require(try await store.search(request("* | timechart span=1h count()")).table)
        #expect(hours.rows == [[.int(day), .int(4)], [.int(day + Timestamp.millisPerDay), .int(1)]])
        let seconds = try #require(try await store.search(request("* | timechart span=1500ms count() by host.name".replacingOccurrences(of: "1500ms", with: "2s"))).table)
        #expect(seconds.rows == [
            [.int(day), .string("web-1"), .int(1)],
            [.int(day + 2000), .string("web-1"), .int(1)],
            [.int(day + 2000), .string("web-2"), .int(1)],
            [.int(day + 4000), .string("web-3"), .int(1)],
            [.int(day + Timestamp.millisPerDay), .string("web-2"), .int(1)],
        ])
        // A range covering part of a day (most of it, then a little of it) counts only its rows.
        var partial = try request("* | timechart span=1m count()")
        partial.from = day + 1500
        #expect(try await store.search(partial).table?.rows == [[.int(day), .int(3)], [.int(day + Timestamp.millisPerDay), .int(1)]])
        partial.to = day + 3500
        #expect(try await store.search(partial).table?.rows == [[.int(day), .int(2)]])
        var stats = try request("* | stats count() by event.outcome")
        stats.from = day + 1500
        stats.to = day + Timestamp.millisPerDay
        // Event 3 has no outcome: it is in no group.
        #expect(try await store.search(stats).table?.rows == [[.string("failure"), .int(1)], [.string("success"), .int(1)]])
    }

    @Test func timechartBucketsAtNoonAndTheLastMillisecondCountEachEventOnce() async throws {
        let store = try await makeStore()
        let noon = day + Timestamp.millisPerDay / 2
        _ = try await store.write(events: [
            event(acme, 20, at: noon - 1, "before noon", [("host.name", .string("web-9"))]),
            event(acme, 21, at: noon, "at noon", [("host.name", .string("web-9"))]),
            event(acme, 22, at: noon + 59_999, "noon minute", [("host.name", .string("web-9"))]),
            event(acme, 23, at: day + Timestamp.millisPerDay - 1, "last ms", [("host.name", .string("web-9"))]),
        ], quarantined: [])
        let daily = try #require(try await store.search(request("* | timechart span=1d count(), dc(host.name), max(bytes)")).table)
        #expect(daily.rows == [[.int(day), .int(8), .int(4), .int(250)], [.int(day + Timestamp.millisPerDay), .int(1), .int(1), .int(1000)]])
        let hourly = try #require(try await store.search(request("host.name:web-9 | timechart span=1h count()")).table)
        #expect(hourly.rows == [[.int(noon - 3_600_000), .int(1)], [.int(noon), .int(2)], [.int(day + Timestamp.millisPerDay - 3_600_000), .int(1)]])
    }

    @Test func countsFromTheRollupAgreeWithCountsFromTheRows() async throws {
        let store = try await makeStore()
        var events: [StoredEvent] = []
        for n in 0..<300 {
            let at = day + Int64(n / 2) * 37_001 + Int64(n % 2) * 1_000
            var extra: [(String, JSONValue)] = [("bytes", .int(Int64(n)))]
            // Pairs (n, n + 1) share a minute, a host and a dataset, and land in different batches.
            if (n / 2) % 5 != 0 { extra.append(("host.name", .string("h\((n / 2) % 3)"))) }
            if (n / 2) % 4 != 0 { extra.append(("event.dataset", .string("d\((n / 2) % 2)"))) }
            events.append(event(acme, UInt64(100 + n), at: at, "event \(n)", extra))
        }
        // Two batches that share minutes (the rollup adds to its rows), then a replay that adds nothing.
        _ = try await store.write(events: events.enumerated().filter { $0.offset % 2 == 0 }.map(\.element), quarantined: [])
        _ = try await store.write(events: events.enumerated().filter { $0.offset % 2 == 1 }.map(\.element), quarantined: [])
        _ = try await store.write(events: Array(events.prefix(50)), quarantined: [])
        // `count()` alone (rollup for whole minutes) against the same count beside min() (rows only).
        let pairs = [("* | stats count() by host.name", "* | stats count(), min(bytes) by host.name"),
                     ("* | stats count() by event.dataset, host.name", "* | stats count(), min(bytes) by event.dataset, host.name"),
                     ("* | stats count()", "* | stats count(), min(bytes)"),
                     ("* | timechart span=5m count() by event.dataset", "* | timechart span=5m count(), min(bytes) by event.dataset"),
                     ("* | timechart span=1h count()", "* | timechart span=1h count(), min(bytes)")]
        let ranges: [(EpochMillis, EpochMillis)] = [(day, day + 2 * Timestamp.millisPerDay), (day + 1_234, day + 7_654_321),
                                                    (day + 60_000, day + 3_600_000), (day + 59_999, day + 60_001), (day + 500, day + 900)]
        for (fast, slow) in pairs {
            for (from, to) in ranges {
                var a = try request(fast), b = try request(slow)
                (a.from, a.to, b.from, b.to) = (from, to, from, to)
                let rollup = try #require(try await store.search(a).table).rows
                let rows = try #require(try await store.search(b).table).rows.map { Array($0.dropLast()) }
                #expect(rollup == rows, "\(fast) over [\(from - day), \(to - day))")
            }
        }
    }

    /// Addresses are found through their token in the token index (v6), walked newest first
    /// like free text; the other indexed fields through their own index.
    @Test func fieldEqualityUsesItsIndexNewestFirst() async throws {
        let store = try await makeStore()
        for (query, index) in [("user.name:root", "INDEX event_user"), ("source.ip:10.1.2.3", "event_fts VIRTUAL TABLE INDEX"),
                               ("destination.ip:10.9.9.9", "event_fts VIRTUAL TABLE INDEX"), ("host.name:web-1", "INDEX event_host"),
                               ("event.dataset:x", "INDEX event_dataset")] {
            let plan = try await store.queryPlan(request(query)).joined(separator: "\n")
            #expect(plan.contains(index) && !plan.contains("TEMP B-TREE"), "\(query) plan:\n\(plan)")
        }
    }

    @Test func sortHeadAndCursorPagination() async throws {
        let store = try await makeStore()
        // Mixed types sort as SQLite orders them: null, numbers, text.
        #expect(try await ids(store, "* | sort bytes desc | head 3") == [4, 5, 2])
        #expect(try await ids(store, "* | sort user.name | head 3") == [5, 2, 4])
        var seen: [UInt64] = []
        var cursor: SearchCursor?
        var pages = 0
        repeat {
            guard case .events(let page) = try await store.search(request("*", limit: 2, cursor: cursor)) else { Issue.record("not events"); return }
            #expect(page.total == 5)
            seen += page.hits.map(\.event.key.low)
            cursor = page.nextCursor
            pages += 1
        } while cursor != nil && pages < 10
        #expect(seen == [5, 4, 3, 2, 1])
        #expect(pages == 3)
        var limits = SearchLimits()
        limits.maxTotalCount = 2
        guard case .events(let capped) = try await store.search(request("*", limits: limits)) else { Issue.record("not events"); return }
        #expect(capped.total == 2)
        #expect(!capped.totalIsExact)
        #expect(capped.hits.count == 5)
    }

    @Test func tenantsNeverSeeEachOther() async throws {
        let store = try await makeStore()
        #expect(try await store.search(request("root", tenant: other)).events.map(\.key.low) == [6])
        #expect(try await store.search(request("* | stats count()", tenant: other)).table?.rows == [[.int(1)]])
        #expect(try await store.search(request("*", tenant: TenantName("nobody")!)).events.isEmpty)
    }

    @Test func highlightsFollowTheTokenIndex() async throws {
        let store = try await makeStore()
        func highlight(_ query: String, _ id: UInt64) async throws -> Highlight? {
            guard case .events(let page) = try await store.search(request(query)) else { return nil }
            return page.hits.first { $0.event.key.low == id }?.highlights["message"]
        }
        let phrase = try #require(try await highlight(#""failed password""#, 1))
        #expect(phrase.spans == [0..<15])
        #expect(phrase.snippet == "<mark>Failed password</mark> for root from 10.1.2.3 port 22 ssh2")
        let terms = try #require(try await highlight("failed root", 1))
        #expect(terms.spans == [0..<6, 20..<24])
        let accents = try #require(try await highlight("refusee zoe", 3))
        let text = Array("Connexion refusée pour l'utilisateur Zoë".unicodeScalars)
        #expect(accents.spans.map { String(String.UnicodeScalarView(text[$0])) } == ["refusée", "Zoë"])
        #expect(accents.snippet == "Connexion <mark>refusée</mark> pour l&#39;utilisateur <mark>Zoë</mark>")
        let escaped = try #require(try await highlight("again", 4))
        #expect(escaped.snippet == "failed PASSWORD <mark>again</mark> &lt;script&gt;")
        let prefix = try #require(try await highlight("pass*", 2))
        #expect(prefix.spans == [9..<17])
        #expect(try await highlight("NOT root", 3) == nil)
    }

    @Test func freeTextUsesTheFTSIndex() async throws {
        let store = try await makeStore()
        let plan = try await store.queryPlan(request("failed password")).joined(separator: "\n")
        #expect(plan.contains("event_fts VIRTUAL TABLE INDEX"), "plan:\n\(plan)")
        let fieldPlan = try await store.queryPlan(request("user.name:root")).joined(separator: "\n")
        #expect(!fieldPlan.contains("event_fts"), "plan:\n\(fieldPlan)")
    }

    @Test func aQueryPastItsTimeoutIsInterruptedMidStatement() async throws {
        let store = try await makeStore()
        // Its clock moves 1 ms per look: 50 looks of the progress handler end it.
        let clock = TickingClock()
        let budget = QueryBudget(timeoutMillis: 50, clock: clock)
        do {
            // Never ends by itself: only the progress handler can stop it.
            _ = try await store.read(acme, day: Timestamp.day(of: day), budget: budget) { db in
                try Int.fetchOne(db, sql: "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c")
            }
            Issue.record("an endless statement returned")
        } catch let error as StoreError {
            #expect(error.code == .interrupted)
        }
        #expect(clock.reads > 50)
        let cancelled = QueryBudget(timeoutMillis: 60_000)
        cancelled.cancel()
        await #expect(throws: StoreError.self) {
            try await store.search(SearchRequest(tenant: acme, query: Query(filter: .all), from: day, to: day + 1000, limit: 1, budget: cancelled))
        }
    }

    @Test func tailReturnsOnlyNewMatchingEvents() async throws {
        let store = try await makeStore()
        // Budgets that time does not end: this test is about what the tail returns, and in the
        // full parallel suite on a busy 2-core VM a read once waited past 1 s.
        let now = day + Timestamp.millisPerDay + 60_000
        let query = try QueryParser().parse("failed")
        let start = try await store.tail(tenant: acme, query: query, cursor: nil, now: now, limit: 0, budget: patientBudget())
        #expect(start.hits.isEmpty)
        _ = try await store.write(events: [
            event(acme, 10, at: now, "failed again later", []),
            event(acme, 11, at: now, "accepted later", []),
            StoredEvent(Event(tenant: acme, key: EventKey(high: 9, low: 12), timestamp: now - Timestamp.millisPerDay, ingested: now,
                              fields: JSONObject([("message", .string("failed yesterday, arriving late"))]))),
        ], quarantined: [])
        let next = try await store.tail(tenant: acme, query: query, cursor: start.cursor, now: now, limit: 100, budget: patientBudget())
        #expect(Set(next.hits.map(\.event.key.low)) == [10, 12])
        let again = try await store.tail(tenant: acme, query: query, cursor: next.cursor, now: now, limit: 100, budget: patientBudget())
        #expect(again.hits.isEmpty)
    }
}

struct HighlightMarkupTests {
    @Test func readsMarkersIntoSpansAndAnEscapedSnippet() throws {
        let marked = "a \u{1}b\u{2} & \u{1}ç\u{2}"
        let highlight = try #require(Highlight(marked: marked))
        #expect(highlight.spans == [2..<3, 6..<7])
        #expect(highlight.snippet == "a <mark>b</mark> &amp; <mark>ç</mark>")
        #expect(Highlight(marked: "no marks") == nil)
        let long = String(repeating: "x", count: 500) + "\u{1}hit\u{2}" + String(repeating: "y", count: 500)
        let cut = try #require(Highlight(marked: long, context: 10))
        #expect(cut.spans == [500..<503])
        #expect(cut.snippet == "…" + String(repeating: "x", count: 10) + "<mark>hit</mark>" + String(repeating: "y", count: 10) + "…")
    }
}

struct PartitionMigrationTests {
    let acme = TenantName("acme")!
    let day = SQLiteSearchTests.day

    /// A partition of tenant acme in the v1 layout, under a new data directory.
    func v1Partition() throws -> (dir: URL, queue: DatabaseQueue) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("migrate-\(UUID().uuidString)", isDirectory: true)
        let url = dir.appendingPathComponent("events/acme/\(Timestamp.dayStamp(Timestamp.day(of: day))).sqlite")
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        let queue = try DatabaseQueue(path: url.path)
        try SQLiteEventStore.partitionMigrator(day: Timestamp.day(of: day)).migrate(queue, upTo: "v1")
        return (dir, queue)
    }

    @Test func v1PartitionsGetTimeOrderedIdsAndKeepTheirEvents() async throws {
        let (dir, queue) = try v1Partition()
        let day = day
        try await queue.write { db in
            // Inserted out of time order, two in the same millisecond.
            for (n, ts) in [(1, day + 5000), (2, day + 1000), (3, day + 5000)] {
                try db.execute(sql: "INSERT INTO event (ts, ingested, key, message, doc) VALUES (?, ?, ?, ?, '{}')",
                               arguments: [ts, ts, Data(EventKey(high: 0, low: UInt64(n)).bytes), "old event \(n)"])
                try db.execute(sql: "INSERT INTO event_fts (rowid, message) VALUES (?, ?)", arguments: [db.lastInsertedRowID, "old event \(n)"])
            }
        }
        try queue.close()
        let store = try SQLiteEventStore(dataDirectory: dir, logger: Logger(label: "test"))
        let result = try await store.search(SearchRequest(tenant: acme, query: try QueryParser().parse("old"), from: day, to: day + 10_000, limit: 10, budget: patientBudget()))
        #expect(result.events.map(\.key.low) == [3, 1, 2])
        guard case .events(let page) = result else { return }
        #expect(page.hits.map(\.position) == [5000 << 20 + 1, 5000 << 20, 1000 << 20])
        #expect(page.hits[0].highlights["message"]?.snippet == "<mark>old</mark> event 3")
    }

    /// v6 drops the address indexes and gives rows already stored their address tokens.
    @Test func olderPartitionsGetAddressTokens() async throws {
        let (dir, queue) = try v1Partition()
        let (acme, day) = (acme, day)
        try await queue.write { db in
            for (n, ip) in [(1, "10.1.2.3"), (2, "10.1.2.30")] {
                try db.execute(sql: "INSERT INTO event (ts, ingested, key, source_ip, destination_ip, message, doc) VALUES (?, ?, ?, ?, '10.9.9.9', ?, '{}')",
                               arguments: [day + Int64(n) * 1000, day, Data(EventKey(high: 0, low: UInt64(n)).bytes), ip, "old event \(n)"])
            }
        }
        try queue.close()
        let store = try SQLiteEventStore(dataDirectory: dir, logger: Logger(label: "test"))
        func keys(_ query: String) async throws -> [UInt64] {
            try await store.search(SearchRequest(tenant: acme, query: try QueryParser().parse(query), from: day, to: day + 10_000, limit: 10, budget: patientBudget())).events.map(\.key.low)
        }
        #expect(try await keys("source.ip:10.1.2.3") == [1])
        #expect(try await keys("destination.ip:10.9.9.9") == [2, 1])
        #expect(try await keys("old AND source.ip:10.1.2.30") == [2])
        let indexes = try await store.partition(acme, day: Timestamp.day(of: day), create: false)!.pool.read { db in
            try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'event_%ip'")
        }
        #expect(indexes.isEmpty)
    }
}
