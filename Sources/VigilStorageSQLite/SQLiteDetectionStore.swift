import Foundation
import GRDB
import VigilCore
import VigilStorage

/// Rules, watermarks, coverage, alerts and the webhook outbox in `<data-dir>/detection.sqlite`.
/// A window's alerts, its coverage and the new watermark are one transaction.
public final class SQLiteDetectionStore: DetectionStore {
    let pool: DatabasePool
    /// How alerts are written: `notify` false writes no outbox rows (no webhook configured).
    let writing: AlertWriting

    public init(dataDirectory: URL, notifications: Bool) throws {
        pool = try SQLiteEventStore.openPool(dataDirectory.appendingPathComponent("detection.sqlite"), migrator: Self.migrator)
        let sortedSince = try pool.read { db in try Int64.fetchOne(db, sql: "SELECT sorted_since FROM alert_key_format") } ?? 0
        writing = AlertWriting(notify: notifications, sortedSince: sortedSince)
    }

    static let migrator: DatabaseMigrator = {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE rule (tenant TEXT NOT NULL, id TEXT NOT NULL, format TEXT NOT NULL, source TEXT NOT NULL,
                                   created INTEGER NOT NULL, watermark INTEGER NOT NULL, fence INTEGER NOT NULL DEFAULT 0,
                                   PRIMARY KEY (tenant, id)) WITHOUT ROWID;
                CREATE TABLE coverage (tenant TEXT NOT NULL, rule_id TEXT NOT NULL, start INTEGER NOT NULL, end INTEGER NOT NULL,
                                       PRIMARY KEY (tenant, rule_id, start)) WITHOUT ROWID;
                CREATE TABLE alert (id INTEGER PRIMARY KEY, tenant TEXT NOT NULL, rule_id TEXT NOT NULL, severity TEXT NOT NULL,
                                    key BLOB NOT NULL, event_ids TEXT NOT NULL, grp TEXT NOT NULL, first_seen INTEGER NOT NULL,
                                    last_seen INTEGER NOT NULL, status TEXT NOT NULL, created INTEGER NOT NULL, updated INTEGER NOT NULL);
                CREATE UNIQUE INDEX alert_key ON alert(tenant, key);
                CREATE INDEX alert_time ON alert(tenant, created);
                CREATE TABLE outbox (id INTEGER PRIMARY KEY, alert_id INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
                                     due INTEGER NOT NULL);
                CREATE INDEX outbox_due ON outbox(due);
                """)
        }
        // v2: alert keys sort by time (`DetectionScheduler.alertKey`). The second this
        // version started is kept: an alert of events ingested before it may already be
        // stored under its former key, and is looked for by that key too.
        migrator.registerMigration("v2") { db in
            try db.execute(sql: "CREATE TABLE alert_key_format (id INTEGER PRIMARY KEY CHECK (id = 1), sorted_since INTEGER NOT NULL)")
            try db.execute(sql: "INSERT INTO alert_key_format (id, sorted_since) VALUES (1, ?)", arguments: [Int64(Date().timeIntervalSince1970)])
        }
        return migrator
    }()

    /// A rule by tenant and id, as a dictionary key (without joining them into a new string).
    struct RuleName: Hashable {
        var tenant: TenantName
        var id: String
    }

    /// How a transaction writes alerts.
    struct AlertWriting: Sendable {
        /// Whether each new alert gets an outbox row for the webhook.
        var notify: Bool
        /// The second from which alert keys sort by time (the `v2` migration's).
        var sortedSince: Int64
    }

    public func saveRule(_ rule: RuleRecord) async throws {
        try await pool.write { db in
            try db.execute(sql: """
                INSERT INTO rule (tenant, id, format, source, created, watermark) VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT (tenant, id) DO UPDATE SET format = excluded.format, source = excluded.source
                """, arguments: [rule.tenant.rawValue, rule.id, rule.format, rule.source, rule.created, rule.watermark])
        }
    }

    static func rule(_ row: Row) -> RuleRecord? {
        guard let tenant = TenantName(row["tenant"] as String) else { return nil }
        return RuleRecord(tenant: tenant, id: row["id"], format: row["format"], source: row["source"], created: row["created"], watermark: row["watermark"])
    }

    public func rules(tenant: TenantName?) async throws -> [RuleRecord] {
        try await pool.read { db in
            if let tenant {
                return try Row.fetchAll(db, sql: "SELECT * FROM rule WHERE tenant = ? ORDER BY id", arguments: [tenant.rawValue]).compactMap(Self.rule)
            }
            return try Row.fetchAll(db, sql: "SELECT * FROM rule ORDER BY tenant, id").compactMap(Self.rule)
        }
    }

    public func rule(tenant: TenantName, id: String) async throws -> RuleRecord? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM rule WHERE tenant = ? AND id = ?", arguments: [tenant.rawValue, id]).flatMap(Self.rule)
        }
    }

    public func deleteRule(tenant: TenantName, id: String) async throws -> Bool {
        try await pool.write { db in
            try db.execute(sql: "DELETE FROM rule WHERE tenant = ? AND id = ?", arguments: [tenant.rawValue, id])
            let deleted = db.changesCount > 0
            try db.execute(sql: "DELETE FROM coverage WHERE tenant = ? AND rule_id = ?", arguments: [tenant.rawValue, id])
            return deleted
        }
    }

    public func commit(_ commit: WindowCommit) async throws -> Int {
        let writing = writing
        return try await pool.write { db in try Self.apply(commit, writing, db) }
    }

    /// Many rules' windows in one transaction; a commit that is refused (moved watermark,
    /// stale token, deleted rule) changes nothing and the others go on. `apply` refuses before
    /// it writes, so no savepoint is needed to undo a refused commit: a thousand rules commit
    /// a window every tick, and a savepoint each was two more statements, parsed every time.
    public func commit(_ commits: [WindowCommit]) async throws -> [Result<Int, DetectionStoreError>] {
        let writing = writing
        return try await pool.write { db in
            var results: [Result<Int, DetectionStoreError>] = []
            results.reserveCapacity(commits.count)
            for commit in commits {
                do {
                    results.append(.success(try Self.apply(commit, writing, db)))
                } catch let error as DetectionStoreError {
                    results.append(.failure(error))
                }
            }
            return results
        }
    }

    public func insertAlerts(_ alerts: [AlertRecord]) async throws -> [AlertRecord] {
        guard !alerts.isEmpty else { return [] }
        let writing = writing
        return try await pool.write { db in
            var inserted: [AlertRecord] = []
            // Whether each rule still exists, asked once per rule and transaction: a batch of
            // events alerts for the same few rules many times.
            var exists: [RuleName: Bool] = [:]
            for alert in alerts {
                let rule = RuleName(tenant: alert.tenant, id: alert.ruleID)
                if exists[rule] == nil {
                    exists[rule] = try Bool.fetchOne(db.cachedStatement(sql: "SELECT EXISTS (SELECT 1 FROM rule WHERE tenant = ? AND id = ?)"),
                                                     arguments: [alert.tenant.rawValue, alert.ruleID]) ?? false
                }
                guard exists[rule] == true else { continue }
                if try Self.insert(alert, writing, db) { inserted.append(alert) }
            }
            return inserted
        }
    }

    /// Inserts an alert unless its key exists, or its former key for an alert whose key sorts
    /// before `sortedSince` (with its notification when webhooks are on); true when it was new.
    static func insert(_ alert: AlertRecord, _ writing: AlertWriting, _ db: Database) throws -> Bool {
        if let former = alert.formerKey, Int64(alert.key.high >> 24) < writing.sortedSince {
            let stored = RawStatement(try db.cachedStatement(sql: "SELECT 1 FROM alert WHERE tenant = ? AND key = ?"))
            stored.bind(1, alert.tenant.rawValue)
            stored.bind(2, former)
            if try stored.firstRow(db, { _ in true }) != nil { return false }
        }
        // Cached statements bound through the C API, here and in `apply`: a thousand rules
        // commit a window every tick, and a busy pipeline inserts an alert for one event in
        // five of the detect bench's.
        let add = RawStatement(try db.cachedStatement(sql: """
            INSERT OR IGNORE INTO alert (tenant, rule_id, severity, key, event_ids, grp, first_seen, last_seen, status, created, updated)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """))
        add.bind(1, alert.tenant.rawValue)
        add.bind(2, alert.ruleID)
        add.bind(3, alert.severity)
        add.bind(4, alert.key)
        add.bind(5, JSONWriter.string(.array(alert.eventIDs.map(JSONValue.string))))
        add.bind(6, JSONWriter.string(.object(alert.group)))
        add.bind(7, alert.firstSeen)
        add.bind(8, alert.lastSeen)
        add.bind(9, alert.status.rawValue)
        add.bind(10, alert.created)
        add.bind(11, alert.created)
        try add.run(db)
        guard db.changesCount > 0 else { return false }
        if writing.notify {
            let queue = RawStatement(try db.cachedStatement(sql: "INSERT INTO outbox (alert_id, due) VALUES (?, ?)"))
            queue.bind(1, db.lastInsertedRowID)
            queue.bind(2, alert.created)
            try queue.run(db)
        }
        return true
    }

    /// Writes a window's alerts, coverage and watermark. Every refusal (`DetectionStoreError`)
    /// is thrown before the first write, so a refused commit has changed nothing.
    static func apply(_ commit: WindowCommit, _ writing: AlertWriting, _ db: Database) throws -> Int {
        let tenant = commit.tenant.rawValue
        let state = RawStatement(try db.cachedStatement(sql: "SELECT watermark, fence FROM rule WHERE tenant = ? AND id = ?"))
        state.bind(1, tenant)
        state.bind(2, commit.ruleID)
        guard let (watermark, fence) = try state.firstRow(db, { ($0.int64(0), $0.int64(1)) }) else {
            throw DetectionStoreError(.unknownRule, "rule \(commit.ruleID) does not exist")
        }
        guard Int64(truncatingIfNeeded: commit.fencingToken) >= fence else {
            throw DetectionStoreError(.staleFencingToken, "token \(commit.fencingToken) is older than \(fence)")
        }
        guard watermark == commit.window.lowerBound else {
            throw DetectionStoreError(.watermarkMoved, "watermark is \(watermark), the window starts at \(commit.window.lowerBound)")
        }
        var inserted = 0
        for alert in commit.alerts {
            if try insert(alert, writing, db) { inserted += 1 }
        }
        // Coverage: extend the interval that ends where this window starts, else add one.
        let extend = RawStatement(try db.cachedStatement(sql: "UPDATE coverage SET end = ? WHERE tenant = ? AND rule_id = ? AND end = ?"))
        extend.bind(1, commit.window.upperBound)
        extend.bind(2, tenant)
        extend.bind(3, commit.ruleID)
        extend.bind(4, commit.window.lowerBound)
        try extend.run(db)
        if db.changesCount == 0 {
            let add = RawStatement(try db.cachedStatement(sql: "INSERT INTO coverage (tenant, rule_id, start, end) VALUES (?, ?, ?, ?)"))
            add.bind(1, tenant)
            add.bind(2, commit.ruleID)
            add.bind(3, commit.window.lowerBound)
            add.bind(4, commit.window.upperBound)
            try add.run(db)
        }
        let advance = RawStatement(try db.cachedStatement(sql: "UPDATE rule SET watermark = ?, fence = ? WHERE tenant = ? AND id = ?"))
        advance.bind(1, commit.window.upperBound)
        advance.bind(2, Int64(truncatingIfNeeded: commit.fencingToken))
        advance.bind(3, tenant)
        advance.bind(4, commit.ruleID)
        try advance.run(db)
        return inserted
    }

    public func coverage(tenant: TenantName, ruleID: String) async throws -> [Range<EpochMillis>] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT start, end FROM coverage WHERE tenant = ? AND rule_id = ? ORDER BY start",
                             arguments: [tenant.rawValue, ruleID]).map { ($0["start"] as Int64)..<($0["end"] as Int64) }
        }
    }

    static func alert(_ row: Row) -> AlertRecord? {
        guard let tenant = TenantName(row["tenant"] as String), let keyData = row["key"] as Data?, keyData.count == 16,
              let status = AlertStatus(rawValue: row["status"]) else { return nil }
        let ids = (try? JSONParser.parse(row["event_ids"] as String))
        let group = (try? JSONParser.parse(row["grp"] as String))?.objectValue ?? JSONObject()
        var eventIDs: [String] = []
        if case .array(let values)? = ids { eventIDs = values.compactMap(\.stringValue) }
        return AlertRecord(id: row["id"], tenant: tenant, ruleID: row["rule_id"], severity: row["severity"], key: EventKey(bytes: Array(keyData)),
                           eventIDs: eventIDs, group: group, firstSeen: row["first_seen"], lastSeen: row["last_seen"], status: status, created: row["created"])
    }

    public func alerts(tenant: TenantName, ruleID: String?, status: AlertStatus?, from: EpochMillis, to: EpochMillis, limit: Int) async throws -> [AlertRecord] {
        try await pool.read { db in
            var sql = "SELECT * FROM alert WHERE tenant = ? AND created >= ? AND created < ?"
            var arguments: [(any DatabaseValueConvertible)?] = [tenant.rawValue, from, to]
            if let ruleID {
                sql += " AND rule_id = ?"
                arguments.append(ruleID)
            }
            if let status {
                sql += " AND status = ?"
                arguments.append(status.rawValue)
            }
            sql += " ORDER BY created DESC, id DESC LIMIT \(max(0, limit))"
            return try Row.fetchAll(db, sql: sql, arguments: StatementArguments(arguments)).compactMap(Self.alert)
        }
    }

    public func setAlertStatus(tenant: TenantName, id: Int64, status: AlertStatus, now: EpochMillis) async throws -> AlertRecord? {
        try await pool.write { db in
            try db.execute(sql: "UPDATE alert SET status = ?, updated = ? WHERE tenant = ? AND id = ?", arguments: [status.rawValue, now, tenant.rawValue, id])
            return try Row.fetchOne(db, sql: "SELECT * FROM alert WHERE tenant = ? AND id = ?", arguments: [tenant.rawValue, id]).flatMap(Self.alert)
        }
    }

    public func dueNotifications(now: EpochMillis, limit: Int) async throws -> [PendingNotification] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: """
                SELECT outbox.id AS outbox_id, outbox.attempts, alert.* FROM outbox JOIN alert ON alert.id = outbox.alert_id
                WHERE outbox.due <= ? ORDER BY outbox.due, outbox.id LIMIT \(max(0, limit))
                """, arguments: [now]).compactMap { row in
                Self.alert(row).map { PendingNotification(id: row["outbox_id"], alert: $0, attempts: row["attempts"]) }
            }
        }
    }

    public func notificationDelivered(id: Int64) async throws {
        try await pool.write { db in try db.execute(sql: "DELETE FROM outbox WHERE id = ?", arguments: [id]) }
    }

    public func notificationFailed(id: Int64, retryAt: EpochMillis) async throws {
        try await pool.write { db in
            try db.execute(sql: "UPDATE outbox SET attempts = attempts + 1, due = ? WHERE id = ?", arguments: [retryAt, id])
        }
    }
}
