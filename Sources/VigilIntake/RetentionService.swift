import Logging
import Metrics
import ServiceLifecycle
import Synchronization
import VigilCore
import VigilStorage

/// Per-tenant retention in days, shared by admission (nothing older than the policy is
/// accepted, so nothing is written to a partition being dropped) and the retention service.
public final class RetentionPolicies: Sendable {
    public static let defaultDays = 30
    private let days = Mutex<[TenantName: Int]>([:])

    public init() {}

    public func days(for tenant: TenantName) -> Int { days.withLock { $0[tenant] } ?? Self.defaultDays }

    public func set(_ tenant: TenantName, days value: Int) { days.withLock { $0[tenant] = value } }

    /// The first UTC day a tenant keeps at `now`: partitions before it are dropped.
    public func firstKeptDay(for tenant: TenantName, now: EpochMillis) -> Int64 {
        Timestamp.day(of: now) - Int64(days(for: tenant))
    }
}

/// What one retention pass removed.
public struct RetentionReport: Sendable {
    public var droppedPartitions: [(tenant: TenantName, day: Int64)] = []
    public var purgedQuarantine = 0
}

/// Drops expired day partitions (with their idempotency keys) and old quarantine items, once
/// an hour and on demand (`vigil retention run`, `POST /api/v1/retention/run`).
public struct RetentionService: Service {
    let store: any EventStore
    let tenants: any TenantDirectory
    let policies: RetentionPolicies
    let clock: any VigilClock
    let logger: Logger
    public var interval: Duration = .seconds(3600)
    /// Quarantined items are kept this long (file key `quarantine_retention_days`).
    public var quarantineRetentionDays = 14

    public init(store: any EventStore, tenants: any TenantDirectory, policies: RetentionPolicies, clock: any VigilClock, logger: Logger) {
        self.store = store
        self.tenants = tenants
        self.policies = policies
        self.clock = clock
        self.logger = logger
    }

    public func run() async throws {
        while !Task.isShuttingDownGracefully {
            do {
                _ = try await runOnce()
            } catch {
                Counter(label: "vigil_errors_total", dimensions: [("stage", "retention"), ("error", "pass_failed")]).increment()
                logger.error("Retention pass failed", metadata: ["error": "\(error)"])
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }

    /// One pass over every tenant.
    public func runOnce() async throws -> RetentionReport {
        let now = clock.now()
        var report = RetentionReport()
        let known = Set(try await tenants.listTenants()).union(try store.storedTenants())
        for tenant in known.sorted() {
            policies.set(tenant, days: try await tenants.retentionDays(tenant))
            let firstKept = policies.firstKeptDay(for: tenant, now: now)
            let dropped = try await store.dropPartitions(tenant: tenant, before: firstKept)
            for day in dropped {
                report.droppedPartitions.append((tenant, day))
                logger.info("Dropped expired partition", metadata: ["tenant": "\(tenant)", "day": "\(Timestamp.dayStamp(day))"])
            }
            if !dropped.isEmpty {
                Counter(label: "vigil_retention_partitions_dropped_total").increment(by: dropped.count)
            }
            let purged = try await store.purgeQuarantine(tenant: tenant, receivedBefore: now - Int64(quarantineRetentionDays) * Timestamp.millisPerDay)
            report.purgedQuarantine += purged
            if purged > 0 {
                Counter(label: "vigil_retention_quarantine_purged_total").increment(by: purged)
                logger.info("Purged expired quarantine items", metadata: ["tenant": "\(tenant)", "items": "\(purged)"])
            }
        }
        return report
    }
}
