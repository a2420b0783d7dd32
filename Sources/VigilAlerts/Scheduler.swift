import Crypto
import Logging
import Metrics
import ServiceLifecycle
import Synchronization
import VigilCore
import VigilQuery
import VigilSigma
import VigilStorage

/// What a rule found in a window: one alert per draft.
public struct AlertDraft: Sendable, Equatable {
    /// Makes the alert key with the rule and tenant: the event key for per-event rules, the
    /// bucket and group values for threshold and correlation rules.
    public var discriminator: String
    public var group: JSONObject
    public var events: [Event]
    /// The ingest time the alert's key sorts by: its event's for a per-event alert; nil for a
    /// window's alert, whose key sorts by the window's start (which its discriminator names).
    public var ingested: EpochMillis?

    public init(discriminator: String, group: JSONObject, events: [Event], ingested: EpochMillis? = nil) {
        self.discriminator = discriminator
        self.group = group
        self.events = events
        self.ingested = ingested
    }

    /// The alert of one event that matched a per-event rule: the same draft whether the
    /// pipeline matched the event at admission or the scheduler read it in a window.
    public static func event(_ event: Event) -> AlertDraft {
        AlertDraft(discriminator: "e:\(event.key)", group: JSONObject(), events: [event], ingested: event.ingested)
    }
}

/// A rule ready to run.
public protocol DetectionRule: Sendable {
    var id: String { get }
    var severity: String { get }
    /// The events a window needs, as a search-language filter the store applies (`*`: all).
    var prefilter: Query { get }
    /// Threshold and correlation rules count over whole buckets of ingest time; nil for rules
    /// that match event by event.
    var bucketMillis: Int64? { get }
    /// The alerts of a window's events (ordered by receive time, then key).
    func evaluate(_ events: [Event], window: Range<EpochMillis>) -> [AlertDraft]
}

/// Turns a stored rule into a runnable one (native YAML or Sigma).
public protocol RuleCompiling: Sendable {
    func compile(_ record: RuleRecord) throws -> any DetectionRule
}

/// Evaluates every rule over successive ingest-time windows `[watermark, end)` (see
/// `WindowPlanner`), writing each window's alerts and the new watermark in one transaction.
public final class DetectionScheduler: Service, Sendable {
    let events: any EventStore
    let detection: any DetectionStore
    let compiler: any RuleCompiling
    let coordinator: any Coordinator
    let clock: any VigilClock
    public let planner: WindowPlanner
    /// The receive time of the oldest acknowledged event not yet stored (nil: none).
    let oldestUnstored: @Sendable () -> EpochMillis?
    /// Whether ingest has paused with everything acknowledged stored (nil: never asked).
    let pipelineIdle: (@Sendable () -> Bool)?
    let holder: String
    let intervalMillis: Int64
    let maxWindowsPerTick: Int
    let logger: Logger
    /// Per-event Sigma rules matched at admission (nil: the scheduler reads every window).
    let inline: InlineDetection?
    /// Per tenant, the rule index of its per-event Sigma rules (rebuilt when they change).
    let ruleSets = Mutex<[TenantName: (fingerprint: [String], set: SigmaRuleSet)]>([:])
    /// Events read per store page.
    static let pageSize = 5_000
    /// A window holding more events than this is refused (counted) rather than read whole.
    public static let maxEventsPerWindow = 500_000

    public init(events: any EventStore, detection: any DetectionStore, compiler: any RuleCompiling, coordinator: any Coordinator,
                clock: any VigilClock, planner: WindowPlanner, oldestUnstored: @escaping @Sendable () -> EpochMillis?,
                pipelineIdle: (@Sendable () -> Bool)? = nil,
                holder: String = "vigil", intervalMillis: Int64 = 10_000, maxWindowsPerTick: Int = 24,
                inline: InlineDetection? = nil, logger: Logger) {
        self.pipelineIdle = pipelineIdle
        self.inline = inline
        self.events = events
        self.detection = detection
        self.compiler = compiler
        self.coordinator = coordinator
        self.clock = clock
        self.planner = planner
        self.oldestUnstored = oldestUnstored
        self.holder = holder
        self.intervalMillis = intervalMillis
        self.maxWindowsPerTick = maxWindowsPerTick
        self.logger = logger
    }

    public func run() async throws {
        // A tick every interval, from start to start: a tick that takes a while (a thousand
        // rules' commits) does not push the next one back by its own length.
        var next = ContinuousClock.now
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let report = await tick()
            next = max(next + .milliseconds(intervalMillis), ContinuousClock.now)
            let deadline = next
            // Held back by the pipeline (it had not stored everything up to the horizon): once
            // it has and ingest pauses, one more tick then, instead of leaving what the pipeline
            // caught up on to the next tick. Under steady ingest the pipeline is never idle, so
            // this adds no ticks; it is at most one per interval.
            if report.heldBack, let idle = pipelineIdle, await Self.wait(until: idle, before: deadline) {
                _ = await tick()
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(until: deadline, clock: .continuous) }
        }
    }

    public struct TickReport: Sendable, Equatable {
        public var windows = 0
        public var alerts = 0
        public var failures: [String] = []
        /// Some rule stopped at the oldest unstored event, short of the tick's horizon.
        public var heldBack = false
    }

    /// How often an idle pipeline is looked for after a held-back tick.
    static let idlePollMillis = 20

    /// Polls `condition` until it holds (true) or `deadline` passes (false).
    static func wait(until condition: @Sendable () -> Bool, before deadline: ContinuousClock.Instant) async -> Bool {
        while ContinuousClock.now < deadline && !Task.isCancelled && !Task.isShuttingDownGracefully {
            if condition() { return true }
            let wake = min(deadline, ContinuousClock.now + .milliseconds(idlePollMillis))
            try? await cancelWhenGracefulShutdown { try await Task.sleep(until: wake, clock: .continuous) }
        }
        return false
    }

    /// Evaluates every rule's due windows (at most `maxWindowsPerTick` per rule per tick, so
    /// catching up after downtime is spread over ticks). Tests call this with a manual clock.
    public func tick() async -> TickReport {
        var report = TickReport()
        let records: [RuleRecord]
        do {
            records = try await detection.rules(tenant: nil)
        } catch {
            report.failures.append("listing rules: \(error)")
            return report
        }
        var perEventSigma: [TenantName: [(record: RuleRecord, rule: SigmaDetectionRule)]] = [:]
        var perEventNative: [TenantName: [(record: RuleRecord, rule: NativeRule)]] = [:]
        for record in records {
            do {
                let rule = try compiler.compile(record)
                if let sigma = rule as? SigmaDetectionRule {
                    perEventSigma[record.tenant, default: []].append((record, sigma))
                    continue
                }
                // A native rule without a threshold also matches at admission, where the store
                // can evaluate its query in memory; its windows are still read here.
                if let native = rule as? NativeRule, native.threshold == nil {
                    perEventNative[record.tenant, default: []].append((record, native))
                }
                try await evaluate(rule, record: record, report: &report)
            } catch {
                failed(record.tenant, record.id, error, &report)
            }
        }
        inline?.publish(perEventSigma, native: perEventNative)
        for tenant in perEventSigma.keys.sorted(by: { $0.rawValue < $1.rawValue }) {
            do {
                try await evaluateTogether(perEventSigma[tenant]!, tenant: tenant, report: &report)
            } catch {
                failed(tenant, "sigma rules", error, &report)
            }
        }
        return report
    }

    func failed(_ tenant: TenantName, _ rule: String, _ error: any Error, _ report: inout TickReport) {
        report.failures.append("\(tenant)/\(rule): \(error)")
        Counter(label: "vigil_detection_failures_total", dimensions: [("rule", rule)]).increment()
        logger.warning("Rule evaluation failed", metadata: ["tenant": "\(tenant)", "rule": "\(rule)", "error": "\(error)"])
    }

    /// A tenant's per-event Sigma rules, evaluated together: rules whose next windows end at
    /// the same time (all of them after their first window, since they share the clock and
    /// planner) share one read and one pass of the rule index (`SigmaRuleSet`) per event, and
    /// their window commits go to the store in one transaction. Each rule keeps its own
    /// lease, watermark, coverage and alerts, exactly as if evaluated alone.
    func evaluateTogether(_ members: [(record: RuleRecord, rule: SigmaDetectionRule)], tenant: TenantName, report: inout TickReport) async throws {
        let set = ruleSet(tenant: tenant, members: members)
        var watermarks = members.map(\.record.watermark)
        var stopped = [Bool](repeating: false, count: members.count)  // lease held elsewhere or commit refused
        // Where this tick's windows end at the latest, read once: the rounds below catch up to
        // it in windows of at most the maximum size. Read again each round, `now` had moved on
        // a little, so every round found one more window of a few milliseconds and a thousand
        // rules made all their rounds' commits on every tick. The oldest event not yet stored
        // is read each round (after the clock, as windows need): when the pipeline catches up
        // during a tick, the tick goes on to the horizon instead of leaving it to the next.
        let horizon = clock.now()
        for _ in 0..<maxWindowsPerTick {
            let now = clock.now()
            let oldest = oldestUnstored()
            // Rules whose windows end together share one read: rules added at different
            // times start at different watermarks, but their first windows all end at
            // `now - lag`, so from then on their windows are the same.
            var byEnd: [EpochMillis: [(index: Int, window: Range<EpochMillis>)]] = [:]
            for i in members.indices where !stopped[i] {
                if let window = planner.nextWindow(watermark: watermarks[i], now: horizon, oldestUnstored: oldest, bucketMillis: nil) {
                    byEnd[window.upperBound, default: []].append((i, window))
                }
            }
            guard !byEnd.isEmpty else {
                if members.indices.contains(where: { !stopped[$0] && planner.isHeldBack(watermark: watermarks[$0], now: horizon, oldestUnstored: oldest, bucketMillis: nil) }) {
                    report.heldBack = true
                }
                return
            }
            for end in byEnd.keys.sorted() {
                var leased: [(index: Int, window: Range<EpochMillis>, token: UInt64)] = []
                for (i, window) in byEnd[end]! {
                    if let lease = await coordinator.acquire("rule/\(tenant)/\(members[i].record.id)", holder: holder, ttlMillis: 60_000, now: now) {
                        leased.append((i, window, lease.token))
                    } else {
                        stopped[i] = true
                    }
                }
                guard !leased.isEmpty else { continue }
                // What each rule needs read: its window, up to where admission matches it.
                let unread = leased.map { l -> Range<EpochMillis> in
                    let record = members[l.index].record
                    let since = inline?.since(tenant: tenant, id: record.id, source: record.source) ?? end
                    return l.window.lowerBound..<max(l.window.lowerBound, min(end, since))
                }
                var position = [Int](repeating: -1, count: members.count)
                for (n, l) in leased.enumerated() where !unread[n].isEmpty { position[l.index] = n }
                var matched = [[Event]](repeating: [], count: leased.count)
                let needed = unread.filter { !$0.isEmpty }
                if let start = needed.map(\.lowerBound).min(), let stop = needed.map(\.upperBound).max() {
                    for event in try await readWindow(tenant: tenant, query: Query(filter: .all, stages: []), name: "sigma rules", window: start..<stop) {
                        for hit in set.matches(event.fields) where position[hit] >= 0 {
                            let n = position[hit]
                            if unread[n].contains(event.ingested) { matched[n].append(event) }
                        }
                    }
                }
                let commits = leased.enumerated().map { n, l in
                    let (record, rule) = members[l.index]
                    let drafts = matched[n].map(AlertDraft.event)
                    return WindowCommit(tenant: tenant, ruleID: record.id, window: l.window, fencingToken: l.token,
                                        alerts: Self.alerts(drafts, tenant: tenant, ruleID: record.id, severity: rule.severity, window: l.window, now: now))
                }
                for (n, result) in try await detection.commit(commits).enumerated() {
                    let i = leased[n].index
                    switch result {
                    case .success(let inserted):
                        watermarks[i] = end
                        Self.counted(window: inserted, severity: members[i].rule.severity, &report)
                    case .failure(let error):
                        stopped[i] = true
                        failed(tenant, members[i].record.id, error, &report)
                    }
                }
            }
        }
    }

    /// The rule index of the members (in their order), built once per change of the rules.
    func ruleSet(tenant: TenantName, members: [(record: RuleRecord, rule: SigmaDetectionRule)]) -> SigmaRuleSet {
        let fingerprint = members.map { InlineDetection.fingerprint(id: $0.record.id, source: $0.record.source) }
        if let cached = ruleSets.withLock({ $0[tenant] }), cached.fingerprint == fingerprint { return cached.set }
        let set = SigmaRuleSet(members.map(\.rule.sigma), mapping: members.first?.rule.mapping ?? .standard)
        ruleSets.withLock { $0[tenant] = (fingerprint, set) }
        return set
    }

    func evaluate(_ rule: any DetectionRule, record: RuleRecord, report: inout TickReport) async throws {
        var watermark = record.watermark
        // Read once, as in `evaluateTogether`.
        let horizon = clock.now()
        for _ in 0..<maxWindowsPerTick {
            let now = clock.now()
            let oldest = oldestUnstored()
            guard let window = planner.nextWindow(watermark: watermark, now: horizon, oldestUnstored: oldest, bucketMillis: rule.bucketMillis) else {
                if planner.isHeldBack(watermark: watermark, now: horizon, oldestUnstored: oldest, bucketMillis: rule.bucketMillis) { report.heldBack = true }
                return
            }
            guard let lease = await coordinator.acquire("rule/\(record.tenant)/\(record.id)", holder: holder, ttlMillis: 60_000, now: now) else { return }
            let windowEvents = try await readWindow(tenant: record.tenant, query: rule.prefilter, name: rule.id, window: window)
            let drafts = rule.evaluate(windowEvents, window: window)
            let alerts = Self.alerts(drafts, tenant: record.tenant, ruleID: record.id, severity: rule.severity, window: window, now: now)
            let inserted = try await detection.commit(WindowCommit(tenant: record.tenant, ruleID: record.id, window: window, fencingToken: lease.token, alerts: alerts))
            Self.counted(window: inserted, severity: rule.severity, &report)
            watermark = window.upperBound
        }
    }

    /// A committed window with its new alerts, in the tick report and the metrics.
    static func counted(window inserted: Int, severity: String, _ report: inout TickReport) {
        report.windows += 1
        report.alerts += inserted
        Counter(label: "vigil_detection_windows_total").increment()
        Counter(label: "vigil_alerts_total", dimensions: [("severity", severity)]).increment(by: inserted)
    }

    static func alerts(_ drafts: [AlertDraft], tenant: TenantName, ruleID: String, severity: String, window: Range<EpochMillis>, now: EpochMillis) -> [AlertRecord] {
        drafts.map { draft in
            let digest = alertDigest(tenant: tenant, ruleID: ruleID, discriminator: draft.discriminator)
            return AlertRecord(tenant: tenant, ruleID: ruleID, severity: severity,
                               key: alertKey(digest, ingested: draft.ingested ?? window.lowerBound), formerKey: EventKey(digest: digest),
                               eventIDs: draft.events.map(\.key.description), group: draft.group,
                               firstSeen: draft.events.lazy.map(\.timestamp).min() ?? window.lowerBound,
                               lastSeen: draft.events.lazy.map(\.timestamp).max() ?? window.lowerBound, created: now)
        }
    }

    func readWindow(tenant: TenantName, query: Query, name: String, window: Range<EpochMillis>) async throws -> [Event] {
        var all: [Event] = []
        var after: (EpochMillis, EventKey)?
        while true {
            let page = try await events.eventsIngested(tenant: tenant, query: query, from: window.lowerBound, to: window.upperBound, after: after, limit: Self.pageSize)
            all += page
            guard page.count == Self.pageSize, let last = page.last else { return all }
            guard all.count < Self.maxEventsPerWindow else {
                throw DetectionStoreError(.unknownRule, "window \(window) of \(name) holds more than \(Self.maxEventsPerWindow) candidate events; narrow the rule's query")
            }
            after = (last.ingested, last.key)
        }
    }

    /// An alert's key: the second of `ingested` (its event's ingest time, or its window's
    /// start), then 88 bits of a digest of tenant, rule and discriminator. Keys sort by time,
    /// as event keys do (`EventKey(second:digest:)`): a batch's alerts go into a few pages at
    /// the end of the key index instead of one page each all over it. The detect bench's
    /// alerts (one for every fifth event) wrote more log than the events themselves.
    static func alertKey(tenant: TenantName, ruleID: String, discriminator: String, ingested: EpochMillis) -> EventKey {
        alertKey(alertDigest(tenant: tenant, ruleID: ruleID, discriminator: discriminator), ingested: ingested)
    }

    static func alertKey(_ digest: SHA256.Digest, ingested: EpochMillis) -> EventKey {
        digest.withUnsafeBytes { EventKey(second: ingested / 1000, digest: $0) }
    }

    /// The key the same alert had before keys sorted by time: the digest's first 16 bytes.
    static func formerAlertKey(tenant: TenantName, ruleID: String, discriminator: String) -> EventKey {
        EventKey(digest: alertDigest(tenant: tenant, ruleID: ruleID, discriminator: discriminator))
    }

    static func alertDigest(tenant: TenantName, ruleID: String, discriminator: String) -> SHA256.Digest {
        SHA256.hash(data: Array("alert\u{0}\(tenant.rawValue)\u{0}\(ruleID)\u{0}\(discriminator)".utf8))
    }
}

