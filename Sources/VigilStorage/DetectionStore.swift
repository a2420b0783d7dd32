import VigilCore

/// A detection rule as stored: its source text (YAML, native or Sigma) and where its
/// scheduled evaluation stands.
public struct RuleRecord: Sendable, Equatable {
    public var tenant: TenantName
    public var id: String
    /// `native` or `sigma`.
    public var format: String
    public var source: String
    public var created: EpochMillis
    /// Ingest time up to which the rule has been evaluated (exclusive).
    public var watermark: EpochMillis

    public init(tenant: TenantName, id: String, format: String, source: String, created: EpochMillis, watermark: EpochMillis) {
        self.tenant = tenant
        self.id = id
        self.format = format
        self.source = source
        self.created = created
        self.watermark = watermark
    }
}

public enum AlertStatus: String, Sendable, CaseIterable {
    case open
    case acknowledged
    case closed
}

public struct AlertRecord: Sendable, Equatable {
    public var id: Int64?
    public var tenant: TenantName
    public var ruleID: String
    public var severity: String
    /// Deterministic per (rule, window bucket or event, group): a re-run of a window after a
    /// crash produces the same keys, and the store keeps one alert per key.
    public var key: EventKey
    /// The key the same alert had before keys sorted by time, when it had one: a batch
    /// stored before an upgrade and replayed after it finds its alert by that key.
    public var formerKey: EventKey?
    public var eventIDs: [String]
    public var group: JSONObject
    public var firstSeen: EpochMillis
    public var lastSeen: EpochMillis
    public var status: AlertStatus
    public var created: EpochMillis

    public init(id: Int64? = nil, tenant: TenantName, ruleID: String, severity: String, key: EventKey, formerKey: EventKey? = nil, eventIDs: [String],
                group: JSONObject, firstSeen: EpochMillis, lastSeen: EpochMillis, status: AlertStatus = .open, created: EpochMillis) {
        self.id = id
        self.tenant = tenant
        self.ruleID = ruleID
        self.severity = severity
        self.key = key
        self.formerKey = formerKey
        self.eventIDs = eventIDs
        self.group = group
        self.firstSeen = firstSeen
        self.lastSeen = lastSeen
        self.status = status
        self.created = created
    }
}

/// The result of evaluating one window of one rule, written atomically.
public struct WindowCommit: Sendable {
    public var tenant: TenantName
    public var ruleID: String
    public var window: Range<EpochMillis>
    /// The lease's fencing token: a commit with a token older than one already seen for the
    /// rule is refused (a worker that lost its lease cannot write).
    public var fencingToken: UInt64
    public var alerts: [AlertRecord]

    public init(tenant: TenantName, ruleID: String, window: Range<EpochMillis>, fencingToken: UInt64, alerts: [AlertRecord]) {
        self.tenant = tenant
        self.ruleID = ruleID
        self.window = window
        self.fencingToken = fencingToken
        self.alerts = alerts
    }
}

public struct DetectionStoreError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        /// The rule's watermark is not where the window starts (another worker moved it).
        case watermarkMoved = "watermark_moved"
        /// The fencing token is older than one already used.
        case staleFencingToken = "stale_fencing_token"
        case unknownRule = "unknown_rule"
    }
    public var code: Code
    public var message: String
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
    public var description: String { "\(code.rawValue): \(message)" }
}

/// A webhook delivery waiting to be made.
public struct PendingNotification: Sendable {
    public var id: Int64
    public var alert: AlertRecord
    public var attempts: Int

    public init(id: Int64, alert: AlertRecord, attempts: Int) {
        self.id = id
        self.alert = alert
        self.attempts = attempts
    }
}

/// Rules, watermarks, coverage, alerts and the notification outbox.
public protocol DetectionStore: Sendable {
    /// Adds a rule, or replaces the source of an existing one (its watermark is kept).
    func saveRule(_ rule: RuleRecord) async throws
    func rules(tenant: TenantName?) async throws -> [RuleRecord]
    func rule(tenant: TenantName, id: String) async throws -> RuleRecord?
    /// Removes a rule, its watermark and coverage; its alerts stay.
    func deleteRule(tenant: TenantName, id: String) async throws -> Bool
    /// Writes the window's alerts (one per key), extends the coverage and moves the watermark
    /// to the window's end, all in one transaction. Returns the number of new alerts.
    func commit(_ commit: WindowCommit) async throws -> Int
    /// Several windows (of different rules) at once, each all-or-nothing on its own: a
    /// refused one fails alone. Returns each one's new alerts or refusal, in order.
    func commit(_ commits: [WindowCommit]) async throws -> [Result<Int, DetectionStoreError>]
    /// Evaluated ingest-time intervals of a rule, merged, oldest first.
    func coverage(tenant: TenantName, ruleID: String) async throws -> [Range<EpochMillis>]
    func alerts(tenant: TenantName, ruleID: String?, status: AlertStatus?, from: EpochMillis, to: EpochMillis, limit: Int) async throws -> [AlertRecord]
    func setAlertStatus(tenant: TenantName, id: Int64, status: AlertStatus, now: EpochMillis) async throws -> AlertRecord?
    /// Alerts found outside a window (per-event rules matched in the ingest pipeline), in one
    /// transaction: an alert whose key exists, or whose rule no longer exists, is skipped.
    /// Returns the new ones. Watermarks and coverage are not touched.
    func insertAlerts(_ alerts: [AlertRecord]) async throws -> [AlertRecord]
    /// Notifications due at `now`, oldest first.
    func dueNotifications(now: EpochMillis, limit: Int) async throws -> [PendingNotification]
    func notificationDelivered(id: Int64) async throws
    func notificationFailed(id: Int64, retryAt: EpochMillis) async throws
}

extension DetectionStore {
    /// One transaction per window.
    public func commit(_ commits: [WindowCommit]) async throws -> [Result<Int, DetectionStoreError>] {
        var results: [Result<Int, DetectionStoreError>] = []
        for commit in commits {
            do {
                results.append(.success(try await self.commit(commit)))
            } catch let error as DetectionStoreError {
                results.append(.failure(error))
            }
        }
        return results
    }
}
