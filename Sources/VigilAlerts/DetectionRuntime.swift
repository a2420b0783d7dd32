import VigilCore
import VigilStorage
import Yams

/// What the HTTP layer needs for rules and alerts.
public struct DetectionRuntime: Sendable {
    public var store: any DetectionStore
    public var compiler: RuleCompiler
    public var planner: WindowPlanner
    public var oldestUnstored: @Sendable () -> EpochMillis?

    public init(store: any DetectionStore, compiler: RuleCompiler, planner: WindowPlanner, oldestUnstored: @escaping @Sendable () -> EpochMillis?) {
        self.store = store
        self.compiler = compiler
        self.planner = planner
        self.oldestUnstored = oldestUnstored
    }

    /// A rule's format from its YAML: Sigma rules have `detection` (or `correlation`).
    public static func format(of yaml: String) -> String {
        guard let documents = try? Array(Yams.compose_all(yaml: yaml)) else { return "native" }
        return documents.contains { $0.mapping?[Node("detection")] != nil || $0.mapping?[Node("correlation")] != nil } ? "sigma" : "native"
    }

    /// Validates and stores a rule for a tenant; the first window starts now (on a bucket
    /// boundary for counting rules). Returns the rule and whether it replaced one.
    public func add(source: String, tenant: TenantName, now: EpochMillis) async throws -> (rule: any DetectionRule, replaced: Bool) {
        let format = Self.format(of: source)
        let probe = RuleRecord(tenant: tenant, id: "", format: format, source: source, created: now, watermark: now)
        let rule = try compiler.compile(probe)
        let existing = try await store.rule(tenant: tenant, id: rule.id)
        let watermark = rule.bucketMillis.map { WindowPlanner.floor(now, $0) } ?? now
        try await store.saveRule(RuleRecord(tenant: tenant, id: rule.id, format: format, source: source, created: existing?.created ?? now, watermark: existing?.watermark ?? watermark))
        return (rule, existing != nil)
    }
}
