import Crypto
import Logging
import Metrics
import ServiceLifecycle
import VigilCore
import VigilQuery
import VigilStorage

/// What a rule found in a window: one alert per draft.
public struct AlertDraft: Sendable, Equatable {
    /// Makes the alert key with the rule and tenant: the event key for per-event rules, the
    /// bucket and group values for threshold and correlation rules.
    public var discriminator: String
    public var group: JSONObject
    public var events: [Event]

    public init(discriminator: String, group: JSONObject, events: [Event]) {
        self.discriminator = discriminator
        self.group = group
        self.events = events
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
    let holder: String
    let intervalMillis: Int64
    let maxWindowsPerTick: Int
    let logger: Logger
    /// Events read per store page.
    static let pageSize = 5_000
    /// A window holding more events than this is refused (counted) rather than read whole.
    public static let maxEventsPerWindow = 500_000

    public init(events: any EventStore, detection: any DetectionStore, compiler: any RuleCompiling, coordinator: any Coordinator,
                clock: any VigilClock, planner: WindowPlanner, oldestUnstored: @escaping @Sendable () -> EpochMillis?,
                holder: String = "vigil", intervalMillis: Int64 = 10_000, maxWindowsPerTick: Int = 24, logger: Logger) {
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
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            _ = await tick()
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .milliseconds(self.intervalMillis)) }
        }
    }

    public struct TickReport: Sendable, Equatable {
        public var windows = 0
        public var alerts = 0
        public var failures: [String] = []
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
        for record in records {
            do {
                let rule = try compiler.compile(record)
                try await evaluate(rule, record: record, report: &report)
            } catch {
                report.failures.append("\(record.tenant)/\(record.id): \(error)")
                Counter(label: "vigil_detection_failures_total", dimensions: [("rule", record.id)]).increment()
                logger.warning("Rule evaluation failed", metadata: ["tenant": "\(record.tenant)", "rule": "\(record.id)", "error": "\(error)"])
            }
        }
        return report
    }

    func evaluate(_ rule: any DetectionRule, record: RuleRecord, report: inout TickReport) async throws {
        var watermark = record.watermark
        for _ in 0..<maxWindowsPerTick {
            let now = clock.now()
            guard let window = planner.nextWindow(watermark: watermark, now: now, oldestUnstored: oldestUnstored(), bucketMillis: rule.bucketMillis) else { return }
            guard let lease = await coordinator.acquire("rule/\(record.tenant)/\(record.id)", holder: holder, ttlMillis: 60_000, now: now) else { return }
            let windowEvents = try await readWindow(tenant: record.tenant, rule: rule, window: window)
            let drafts = rule.evaluate(windowEvents, window: window)
            let alerts = drafts.map { draft in
                AlertRecord(tenant: record.tenant, ruleID: record.id, severity: rule.severity,
                            key: Self.alertKey(tenant: record.tenant, ruleID: record.id, discriminator: draft.discriminator),
                            eventIDs: draft.events.map(\.key.description), group: draft.group,
                            firstSeen: draft.events.map(\.timestamp).min() ?? window.lowerBound,
                            lastSeen: draft.events.map(\.timestamp).max() ?? window.lowerBound, created: now)
            }
            let inserted = try await detection.commit(WindowCommit(tenant: record.tenant, ruleID: record.id, window: window, fencingToken: lease.token, alerts: alerts))
            report.windows += 1
            report.alerts += inserted
            Counter(label: "vigil_detection_windows_total").increment()
            Counter(label: "vigil_alerts_total", dimensions: [("severity", rule.severity)]).increment(by: inserted)
            watermark = window.upperBound
        }
    }

    func readWindow(tenant: TenantName, rule: any DetectionRule, window: Range<EpochMillis>) async throws -> [Event] {
        var all: [Event] = []
        var after: (EpochMillis, EventKey)?
        while true {
            let page = try await events.eventsIngested(tenant: tenant, query: rule.prefilter, from: window.lowerBound, to: window.upperBound, after: after, limit: Self.pageSize)
            all += page
            guard page.count == Self.pageSize, let last = page.last else { return all }
            guard all.count < Self.maxEventsPerWindow else {
                throw DetectionStoreError(.unknownRule, "window \(window) of rule \(rule.id) holds more than \(Self.maxEventsPerWindow) candidate events; narrow the rule's query")
            }
            after = (last.ingested, last.key)
        }
    }

    static func alertKey(tenant: TenantName, ruleID: String, discriminator: String) -> EventKey {
        EventKey(digest: SHA256.hash(data: Array("alert\u{0}\(tenant.rawValue)\u{0}\(ruleID)\u{0}\(discriminator)".utf8)))
    }
}
