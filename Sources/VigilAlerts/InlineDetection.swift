import Crypto
import Logging
import Metrics
import Synchronization
import VigilCore
import VigilQuery
import VigilSigma
import VigilStorage

/// Per-event rules matched as events are admitted, their alerts inserted as the events are
/// stored: Sigma rules, and native rules without a threshold.
///
/// Native rules match through the store's own evaluation of their queries
/// (`EventStore.eventPredicates(for:)`), which matches only events the store's query certainly
/// returns; the scheduler still reads their windows with the query, so an event the predicate
/// could not decide alerts then, under the same key.
///
/// The scheduler publishes each tenant's per-event rules every tick; a change is adopted
/// at once. Admission asks for a tenant's adopted rules after taking a request's receive time
/// (`AdmissionMatcher`) and tags each event with the rules it matches (`StoredEvent.matched`,
/// carried by the intake record). Once the pipeline has stored the events, `stored` inserts
/// the tagged events' alerts, whose keys are the scheduler's own (`e:<event key>`): a
/// replayed batch, or a window the scheduler reads as well, finds them there.
///
/// A rule adopted at time `A` is matched on every event received from `since = A + 1` on: the
/// clock is read under the lock that adoption holds, so a request received then asks for its
/// rules after the adoption. The scheduler keeps each Sigma rule's watermark and coverage, and
/// reads only the part of a window before `since` (events received before a rule was adopted,
/// or before a restart); from `since` on it commits windows without reading them.
public final class InlineDetection: AdmissionMatcher, Sendable {
    struct Member: Sendable {
        enum Rule: Sendable {
            case sigma(SigmaDetectionRule)
            /// A native rule without a threshold, through the store's predicate for its query.
            case native(NativeRule)
        }

        let id: String
        let source: String
        let severity: String
        let rule: Rule
        /// What events carry when they match this version of the rule.
        let tag: UInt64
        var fingerprint: String { InlineDetection.fingerprint(id: id, source: source) }

        init(id: String, source: String, severity: String, rule: Rule) {
            self.id = id
            self.source = source
            self.severity = severity
            self.rule = rule
            tag = SHA256.hash(data: Array(InlineDetection.fingerprint(id: id, source: source).utf8)).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
        }
    }

    /// What tells a rule's versions apart: its id and source.
    static func fingerprint(id: String, source: String) -> String { "\(id)\u{0}\(source)" }

    /// A tenant's rules as adopted: what admission matches events with.
    struct Adopted: EventMatcher {
        var members: [Member]
        /// The Sigma members' rule index; `sigmaMembers[i]` is its rule `i`'s place in `members`.
        var set: SigmaRuleSet
        var sigmaMembers: [Int]
        /// The native members' places in `members`, and the store's predicates for their queries.
        var natives: [Int]
        var predicates: (any EventPredicates)?
        /// From which receive time each rule (by fingerprint) is matched here.
        var since: [String: EpochMillis]
        /// Each member's place in `members`, by tag.
        var byTag: [UInt64: Int]

        init(members: [Member], store: (any EventStore)?) {
            self.members = members
            var sigma: [SigmaDetectionRule] = []
            var queries: [Query] = []
            sigmaMembers = []
            natives = []
            for (index, member) in members.enumerated() {
                switch member.rule {
                case .sigma(let rule):
                    sigma.append(rule)
                    sigmaMembers.append(index)
                case .native(let rule):
                    queries.append(rule.query)
                    natives.append(index)
                }
            }
            predicates = queries.isEmpty ? nil : store?.eventPredicates(for: queries)
            set = SigmaRuleSet(sigma.map(\.sigma), mapping: sigma.first?.mapping ?? .standard)
            since = [:]
            byTag = Dictionary(members.enumerated().map { ($1.tag, $0) }, uniquingKeysWith: { first, _ in first })
        }

        func tags(_ fields: JSONObject) -> [UInt64] {
            var tags = sigmaMembers.isEmpty ? [] : set.matches(fields).map { members[sigmaMembers[$0]].tag }
            if let predicates {
                for index in predicates.matching(fields) { tags.append(members[natives[index]].tag) }
            }
            return tags
        }

        /// Sigma rules and native rules' predicates read the flat fields themselves.
        func tags(flat: FlatFields, appending: JSONObject) -> [UInt64] {
            var tags = sigmaMembers.isEmpty ? [] : set.matches(flat: flat, appending: appending).map { members[sigmaMembers[$0]].tag }
            if let predicates {
                for index in predicates.matching(flat: flat, appending: appending) { tags.append(members[natives[index]].tag) }
            }
            return tags
        }
    }

    let detection: any DetectionStore
    /// Where native rules' queries are evaluated (nil: native rules match only in the scheduler).
    let events: (any EventStore)?
    let clock: any VigilClock
    let logger: Logger
    let adopted = Mutex<[TenantName: Adopted]>([:])

    public init(detection: any DetectionStore, events: (any EventStore)? = nil, clock: any VigilClock, logger: Logger) {
        self.detection = detection
        self.events = events
        self.clock = clock
        self.logger = logger
    }

    /// Replaces the published rules: every tenant's per-event Sigma rules and native rules
    /// without a threshold (tenants left out have none). A change is adopted at once; a rule
    /// that was not adopted before is matched from the next millisecond on.
    public func publish(_ rules: [TenantName: [(record: RuleRecord, rule: SigmaDetectionRule)]],
                        native: [TenantName: [(record: RuleRecord, rule: NativeRule)]] = [:]) {
        // Only `publish` changes what is adopted, and the scheduler calls it from one task:
        // the rule sets that changed are built outside the lock.
        let previous = adopted.withLock { $0 }
        var tenants: [TenantName: Adopted] = [:]
        var changed = false
        for tenant in Set(rules.keys).union(native.keys) {
            let list = (rules[tenant] ?? []).map { (record: $0.record, severity: $0.rule.severity, rule: Member.Rule.sigma($0.rule)) }
                + (native[tenant] ?? []).map { (record: $0.record, severity: $0.rule.severity, rule: Member.Rule.native($0.rule)) }
            guard !list.isEmpty else { continue }
            let fingerprints = list.map { InlineDetection.fingerprint(id: $0.record.id, source: $0.record.source) }
            if let old = previous[tenant], old.members.map(\.fingerprint) == fingerprints {
                tenants[tenant] = old
                continue
            }
            changed = true
            tenants[tenant] = Adopted(members: list.map { Member(id: $0.record.id, source: $0.record.source, severity: $0.severity, rule: $0.rule) }, store: events)
        }
        guard changed || tenants.count != previous.count else { return }
        let now = adopted.withLock { current in
            let now = clock.now()
            for tenant in tenants.keys where tenants[tenant]!.since.isEmpty {
                for member in tenants[tenant]!.members {
                    tenants[tenant]!.since[member.fingerprint] = current[tenant]?.since[member.fingerprint] ?? now + 1
                }
            }
            current = tenants
            return now
        }
        logger.debug("Per-event rules adopted", metadata: [
            "tenants": "\(tenants.count)", "rules": "\(tenants.values.reduce(0) { $0 + $1.members.count })", "since": "\(now + 1)",
        ])
    }

    /// The tenant's adopted rules (admission calls this after taking the receive time).
    public func matcher(for tenant: TenantName) -> (any EventMatcher)? {
        adopted.withLock { $0[tenant] }
    }

    /// The receive time from which admission matches this rule; nil while it does not.
    public func since(tenant: TenantName, id: String, source: String) -> EpochMillis? {
        adopted.withLock { $0[tenant]?.since[Self.fingerprint(id: id, source: source)] }
    }

    /// Inserts the alerts of stored events that matched rules at admission. A tag of a rule
    /// no longer adopted (deleted, or changed since) is passed over: from its new `since` on
    /// the scheduler reads what came before.
    public func stored(_ events: [StoredEvent]) async throws {
        guard events.indices.contains(where: { !events[$0].matched.isEmpty }) else { return }
        let tenants = adopted.withLock { $0 }
        let now = clock.now()
        var alerts: [AlertRecord] = []
        // By index, reading the fields used: a copy of each event would retain a dozen strings.
        for index in events.indices where !events[index].matched.isEmpty {
            let tenant = events[index].tenant, key = events[index].key
            guard let adopted = tenants[tenant] else { continue }
            // An alert names its events by key and time: the document is not parsed back.
            let draft = AlertDraft.event(Event(tenant: tenant, key: key, timestamp: events[index].timestamp, ingested: events[index].ingested, fields: JSONObject()))
            let ingested = events[index].ingested
            for tag in events[index].matched {
                guard let member = adopted.byTag[tag] else { continue }
                alerts += DetectionScheduler.alerts([draft], tenant: tenant, ruleID: adopted.members[member].id, severity: adopted.members[member].severity,
                                                    window: ingested..<(ingested + 1), now: now)
            }
        }
        guard !alerts.isEmpty else { return }
        // Counted once per severity: a counter looked up per alert went through the metrics
        // factory's lock and label table every time.
        var bySeverity: [String: Int] = [:]
        for alert in try await detection.insertAlerts(alerts) { bySeverity[alert.severity, default: 0] += 1 }
        for (severity, count) in bySeverity {
            Counter(label: "vigil_alerts_total", dimensions: [("severity", severity)]).increment(by: count)
        }
    }
}
