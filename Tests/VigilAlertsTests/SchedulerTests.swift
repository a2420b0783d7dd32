import Foundation
import Logging
import Synchronization
import Testing
import VigilCore
import VigilQuery
import VigilStorage
import VigilStorageSQLite
@testable import VigilAlerts

/// The watermark scheduler on real SQLite stores with a manual clock: windows tile ingest
/// time across restarts, crashes and downtime; late events are caught; counts are exact.
struct SchedulerTests {
    let acme = TenantName("acme")!
    static let start: EpochMillis = 1_795_478_400_000  // 2026-11-24T00:00:00Z

    final class Fixture: Sendable {
        let dir: URL
        let events: SQLiteEventStore
        let detection: SQLiteDetectionStore
        let clock = ManualClock(SchedulerTests.start)
        let unstored = Mutex<EpochMillis?>(nil)
        let coordinator = InProcessCoordinator()
        let sequence = Atomic<UInt64>(0)

        init() throws {
            dir = FileManager.default.temporaryDirectory.appendingPathComponent("sched-\(UUID().uuidString)", isDirectory: true)
            events = try SQLiteEventStore(dataDirectory: dir, logger: Logger(label: "test"))
            detection = try SQLiteDetectionStore(dataDirectory: dir, notifications: true)
        }

        /// A fresh scheduler over the same stores, as after a restart.
        func scheduler(detection: (any DetectionStore)? = nil, maxWindow: Int64 = 3_600_000, perTick: Int = 24, inline: InlineDetection? = nil,
                       clock: (any VigilClock)? = nil, oldestUnstored: (@Sendable () -> EpochMillis?)? = nil,
                       pipelineIdle: (@Sendable () -> Bool)? = nil, intervalMillis: Int64 = 10_000) -> DetectionScheduler {
            DetectionScheduler(events: events, detection: detection ?? self.detection, compiler: RuleCompiler(others: ["sigma": { try SigmaDetectionRule.compile($0) }]), coordinator: coordinator,
                               clock: clock ?? self.clock, planner: WindowPlanner(lagMillis: 120_000, maxWindowMillis: maxWindow),
                               oldestUnstored: oldestUnstored ?? { [self] in self.unstored.withLock { $0 } }, pipelineIdle: pipelineIdle,
                               intervalMillis: intervalMillis, maxWindowsPerTick: perTick, inline: inline, logger: Logger(label: "test"))
        }

        /// Stores an event received now (or at `ingested`), stamped `timestamp`; with `pipeline`,
        /// the event is matched by its rules first, as admission does, and the events the write
        /// claims are then handed to it, as the ingest pipeline does.
        func ingest(_ fields: [(String, JSONValue)], timestamp: EpochMillis? = nil, ingested: EpochMillis? = nil, pipeline: InlineDetection? = nil) async throws {
            let event = event(fields, timestamp: timestamp, ingested: ingested)
            let (_, claimed) = try await events.writeClaiming(events: [Self.admitted(event, by: pipeline)], quarantined: [])
            try await pipeline?.stored(claimed)
        }

        /// An event of acme with a fresh key, received now (or at `ingested`), stamped `timestamp`.
        func event(_ fields: [(String, JSONValue)], timestamp: EpochMillis? = nil, ingested: EpochMillis? = nil) -> Event {
            let n = sequence.wrappingAdd(1, ordering: .relaxed).newValue
            var object = JSONObject()
            for (key, value) in fields { FieldNesting.set(value, at: key, in: &object) }
            let received = ingested ?? clock.now()
            return Event(tenant: TenantName("acme")!, key: EventKey(high: 7, low: n), timestamp: timestamp ?? received, ingested: received, fields: object)
        }

        /// Per-event Sigma detection over the fixture's stores and clock.
        func inlineDetection() -> InlineDetection {
            InlineDetection(detection: detection, events: events, clock: clock, logger: Logger(label: "test"))
        }

        /// The event as admission encodes it: tagged with the rules of `pipeline` it matches.
        static func admitted(_ event: Event, by pipeline: InlineDetection?) -> StoredEvent {
            var stored = StoredEvent(event)
            stored.matched = pipeline?.matcher(for: event.tenant)?.tags(event.fields) ?? []
            return stored
        }

        func addSigmaRule(_ yaml: String) async throws {
            let rule = try SigmaDetectionRule.compile(yaml)
            try await detection.saveRule(RuleRecord(tenant: TenantName("acme")!, id: rule.id, format: "sigma", source: yaml, created: clock.now(), watermark: clock.now()))
        }

        func sysmon(_ data: [(String, String)], pipeline: InlineDetection? = nil) async throws {
            try await ingest(Self.sysmon(data), pipeline: pipeline)
        }

        /// The fields of a Sysmon process creation with `data` as its EventData.
        static func sysmon(_ data: [(String, String)]) -> [(String, JSONValue)] {
            [("winlog.channel", .string("Microsoft-Windows-Sysmon/Operational")), ("winlog.event_id", .string("1"))]
                + data.map { ("winlog.event_data.\($0.0)", JSONValue.string($0.1)) }
        }

        /// Polls the failed-login rule's watermark (a running scheduler moves it) until it is
        /// `expected`; false after 10 s.
        func watermark(reaches expected: EpochMillis) async throws -> Bool {
            let deadline = ContinuousClock.now + .seconds(10)
            while ContinuousClock.now < deadline {
                if try await detection.rule(tenant: TenantName("acme")!, id: "failed-login")?.watermark == expected { return true }
                try await Task.sleep(for: .milliseconds(5))  // polling the store
            }
            return false
        }

        func addRule(_ yaml: String, id: String, at created: EpochMillis? = nil) async throws {
            let rule = try NativeRule.parse(yaml)
            let now = created ?? clock.now()
            let watermark = rule.bucketMillis.map { WindowPlanner.floor(now, $0) } ?? now
            try await detection.saveRule(RuleRecord(tenant: TenantName("acme")!, id: id, format: "native", source: yaml, created: now, watermark: watermark))
        }
    }

    static let failedLogins = """
    id: failed-login
    query: 'event.outcome:failure'
    severity: low
    """

    static let bruteForce = """
    id: brute-force
    query: 'event.outcome:failure'
    severity: high
    threshold: {count: 3, window: 5m, group_by: [source.ip]}
    """

    @Test func windowsTileIngestTimeAndEachMatchAlertsOnce() async throws {
        let f = try Fixture()
        try await f.addRule(Self.failedLogins, id: "failed-login")
        let scheduler = f.scheduler()
        for step in 0..<30 {
            try await f.ingest([("event.outcome", .string(step % 3 == 0 ? "failure" : "success"))])
            f.clock.advance(byMillis: 17_000)
            _ = await scheduler.tick()
        }
        f.clock.advance(byMillis: 130_000)
        _ = await scheduler.tick()
        let alerts = try await f.detection.alerts(tenant: acme, ruleID: "failed-login", status: nil, from: 0, to: .max, limit: 1000)
        #expect(alerts.count == 10)
        let coverage = try await f.detection.coverage(tenant: acme, ruleID: "failed-login")
        #expect(coverage.count == 1, "windows never leave a gap: \(coverage)")
        #expect(coverage.first?.lowerBound == Self.start)
        #expect(coverage.first?.upperBound == f.clock.now() - 120_000)
        // Nothing left to evaluate and a re-tick changes nothing.
        let report = await scheduler.tick()
        #expect(report.windows == 0)
    }

    /// A clock that moves on every reading, as the wall clock does during a tick.
    final class MovingClock: VigilClock {
        let clock: ManualClock
        init(_ clock: ManualClock) { self.clock = clock }
        func now() -> EpochMillis {
            clock.advance(byMillis: 3)
            return clock.now()
        }
    }

    /// A tick evaluates each rule up to where its windows end when the tick starts: with a
    /// clock that moves while it runs, it does not chase it with one more window of a few
    /// milliseconds per round (a thousand rules made all their rounds' commits every tick).
    @Test func aTickEndsWhereItStartedWhileTheClockMoves() async throws {
        let f = try Fixture()
        try await f.addRule(Self.failedLogins, id: "failed-login")
        try await f.addSigmaRule(Self.sigma("whoami", "Image|endswith: '\\\\whoami.exe'"))
        try await f.addSigmaRule(Self.sigma("encoded", "CommandLine|contains: ' -enc '"))
        try await f.ingest([("event.outcome", .string("failure"))])
        try await f.sysmon([("Image", "C:\\Windows\\System32\\whoami.exe"), ("CommandLine", "ps -enc AAA")])
        f.clock.advance(byMillis: 130_000)
        let scheduler = f.scheduler(clock: MovingClock(f.clock))
        let report = await scheduler.tick()
        #expect(report.failures.isEmpty)
        #expect(report.windows == 3, "one window per rule")
        #expect(report.alerts == 3)
        // The next tick starts where this one ended: nothing is skipped.
        let next = await scheduler.tick()
        #expect(next.windows == 3 && next.alerts == 0)
        for id in ["failed-login", "whoami", "encoded"] {
            let coverage = try await f.detection.coverage(tenant: acme, ruleID: id)
            #expect(coverage.count == 1, "\(id): \(coverage)")
            #expect(coverage.first?.lowerBound == Self.start)
        }
    }

    @Test func aLateEventIsCaughtBecauseWindowsAreOverIngestTime() async throws {
        let f = try Fixture()
        try await f.addRule(Self.failedLogins, id: "failed-login")
        let scheduler = f.scheduler()
        f.clock.advance(byMillis: 600_000)
        _ = await scheduler.tick()
        // An event stamped two days ago arrives now (a collector that was offline).
        try await f.ingest([("event.outcome", .string("failure"))], timestamp: Self.start - 2 * 86_400_000)
        f.clock.advance(byMillis: 121_000)
        let report = await scheduler.tick()
        #expect(report.alerts == 1)
        let alerts = try await f.detection.alerts(tenant: acme, ruleID: nil, status: nil, from: 0, to: .max, limit: 10)
        #expect(alerts.first?.firstSeen == Self.start - 2 * 86_400_000)
    }

    /// Fails the first commit, as a crash between evaluation and commit would.
    final class CrashOnce: DetectionStore {
        let inner: SQLiteDetectionStore
        let crashed = Atomic<Bool>(false)
        init(_ inner: SQLiteDetectionStore) { self.inner = inner }
        func commit(_ commit: WindowCommit) async throws -> Int {
            if !crashed.exchange(true, ordering: .relaxed) { throw CancellationError() }
            return try await inner.commit(commit)
        }
        func saveRule(_ rule: RuleRecord) async throws { try await inner.saveRule(rule) }
        func insertAlerts(_ alerts: [AlertRecord]) async throws -> [AlertRecord] { try await inner.insertAlerts(alerts) }
        func rules(tenant: TenantName?) async throws -> [RuleRecord] { try await inner.rules(tenant: tenant) }
        func rule(tenant: TenantName, id: String) async throws -> RuleRecord? { try await inner.rule(tenant: tenant, id: id) }
        func deleteRule(tenant: TenantName, id: String) async throws -> Bool { try await inner.deleteRule(tenant: tenant, id: id) }
        func coverage(tenant: TenantName, ruleID: String) async throws -> [Range<EpochMillis>] { try await inner.coverage(tenant: tenant, ruleID: ruleID) }
        func alerts(tenant: TenantName, ruleID: String?, status: AlertStatus?, from: EpochMillis, to: EpochMillis, limit: Int) async throws -> [AlertRecord] {
            try await inner.alerts(tenant: tenant, ruleID: ruleID, status: status, from: from, to: to, limit: limit)
        }
        func setAlertStatus(tenant: TenantName, id: Int64, status: AlertStatus, now: EpochMillis) async throws -> AlertRecord? {
            try await inner.setAlertStatus(tenant: tenant, id: id, status: status, now: now)
        }
        func dueNotifications(now: EpochMillis, limit: Int) async throws -> [PendingNotification] { try await inner.dueNotifications(now: now, limit: limit) }
        func notificationDelivered(id: Int64) async throws { try await inner.notificationDelivered(id: id) }
        func notificationFailed(id: Int64, retryAt: EpochMillis) async throws { try await inner.notificationFailed(id: id, retryAt: retryAt) }
    }

    @Test func aCrashBeforeTheCommitReRunsTheWindowWithoutDuplicates() async throws {
        let f = try Fixture()
        try await f.addRule(Self.bruteForce, id: "brute-force")
        for i in 0..<7 {
            try await f.ingest([("event.outcome", .string("failure")), ("source.ip", .string(i < 4 ? "10.0.0.1" : "10.0.0.2"))])
            f.clock.advance(byMillis: 1000)
        }
        f.clock.advance(byMillis: 600_000)
        let crashing = f.scheduler(detection: CrashOnce(f.detection))
        let first = await crashing.tick()
        #expect(first.failures.count == 1)
        #expect(try await f.detection.rule(tenant: acme, id: "brute-force")?.watermark == Self.start)
        // After the "restart": a new scheduler, the same stores.
        let report = await f.scheduler().tick()
        #expect(report.alerts == 2)
        let again = await f.scheduler().tick()
        #expect(again.alerts == 0)
        let alerts = try await f.detection.alerts(tenant: acme, ruleID: "brute-force", status: nil, from: 0, to: .max, limit: 10)
        #expect(alerts.map(\.eventIDs.count).sorted() == [3, 4])
        #expect(Set(alerts.compactMap { $0.group["source.ip"]?.stringValue }) == ["10.0.0.1", "10.0.0.2"])
    }

    @Test func downtimeLongerThanTheMaximumWindowIsCaughtUpWindowByWindow() async throws {
        let f = try Fixture()
        try await f.addRule(Self.failedLogins, id: "failed-login")
        for hour in 0..<6 {
            try await f.ingest([("event.outcome", .string("failure"))], ingested: Self.start + Int64(hour) * 3_600_000 + 1000)
        }
        f.clock.advance(byMillis: 6 * 3_600_000 + 200_000)
        let scheduler = f.scheduler(maxWindow: 3_600_000, perTick: 2)
        var windows = 0, alerts = 0
        for _ in 0..<10 {
            let report = await scheduler.tick()
            windows += report.windows
            alerts += report.alerts
        }
        #expect(windows == 7)  // six whole hours and the rest up to now - lag
        #expect(alerts == 6)
        let coverage = try await f.detection.coverage(tenant: acme, ruleID: "failed-login")
        #expect(coverage == [Self.start..<(f.clock.now() - 120_000)])
    }

    @Test func windowsNeverCloseOverEventsNotYetStored() async throws {
        let f = try Fixture()
        try await f.addRule(Self.failedLogins, id: "failed-login")
        let stalled = Self.start + 30_000
        f.unstored.withLock { $0 = stalled }
        f.clock.advance(byMillis: 900_000)
        _ = await f.scheduler().tick()
        #expect(try await f.detection.rule(tenant: acme, id: "failed-login")?.watermark == stalled)
        // The pipeline catches up: the stalled event is stored with its original receive time.
        try await f.ingest([("event.outcome", .string("failure"))], ingested: stalled)
        f.unstored.withLock { $0 = nil }
        let report = await f.scheduler().tick()
        #expect(report.alerts == 1)
    }

    /// The pipeline stores the stalled event while a tick runs (the oldest unstored receive
    /// time is there at the first look and gone after): the tick goes on to where it started,
    /// for a scheduled rule and for per-event Sigma rules, and the event is alerted once.
    @Test(arguments: [false, true])
    func aTickGoesOnWhenThePipelineCatchesUpDuringIt(sigma: Bool) async throws {
        let f = try Fixture()
        let stalled = Self.start + 30_000
        if sigma {
            try await f.addSigmaRule(Self.sigma("whoami", "Image|endswith: '\\\\whoami.exe'"))
            try await f.ingest(Fixture.sysmon([("Image", "C:\\whoami.exe")]), ingested: stalled)
        } else {
            try await f.addRule(Self.failedLogins, id: "failed-login")
            try await f.ingest([("event.outcome", .string("failure"))], ingested: stalled)
        }
        f.clock.advance(byMillis: 900_000)
        let looks = Mutex(0)
        let scheduler = f.scheduler(oldestUnstored: {
            looks.withLock { looks in
                looks += 1
                return looks == 1 ? stalled : nil
            }
        })
        let report = await scheduler.tick()
        #expect(report.failures.isEmpty)
        #expect(report.windows == 2, "up to the stalled event, then on to the horizon")
        #expect(report.alerts == 1)
        let rule = try await f.detection.rules(tenant: acme).first
        #expect(rule?.watermark == f.clock.now() - 120_000)
        #expect(try await f.detection.coverage(tenant: acme, ruleID: rule?.id ?? "").count == 1)
    }

    /// A tick says when the pipeline held a rule back, for a scheduled rule and for per-event
    /// Sigma rules, and not once the pipeline has caught up.
    @Test(arguments: [false, true])
    func aTickSaysWhenThePipelineHeldItBack(sigma: Bool) async throws {
        let f = try Fixture()
        if sigma {
            try await f.addSigmaRule(Self.sigma("whoami", "Image|endswith: '\\\\whoami.exe'"))
        } else {
            try await f.addRule(Self.failedLogins, id: "failed-login")
        }
        f.unstored.withLock { $0 = Self.start + 30_000 }
        f.clock.advance(byMillis: 900_000)
        let scheduler = f.scheduler()
        #expect(await scheduler.tick().heldBack)
        #expect(await scheduler.tick().heldBack, "still behind")
        f.unstored.withLock { $0 = f.clock.now() - 60_000 }
        #expect(await scheduler.tick().heldBack == false, "the unstored events are within the lag")
        f.unstored.withLock { $0 = nil }
        #expect(await scheduler.tick().heldBack == false)
    }

    /// What holds a window back: the oldest unstored event only when it ends the window
    /// sooner than the lag or a bucket would.
    @Test func theUnstoredFrontierHoldsBackOnlyWhatItShortens() {
        let planner = WindowPlanner(lagMillis: 120_000)
        let now: EpochMillis = 1_000_000
        #expect(planner.isHeldBack(watermark: 0, now: now, oldestUnstored: 500_000, bucketMillis: nil))
        #expect(!planner.isHeldBack(watermark: 0, now: now, oldestUnstored: 900_000, bucketMillis: nil), "beyond now - lag")
        #expect(!planner.isHeldBack(watermark: 0, now: now, oldestUnstored: nil, bucketMillis: nil))
        #expect(planner.isHeldBack(watermark: 500_000, now: now, oldestUnstored: 400_000, bucketMillis: nil), "behind the watermark: nothing more until stored")
        // Buckets of 5 minutes: now - lag (880,000) ends the last whole bucket at 600,000.
        #expect(planner.isHeldBack(watermark: 0, now: now, oldestUnstored: 599_999, bucketMillis: 300_000))
        #expect(!planner.isHeldBack(watermark: 0, now: now, oldestUnstored: 600_001, bucketMillis: 300_000), "in the bucket not due yet")
    }

    /// After a tick the pipeline held back, the scheduler does not wait for its next tick (an
    /// hour away here) once the pipeline has stored everything and ingest pauses.
    @Test func aHeldBackTickIsRunAgainOnceThePipelineIsIdle() async throws {
        let f = try Fixture()
        try await f.addRule(Self.failedLogins, id: "failed-login")
        let stalled = Self.start + 30_000
        try await f.ingest([("event.outcome", .string("failure"))], ingested: stalled)
        f.unstored.withLock { $0 = stalled }
        f.clock.advance(byMillis: 900_000)
        let idle = Mutex(false)
        let scheduler = f.scheduler(pipelineIdle: { idle.withLock { $0 } }, intervalMillis: 3_600_000)
        let running = Task { try await scheduler.run() }
        defer { running.cancel() }
        #expect(try await f.watermark(reaches: stalled), "the first tick stops at the unstored event")
        f.unstored.withLock { $0 = nil }
        #expect(try await f.detection.rule(tenant: acme, id: "failed-login")?.watermark == stalled, "stored, but ingest goes on")
        idle.withLock { $0 = true }
        #expect(try await f.watermark(reaches: f.clock.now() - 120_000))
        #expect(try await f.detection.alerts(tenant: acme, ruleID: "failed-login", status: nil, from: 0, to: .max, limit: 10).count == 1)
    }

    @Test func thresholdBucketsAreWholeAndCountedOnce() async throws {
        let f = try Fixture()
        try await f.addRule(Self.bruteForce, id: "brute-force")
        let scheduler = f.scheduler()
        // 3 failures in the first 5-minute bucket, 2 + 1 split across the next boundary.
        for offset in [10_000, 20_000, 30_000, 290_000, 299_000, 301_000] as [Int64] {
            try await f.ingest([("event.outcome", .string("failure")), ("source.ip", .string("10.9.9.9"))], ingested: Self.start + offset)
        }
        f.clock.set(Self.start + 400_000)  // now - lag = 280 s: no whole bucket yet
        #expect(await scheduler.tick().windows == 0)
        f.clock.set(Self.start + 300_000 + 120_000)
        let first = await scheduler.tick()
        #expect(first.windows == 1)
        #expect(first.alerts == 1)  // bucket [0, 5m) has 5 failures
        f.clock.set(Self.start + 600_000 + 120_000)
        let second = await scheduler.tick()
        #expect(second.alerts == 0)  // bucket [5m, 10m) has 1
        let alerts = try await f.detection.alerts(tenant: acme, ruleID: "brute-force", status: nil, from: 0, to: .max, limit: 10)
        #expect(alerts.count == 1)
        #expect(alerts.first?.eventIDs.count == 5)
    }

    @Test func aStaleFencingTokenCannotCommit() async throws {
        let f = try Fixture()
        try await f.addRule(Self.failedLogins, id: "failed-login")
        let window = Self.start..<(Self.start + 1000)
        _ = try await f.detection.commit(WindowCommit(tenant: acme, ruleID: "failed-login", window: window, fencingToken: 5, alerts: []))
        await #expect(throws: DetectionStoreError.self) {
            _ = try await f.detection.commit(WindowCommit(tenant: acme, ruleID: "failed-login", window: window.upperBound..<(window.upperBound + 1000), fencingToken: 4, alerts: []))
        }
        // A second worker evaluating the same window after the first committed is refused too.
        await #expect(throws: DetectionStoreError.self) {
            _ = try await f.detection.commit(WindowCommit(tenant: acme, ruleID: "failed-login", window: window, fencingToken: 6, alerts: []))
        }
    }

    /// Windows committed together: a refused one (stale token, moved watermark, unknown rule)
    /// writes none of its alerts, coverage or watermark, and the others are committed.
    @Test func aRefusedWindowOfABatchChangesNothingAndTheOthersCommit() async throws {
        let f = try Fixture()
        try await f.addRule(Self.failedLogins, id: "failed-login")
        try await f.addSigmaRule(Self.sigma("whoami", "Image|endswith: '\\whoami.exe'"))
        let first = Self.start..<(Self.start + 1000), second = (Self.start + 1000)..<(Self.start + 2000)
        _ = try await f.detection.commit(WindowCommit(tenant: acme, ruleID: "failed-login", window: first, fencingToken: 5, alerts: []))
        func alert(_ rule: String, _ n: UInt64) -> AlertRecord {
            AlertRecord(tenant: acme, ruleID: rule, severity: "high", key: EventKey(high: 4, low: n), eventIDs: ["e\(n)"], group: JSONObject(),
                        firstSeen: 1, lastSeen: 1, created: 1)
        }
        let results = try await f.detection.commit([
            WindowCommit(tenant: acme, ruleID: "failed-login", window: second, fencingToken: 4, alerts: [alert("failed-login", 1)]),  // stale token
            WindowCommit(tenant: acme, ruleID: "whoami", window: first, fencingToken: 1, alerts: [alert("whoami", 2)]),
            WindowCommit(tenant: acme, ruleID: "whoami", window: first, fencingToken: 1, alerts: [alert("whoami", 3)]),  // watermark moved
            WindowCommit(tenant: acme, ruleID: "gone", window: first, fencingToken: 1, alerts: [alert("gone", 4)]),
            WindowCommit(tenant: acme, ruleID: "failed-login", window: second, fencingToken: 5, alerts: [alert("failed-login", 5)]),
        ])
        let refused = results.map { result -> DetectionStoreError.Code? in
            if case .failure(let error) = result { return error.code } else { return nil }
        }
        #expect(refused == [.staleFencingToken, nil, .watermarkMoved, .unknownRule, nil])
        let alerts = try await f.detection.alerts(tenant: acme, ruleID: nil, status: nil, from: 0, to: .max, limit: 10)
        #expect(alerts.map(\.key.low).sorted() == [2, 5])
        #expect(try await f.detection.coverage(tenant: acme, ruleID: "failed-login") == [Self.start..<(Self.start + 2000)])
        #expect(try await f.detection.coverage(tenant: acme, ruleID: "whoami") == [first])
    }

    @Test func leasesExcludeOtherHoldersUntilExpiryAndTokensGrow() async {
        let coordinator = InProcessCoordinator()
        let a = await coordinator.acquire("r", holder: "a", ttlMillis: 1000, now: 0)
        #expect(a != nil)
        #expect(await coordinator.acquire("r", holder: "b", ttlMillis: 1000, now: 500) == nil)
        #expect(await coordinator.acquire("r", holder: "a", ttlMillis: 1000, now: 500)?.token == a?.token)
        let b = await coordinator.acquire("r", holder: "b", ttlMillis: 1000, now: 2000)
        #expect(b != nil)
        #expect((b?.token ?? 0) > (a?.token ?? 0))
    }

    static func sigma(_ id: String, _ selection: String) -> String {
        "title: \(id)\nid: \(id)\nlogsource: {product: windows, category: process_creation}\ndetection:\n    sel:\n        \(selection)\n    condition: sel\nlevel: high\n"
    }

    /// Per-event Sigma rules share one read per window and one pass of the rule index, yet
    /// each keeps its own watermark, coverage and exact alerts; a rule added later catches
    /// up and joins the others' windows; a crash before the commit re-runs without duplicates.
    @Test func sigmaRulesAreEvaluatedTogetherWithTheirOwnWatermarks() async throws {
        let f = try Fixture()
        try await f.addSigmaRule(Self.sigma("whoami", "Image|endswith: '\\\\whoami.exe'"))
        try await f.addSigmaRule(Self.sigma("encoded", "CommandLine|contains: ' -enc '"))
        for i in 0..<12 {
            try await f.sysmon([("Image", i % 3 == 0 ? "C:\\Windows\\System32\\whoami.exe" : "C:\\x.exe"), ("CommandLine", i % 4 == 0 ? "ps -enc AAA" : "ps")])
            f.clock.advance(byMillis: 10_000)
        }
        f.clock.advance(byMillis: 120_000)
        let first = await f.scheduler(detection: CrashOnce(f.detection)).tick()
        #expect(first.alerts == 0 && !first.failures.isEmpty, "the crash leaves every watermark where it was")
        try await f.addSigmaRule(Self.sigma("late-rule", "Image|endswith: '\\\\x.exe'"))
        try await f.sysmon([("Image", "C:\\x.exe"), ("CommandLine", "ps -enc B")])
        f.clock.advance(byMillis: 130_000)
        let scheduler = f.scheduler()
        let report = await scheduler.tick()
        #expect(report.failures.isEmpty)
        let count = { (id: String) in try await f.detection.alerts(tenant: acme, ruleID: id, status: nil, from: 0, to: .max, limit: 100).count }
        #expect(try await count("whoami") == 4)
        #expect(try await count("encoded") == 4)
        #expect(try await count("late-rule") == 1, "only events received after the rule was added")
        var ends: Set<EpochMillis> = []
        for id in ["whoami", "encoded", "late-rule"] {
            let coverage = try await f.detection.coverage(tenant: acme, ruleID: id)
            #expect(coverage.count == 1, "\(id): \(coverage)")
            ends.insert(coverage.last?.upperBound ?? 0)
        }
        #expect(ends == [f.clock.now() - 120_000], "all rules end at the same watermark")
        let again = await scheduler.tick()
        #expect(again.windows == 0 && again.alerts == 0)
    }

    /// A stored batch can hold several tenants' events: each event's tags are its own
    /// tenant's rules.
    @Test func aBatchOfSeveralTenantsIsMatchedByEachTenantsRules() async throws {
        let f = try Fixture()
        let inline = f.inlineDetection()
        let scheduler = f.scheduler(inline: inline)
        try await f.addSigmaRule(Self.sigma("whoami", "Image|endswith: '\\whoami.exe'"))
        _ = await scheduler.tick()
        f.clock.advance(byMillis: 1_000)
        try await f.sysmon([("Image", "C:\\Windows\\System32\\whoami.exe")])
        try await f.sysmon([("Image", "D:\\tools\\whoami.exe")])
        let stored = try await f.events.eventsIngested(tenant: acme, query: Query(filter: .all, stages: []), from: f.clock.now(), to: f.clock.now() + 1, after: nil, limit: 10)
        #expect(stored.count == 2)
        let admitted = stored.map { Fixture.admitted($0, by: inline) }
        #expect(admitted.allSatisfy { $0.matched.count == 1 }, "both match at admission")
        let globex = TenantName("globex")!
        func moved(_ event: StoredEvent) -> StoredEvent {
            var copy = event
            copy.tenant = globex
            return copy
        }
        // acme, globex, globex, acme: the globex events carry acme's tags, but globex has no rules.
        try await inline.stored([admitted[0], moved(admitted[0]), moved(admitted[1]), admitted[1]])
        #expect(try await f.detection.alerts(tenant: acme, ruleID: "whoami", status: nil, from: 0, to: .max, limit: 100).count == 2)
        #expect(try await f.detection.alerts(tenant: globex, ruleID: "whoami", status: nil, from: 0, to: .max, limit: 100).isEmpty)
    }

    /// Alerts are inserted for rules that still exist, each key once; the rules of one batch
    /// are asked for once each, whatever the order of their alerts.
    @Test func insertedAlertsNeedTheirRuleAndAreKeyedOnce() async throws {
        let f = try Fixture()
        try await f.addSigmaRule(Self.sigma("whoami", "Image|endswith: '\\whoami.exe'"))
        func alert(_ rule: String, _ n: UInt64, tenant: TenantName = acme) -> AlertRecord {
            AlertRecord(tenant: tenant, ruleID: rule, severity: "high", key: EventKey(high: 3, low: n), eventIDs: ["e\(n)"], group: JSONObject(),
                        firstSeen: 1, lastSeen: 1, created: 1)
        }
        let globex = TenantName("globex")!
        let batch = [alert("whoami", 1), alert("gone", 2), alert("whoami", 3), alert("whoami", 1), alert("gone", 4), alert("whoami", 5, tenant: globex), alert("whoami", 6)]
        let inserted = try await f.detection.insertAlerts(batch)
        #expect(inserted.map(\.key.low) == [1, 3, 6], "the deleted rule's, the other tenant's and the repeated key are not inserted")
        #expect(try await f.detection.insertAlerts(batch).isEmpty)
    }

    /// Alert keys start with the second their alert sorts by: a per-event alert's event's
    /// ingest time, or a window alert's window start. A batch's alerts then go into the end of
    /// the key index; a key that did not sort by time would put each alert on a page of its own.
    @Test func alertKeysSortByIngestTime() {
        let events = (0..<4).map { n in
            Event(tenant: acme, key: EventKey(high: 9, low: UInt64(10 - n)), timestamp: Self.start - EpochMillis(n) * 60_000, ingested: Self.start + EpochMillis(n) * 1_500, fields: JSONObject())
        }
        let alerts = DetectionScheduler.alerts(events.map(AlertDraft.event), tenant: acme, ruleID: "r", severity: "high", window: Self.start..<(Self.start + 60_000), now: Self.start)
        #expect(alerts.map { $0.key.high >> 24 } == events.map { UInt64($0.ingested / 1000) }, "the second of each event's ingest time, not of the window or the event time")
        #expect(alerts.map(\.key) == alerts.map(\.key).sorted())
        #expect(alerts.map(\.formerKey) == events.map { Optional(DetectionScheduler.formerAlertKey(tenant: acme, ruleID: "r", discriminator: "e:\($0.key)")) })
        // The same alert found by the scheduler in a later window has the same key.
        let later = DetectionScheduler.alerts([AlertDraft.event(events[2])], tenant: acme, ruleID: "r", severity: "high", window: (Self.start + 60_000)..<(Self.start + 120_000), now: Self.start + 200_000)
        #expect(later.map(\.key) == [alerts[2].key])
        // A window's alert sorts by the window's start.
        let bucket = AlertDraft(discriminator: "b:\(Self.start + 60_000):x", group: JSONObject(), events: [events[3], events[0]])
        let windowed = DetectionScheduler.alerts([bucket], tenant: acme, ruleID: "r", severity: "high", window: (Self.start + 60_000)..<(Self.start + 120_000), now: Self.start)
        #expect(windowed.map { $0.key.high >> 24 } == [UInt64((Self.start + 60_000) / 1000)])
    }

    /// An alert stored before keys sorted by time has its former key: the same alert made
    /// again (a batch replayed after an upgrade) is found by that key and not stored twice.
    /// Alerts that sort after the upgrade are not looked for by their former key.
    @Test func anAlertStoredUnderItsFormerKeyIsNotStoredAgain() async throws {
        let f = try Fixture()
        try await f.addSigmaRule(Self.sigma("whoami", "Image|endswith: '\\whoami.exe'"))
        func alert(ingested: EpochMillis, event n: UInt64) -> AlertRecord {
            let event = Event(tenant: acme, key: EventKey(high: 5, low: n), timestamp: ingested, ingested: ingested, fields: JSONObject())
            return DetectionScheduler.alerts([AlertDraft.event(event)], tenant: acme, ruleID: "whoami", severity: "high", window: ingested..<(ingested + 1), now: ingested)[0]
        }
        func count() async throws -> Int { try await f.detection.alerts(tenant: acme, ruleID: "whoami", status: nil, from: 0, to: .max, limit: 100).count }
        // As the version before stored it: under the former key.
        let replayed = alert(ingested: Self.start, event: 1)
        var before = replayed
        before.key = try #require(replayed.formerKey)
        before.formerKey = nil
        #expect(try await f.detection.insertAlerts([before]).count == 1)
        #expect(try await f.detection.insertAlerts([replayed]).isEmpty, "found by its former key")
        #expect(try await count() == 1)
        // Sorting after the upgrade (this store's migration ran now, the fixture's clock is
        // earlier): a stored alert with the same former key does not stop it.
        let after = alert(ingested: EpochMillis(Date().timeIntervalSince1970 * 1000) + 3_600_000, event: 2)
        #expect(try await f.detection.insertAlerts([AlertRecord(tenant: acme, ruleID: "whoami", severity: "high", key: try #require(after.formerKey), eventIDs: [], group: JSONObject(), firstSeen: 0, lastSeen: 0, created: 0)]).count == 1)
        #expect(try await f.detection.insertAlerts([after]).count == 1)
        #expect(try await count() == 3)
    }

    /// A changed rule is a new version with its own tag and `since`: an event admitted with the
    /// old version's tag and stored after the change alerts nothing from the pipeline (the
    /// scheduler reads it, as it was received before the new version's `since`).
    @Test func tagsOfARuleVersionNoLongerAdoptedArePassedOver() async throws {
        let f = try Fixture()
        let inline = f.inlineDetection()
        let scheduler = f.scheduler(inline: inline)
        let first = Self.sigma("whoami", "Image|endswith: '\\whoami.exe'")
        try await f.addSigmaRule(first)
        _ = await scheduler.tick()
        f.clock.advance(byMillis: 1_000)
        let event = f.event(Fixture.sysmon([("Image", "C:\\whoami.exe")]))
        let admitted = Fixture.admitted(event, by: inline)
        #expect(admitted.matched.count == 1)
        f.clock.advance(byMillis: 1_000)
        let second = Self.sigma("whoami", "Image|endswith: '\\who.exe'")
        try await f.addSigmaRule(second)
        _ = await scheduler.tick()
        #expect(inline.since(tenant: acme, id: "whoami", source: second) == f.clock.now() + 1)
        #expect(inline.since(tenant: acme, id: "whoami", source: first) == nil)
        let (_, claimed) = try await f.events.writeClaiming(events: [admitted], quarantined: [])
        try await inline.stored(claimed)
        #expect(try await f.detection.alerts(tenant: acme, ruleID: "whoami", status: nil, from: 0, to: .max, limit: 100).isEmpty)
    }

    @Test func perEventSigmaRulesAlertFromThePipelineAndTheSchedulerReadsOnlyWhatCameBefore() async throws {
        let f = try Fixture()
        let inline = f.inlineDetection()
        let scheduler = f.scheduler(inline: inline)
        let yaml = Self.sigma("whoami", "Image|endswith: '\\\\whoami.exe'")
        try await f.addSigmaRule(yaml)
        let whoami = [("Image", "C:\\Windows\\System32\\whoami.exe")]
        let count = { try await f.detection.alerts(tenant: acme, ruleID: "whoami", status: nil, from: 0, to: .max, limit: 100).count }
        // Stored before the pipeline knows the rule: only the scheduler's read can find it.
        try await f.sysmon(whoami, pipeline: inline)
        f.clock.advance(byMillis: 1_000)
        #expect(inline.since(tenant: acme, id: "whoami", source: yaml) == nil, "not published yet")
        #expect(await scheduler.tick().windows == 0, "no window is due yet: the lag is 120 s")
        #expect(inline.since(tenant: acme, id: "whoami", source: yaml) == f.clock.now() + 1, "adopted as published")
        f.clock.advance(byMillis: 1_000)
        try await f.sysmon(whoami, pipeline: inline)
        try await f.sysmon([("Image", "C:\\x.exe")], pipeline: inline)
        #expect(try await count() == 1, "the pipeline alerts at once, 120 s before the window closes")
        // A replay of the batch (crash before the queue commit: its records keep their tags)
        // finds its alert there.
        let replayed = try await f.events.eventsIngested(tenant: acme, query: Query(filter: .all, stages: []), from: f.clock.now(), to: f.clock.now() + 1, after: nil, limit: 10)
        let records = replayed.map { Fixture.admitted($0, by: inline) }
        #expect(records.map(\.matched.count).sorted() == [0, 1])
        // The alert names its event as the scheduler's would: key, first and last seen.
        let hit = try #require(records.first { !$0.matched.isEmpty })
        let alert = try #require(try await f.detection.alerts(tenant: acme, ruleID: "whoami", status: nil, from: 0, to: .max, limit: 100).first)
        #expect(alert.eventIDs == [hit.key.description] && alert.firstSeen == hit.timestamp && alert.lastSeen == hit.timestamp)
        #expect(alert.key == DetectionScheduler.alertKey(tenant: acme, ruleID: "whoami", discriminator: "e:\(hit.key)", ingested: hit.ingested))
        try await inline.stored(records)
        #expect(try await count() == 1)
        // An event stored past `since` without passing through the pipeline is not read by the
        // scheduler: that part of the window is the pipeline's.
        f.clock.advance(byMillis: 1_000)
        try await f.sysmon(whoami)
        f.clock.advance(byMillis: 130_000)
        let report = await scheduler.tick()
        #expect(report.failures.isEmpty && report.windows == 1)
        #expect(try await count() == 2, "the early event found by the scheduler's read, the pipeline's once")
        #expect(try await f.detection.coverage(tenant: acme, ruleID: "whoami") == [SchedulerTests.start..<(f.clock.now() - 120_000)])
    }

    /// A native rule without a threshold matches as events are admitted, through the store's
    /// predicate, and alerts as they are stored; the scheduler still reads its windows, finds
    /// the alerts there, and catches what the predicate could not decide. A threshold rule
    /// stays the scheduler's.
    @Test func nativePerEventRulesAlertFromThePipelineAndTheSchedulerFindsTheRest() async throws {
        let f = try Fixture()
        let inline = f.inlineDetection()
        let scheduler = f.scheduler(inline: inline)
        try await f.addRule(Self.failedLogins, id: "failed-login")
        try await f.addRule(Self.bruteForce, id: "brute-force")
        try await f.addRule("id: failed-text\nquery: 'failed'\nseverity: low\n", id: "failed-text")
        let count = { (id: String) in try await f.detection.alerts(tenant: acme, ruleID: id, status: nil, from: 0, to: .max, limit: 100).count }
        f.clock.advance(byMillis: 1_000)
        _ = await scheduler.tick()
        #expect(inline.matcher(for: acme) != nil, "published")
        for _ in 0..<3 { try await f.ingest([("event.outcome", .string("failure")), ("source.ip", .string("192.0.2.1"))], pipeline: inline) }
        try await f.ingest([("event.outcome", .string("success"))], pipeline: inline)
        #expect(try await count("failed-login") == 3, "the pipeline alerts at once, 120 s before the window closes")
        #expect(try await count("brute-force") == 0, "thresholds wait for their window")
        // The predicate leaves a message outside ASCII to SQLite's folding, so the pipeline does
        // not alert on it: the scheduler's read does.
        let accented = Fixture.admitted(f.event([("message", .string("Connexion échouée: failed"))]), by: inline)
        #expect(accented.matched.isEmpty)
        let (_, claimed) = try await f.events.writeClaiming(events: [accented], quarantined: [])
        try await inline.stored(claimed)
        try await f.ingest([("message", .string("login failed"))], pipeline: inline)
        #expect(try await count("failed-text") == 1)
        f.clock.advance(byMillis: 500_000)
        let report = await scheduler.tick()
        #expect(report.failures.isEmpty)
        #expect(try await count("failed-login") == 3, "the scheduler's read finds the pipeline's alerts there")
        #expect(try await count("failed-text") == 2, "and adds the one the predicate left undecided")
        #expect(try await count("brute-force") == 1)
    }
}
