import Foundation
import Logging
import Testing
import VigilCore
import VigilStorage
@testable import VigilIntake

struct RetentionAndReplayTests {
    let now: EpochMillis = 1_795_514_400_000  // 2026-11-24T10:00:00Z
    let tenant = TenantName("acme")!

    func makeService(_ limits: IntakeLimits = IntakeLimits(), policies: RetentionPolicies = RetentionPolicies()) throws -> (IntakeService, InMemoryEventStore) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("replay-\(UUID().uuidString)")
        let spool = try Spool(configuration: SpoolConfiguration(directory: dir))
        let store = InMemoryEventStore()
        return (IntakeService(queue: spool, store: store, clock: ManualClock(now), limits: limits, retention: policies, logger: Logger(label: "test")), store)
    }

    @Test func admissionRefusesEventsOlderThanTheTenantsRetention() async throws {
        let policies = RetentionPolicies()
        policies.set(tenant, days: 2)
        let (service, _) = try makeService(policies: policies)
        let items = NativeDecoder.decode(Array("""
        {"@timestamp":"2026-11-22T00:00:00Z","message":"kept: day - 2"}
        {"@timestamp":"2026-11-21T23:59:59Z","message":"too old for a 2-day policy"}
        """.utf8), limits: IntakeLimits())
        let statuses = try await service.submit(tenant: tenant, source: "test", items: items).statuses
        #expect(statuses[0] == .accepted)
        guard case .quarantined(.timestampOutOfRange, let detail) = statuses[1] else { Issue.record("expected out of range"); return }
        #expect(detail.contains("retention of 2 days"))
    }

    @Test func replayAfterRaisingALimitAcceptsWhatNowPassesAndKeepsTheRest() async throws {
        var small = IntakeLimits()
        small.maxLineBytes = 30
        let line = Array(#"{"message":"a line longer than thirty bytes"}"#.utf8)
        let items = [
            QuarantineItem(id: 1, tenant: tenant, reason: .oversize, detail: "big", source: "ingest", received: now - 1000, raw: line),
            QuarantineItem(id: 2, tenant: tenant, reason: .malformedJSON, detail: "bad", source: "ingest", received: now - 1000, raw: Array("{".utf8)),
            QuarantineItem(id: 3, tenant: tenant, reason: .malformedJSON, detail: "hec", source: "hec", received: now - 1000, raw: Array(#"{"event":"from hec"}"#.utf8)),
            QuarantineItem(id: 4, tenant: tenant, reason: .unknownTenant, detail: "who", source: "ingest", received: now - 1000, raw: Array(#"{"message":"x"}"#.utf8)),
        ]
        let (strict, _) = try makeService(small)
        guard case .quarantined(.oversize, _) = try await strict.replay(tenant: tenant, items: items)[0] else { Issue.record("still oversize"); return }
        let (relaxed, _) = try makeService()
        let statuses = try await relaxed.replay(tenant: tenant, items: items)
        #expect(statuses[0] == .accepted)
        guard case .quarantined(.malformedJSON, _) = statuses[1] else { Issue.record("still malformed"); return }
        #expect(statuses[2] == .accepted)
        guard case .quarantined(.unknownTenant, _) = statuses[3] else { Issue.record("unknown tenant stays"); return }
        // A second replay of the same items finds them already stored: keys are stable.
        let again = try await relaxed.replay(tenant: tenant, items: [items[0], items[2]])
        #expect(again == [.duplicate, .duplicate])
    }
}
