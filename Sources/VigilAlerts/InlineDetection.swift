import Logging
import Metrics
import Synchronization
import VigilCore
import VigilSigma
import VigilStorage

/// Per-event Sigma rules matched in the ingest pipeline, as events are stored.
///
/// The scheduler publishes each tenant's per-event Sigma rules every tick; the pipeline adopts
/// what was published before it reads each batch from the queue (`beforeNextBatch`) and
/// matches the events it stores through the tenant's rule index (`stored`), inserting alerts
/// whose keys are the scheduler's own (`e:<event key>`): a replayed batch, or a window the
/// scheduler reads as well, finds them there.
///
/// A rule adopted at time `A` is matched on every event received from `since = A + 1` on: an
/// event received then was appended to the queue after the pipeline adopted the rule, so it is
/// in a batch read after it. The scheduler keeps each rule's watermark and coverage, and reads
/// only the part of a window before `since` (events stored before the pipeline knew the rule,
/// or before a restart); from `since` on it commits windows without reading them.
public final class InlineDetection: Sendable {
    struct Member: Sendable {
        let id: String
        let source: String
        let rule: SigmaDetectionRule
        var fingerprint: String { InlineDetection.fingerprint(id: id, source: source) }
    }

    /// What tells a rule's versions apart: its id and source.
    static func fingerprint(id: String, source: String) -> String { "\(id)\u{0}\(source)" }

    struct Adopted: Sendable {
        var members: [Member]
        var set: SigmaRuleSet
        /// From which receive time each rule (by fingerprint) is matched here.
        var since: [String: EpochMillis]
    }

    let detection: any DetectionStore
    let clock: any VigilClock
    let logger: Logger
    let published = Mutex<(version: Int, rules: [TenantName: [Member]])>((0, [:]))
    let adopted = Mutex<(version: Int, tenants: [TenantName: Adopted])>((0, [:]))

    public init(detection: any DetectionStore, clock: any VigilClock, logger: Logger) {
        self.detection = detection
        self.clock = clock
        self.logger = logger
    }

    /// Replaces the published rules: every tenant's per-event Sigma rules (tenants left out
    /// have none).
    public func publish(_ rules: [TenantName: [(record: RuleRecord, rule: SigmaDetectionRule)]]) {
        let members = rules.mapValues { $0.map { Member(id: $0.record.id, source: $0.record.source, rule: $0.rule) } }
        published.withLock { current in
            let same = current.rules.count == members.count && members.allSatisfy { tenant, list in
                current.rules[tenant].map { $0.map(\.fingerprint) == list.map(\.fingerprint) } ?? false
            }
            if !same { current = (current.version + 1, members) }
        }
    }

    /// Adopts what was published since the last call (the pipeline calls this before reading
    /// a batch). Rules it did not match before are matched from the next millisecond on.
    public func beforeNextBatch() {
        let (version, rules) = published.withLock { $0 }
        guard adopted.withLock({ $0.version }) != version else { return }
        let now = clock.now()
        let previous = adopted.withLock { $0.tenants }
        var tenants: [TenantName: Adopted] = [:]
        for (tenant, members) in rules where !members.isEmpty {
            let old = previous[tenant]
            if let old, old.members.map(\.fingerprint) == members.map(\.fingerprint) {
                tenants[tenant] = old
                continue
            }
            var since: [String: EpochMillis] = [:]
            for member in members { since[member.fingerprint] = old?.since[member.fingerprint] ?? now + 1 }
            tenants[tenant] = Adopted(members: members, set: SigmaRuleSet(members.map(\.rule.sigma), mapping: members.first?.rule.mapping ?? .standard), since: since)
        }
        adopted.withLock { $0 = (version, tenants) }
        logger.debug("Per-event Sigma rules adopted by the pipeline", metadata: [
            "tenants": "\(tenants.count)", "rules": "\(tenants.values.reduce(0) { $0 + $1.members.count })", "since": "\(now + 1)",
        ])
    }

    /// The receive time from which the pipeline matches this rule; nil while it does not.
    public func since(tenant: TenantName, id: String, source: String) -> EpochMillis? {
        adopted.withLock { $0.tenants[tenant]?.since[Self.fingerprint(id: id, source: source)] }
    }

    /// Matches stored events against their tenant's adopted rules and inserts the alerts.
    public func stored(_ events: [StoredEvent]) async throws {
        let tenants = adopted.withLock { $0.tenants }
        guard !tenants.isEmpty else { return }
        let now = clock.now()
        var alerts: [AlertRecord] = []
        // By runs of one tenant (a batch is mostly one tenant's): its rules are looked up once
        // per run, not copied out of the dictionary for every event.
        var start = events.startIndex
        while start < events.endIndex {
            let tenant = events[start].tenant
            var end = start + 1
            while end < events.endIndex, events[end].tenant == tenant { end += 1 }
            defer { start = end }
            guard let adopted = tenants[tenant], !adopted.members.isEmpty else { continue }
            for index in start..<end {
                guard let full = events[index].event() else { continue }
                let hits = adopted.set.matches(full.fields)
                guard !hits.isEmpty else { continue }
                let draft = AlertDraft(discriminator: "e:\(full.key)", group: JSONObject(), events: [full])
                for hit in hits {
                    let member = adopted.members[hit]
                    alerts += DetectionScheduler.alerts([draft], tenant: tenant, ruleID: member.id, severity: member.rule.severity,
                                                        window: full.ingested..<(full.ingested + 1), now: now)
                }
            }
        }
        guard !alerts.isEmpty else { return }
        for alert in try await detection.insertAlerts(alerts) {
            Counter(label: "vigil_alerts_total", dimensions: [("severity", alert.severity)]).increment()
        }
    }
}
