import Crypto
import Foundation
import GRDB
import Synchronization
import VigilCore
import VigilStorage

/// Tenants and API keys in `<data-dir>/catalog.sqlite`. Keys are stored as SHA-256 hashes
/// only; the clear key is shown once, when it is created.
public final class SQLiteTenantDirectory: TenantDirectory {
    let pool: DatabasePool
    private let cache = Mutex<[String: Principal]>([:])

    public init(dataDirectory: URL) throws {
        pool = try SQLiteEventStore.openPool(dataDirectory.appendingPathComponent("catalog.sqlite"), migrator: Self.migrator)
    }

    static let migrator: DatabaseMigrator = {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE tenant (name TEXT PRIMARY KEY, created INTEGER NOT NULL, retention_days INTEGER NOT NULL DEFAULT 30);
                CREATE TABLE apiKey (hash TEXT PRIMARY KEY, tenant TEXT, role TEXT NOT NULL, created INTEGER NOT NULL);
                """)
        }
        migrator.registerMigration("v2") { db in
            try db.execute(sql: """
                CREATE TABLE search_limit (tenant TEXT NOT NULL, name TEXT NOT NULL, value INTEGER NOT NULL, PRIMARY KEY (tenant, name)) WITHOUT ROWID;
                """)
        }
        return migrator
    }()

    /// Generates a new random API key: `vgl_` and 32 hex-encoded random bytes.
    public static func generateKey() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return Hex.string(prefix: "vgl_", bytes)
    }

    static func hash(_ key: String) -> String {
        SHA256.hash(data: Array(key.utf8)).withUnsafeBytes { Hex.string($0) }
    }

    /// Makes sure an admin key and the `default` tenant exist. On first start the admin key is
    /// `presetAdminKey` when given, else a new one; the clear key is returned only when it was
    /// generated here, so the caller can print it once.
    public func bootstrap(presetAdminKey: String?, now: EpochMillis) throws -> String? {
        try pool.write { db in
            try db.execute(sql: "INSERT OR IGNORE INTO tenant (name, created) VALUES (?, ?)", arguments: [TenantName.defaultTenant.rawValue, now])
            let hasAdmin = try Bool.fetchOne(db, sql: "SELECT 1 FROM apiKey WHERE role = 'admin' LIMIT 1") ?? false
            guard !hasAdmin else { return nil }
            let key = presetAdminKey ?? Self.generateKey()
            try db.execute(sql: "INSERT INTO apiKey (hash, tenant, role, created) VALUES (?, NULL, 'admin', ?)", arguments: [Self.hash(key), now])
            return presetAdminKey == nil ? key : nil
        }
    }

    public func tenantExists(_ tenant: TenantName) async throws -> Bool {
        try await pool.read { db in
            try Bool.fetchOne(db, sql: "SELECT 1 FROM tenant WHERE name = ?", arguments: [tenant.rawValue]) ?? false
        }
    }

    public func createTenant(_ tenant: TenantName) async throws -> String {
        let key = Self.generateKey()
        let hash = Self.hash(key)
        let created = SystemClock().now()
        try await pool.write { db in
            if try Bool.fetchOne(db, sql: "SELECT 1 FROM tenant WHERE name = ?", arguments: [tenant.rawValue]) ?? false {
                throw StoreError(.tenantExists, "tenant '\(tenant)' already exists")
            }
            try db.execute(sql: "INSERT INTO tenant (name, created) VALUES (?, ?)", arguments: [tenant.rawValue, created])
            try db.execute(sql: "INSERT INTO apiKey (hash, tenant, role, created) VALUES (?, ?, 'tenant', ?)", arguments: [hash, tenant.rawValue, created])
        }
        return key
    }

    /// Issues another key for an existing tenant (used for the `default` tenant, which is
    /// created without one).
    public func issueKey(for tenant: TenantName) async throws -> String {
        let key = Self.generateKey()
        let hash = Self.hash(key)
        try await pool.write { db in
            guard try Bool.fetchOne(db, sql: "SELECT 1 FROM tenant WHERE name = ?", arguments: [tenant.rawValue]) ?? false else {
                throw StoreError(.unknownTenant, "tenant '\(tenant)' does not exist")
            }
            try db.execute(sql: "INSERT INTO apiKey (hash, tenant, role, created) VALUES (?, ?, 'tenant', ?)", arguments: [hash, tenant.rawValue, SystemClock().now()])
        }
        return key
    }

    public func listTenants() async throws -> [TenantName] {
        try await pool.read { db in
            try String.fetchAll(db, sql: "SELECT name FROM tenant ORDER BY name").compactMap(TenantName.init)
        }
    }

    public func principal(forKey key: String) async throws -> Principal? {
        guard !key.isEmpty, key.utf8.count <= 256 else { return nil }
        let hash = Self.hash(key)
        if let cached = cache.withLock({ $0[hash] }) { return cached }
        let principal: Principal? = try await pool.read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT tenant, role FROM apiKey WHERE hash = ?", arguments: [hash]) else { return nil }
            let role: String = row["role"]
            if role == "admin" { return .admin }
            guard let name: String = row["tenant"], let tenant = TenantName(name) else { return nil }
            return .tenant(tenant)
        }
        if let principal { cache.withLock { $0[hash] = principal } }
        return principal
    }
}

extension SQLiteTenantDirectory {
    public func retentionDays(_ tenant: TenantName) async throws -> Int {
        try await pool.read { db in
            try Int.fetchOne(db, sql: "SELECT retention_days FROM tenant WHERE name = ?", arguments: [tenant.rawValue]) ?? 30
        }
    }

    public func setRetentionDays(_ tenant: TenantName, days: Int) async throws {
        try await pool.write { db in
            try db.execute(sql: "UPDATE tenant SET retention_days = ? WHERE name = ?", arguments: [days, tenant.rawValue])
            guard db.changesCount > 0 else { throw StoreError(.unknownTenant, "tenant '\(tenant)' does not exist") }
        }
    }
}

extension SQLiteTenantDirectory {
    public func searchLimitOverrides(_ tenant: TenantName) async throws -> [String: Int] {
        try await pool.read { db in
            var overrides: [String: Int] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT name, value FROM search_limit WHERE tenant = ?", arguments: [tenant.rawValue]) {
                overrides[row["name"]] = row["value"]
            }
            return overrides
        }
    }

    public func setSearchLimitOverrides(_ tenant: TenantName, _ overrides: [String: Int?]) async throws {
        try await pool.write { db in
            guard try Bool.fetchOne(db, sql: "SELECT 1 FROM tenant WHERE name = ?", arguments: [tenant.rawValue]) ?? false else {
                throw StoreError(.unknownTenant, "tenant '\(tenant)' does not exist")
            }
            for (name, value) in overrides {
                if let value {
                    try db.execute(sql: "INSERT OR REPLACE INTO search_limit (tenant, name, value) VALUES (?, ?, ?)", arguments: [tenant.rawValue, name, value])
                } else {
                    try db.execute(sql: "DELETE FROM search_limit WHERE tenant = ? AND name = ?", arguments: [tenant.rawValue, name])
                }
            }
        }
    }
}
