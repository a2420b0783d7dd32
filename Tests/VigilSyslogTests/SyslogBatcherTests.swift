import Foundation
import Logging
import Synchronization
import Testing
import VigilCore
import VigilIntake
import VigilStorage
import VigilStorageSQLite
@testable import VigilSyslog

/// The spool, refusing the appends whose numbers (from 1) are listed, as a full spool does.
final class RefusingQueue: IntakeQueue {
    let spool: Spool
    let refused: Set<Int>
    let appends = Mutex(0)
    /// Moved on by 5 s at each refusal, so the retry is admitted at another time.
    let clock: ManualClock?

    init(_ spool: Spool, refusing refused: Set<Int>, clock: ManualClock? = nil) {
        self.spool = spool
        self.refused = refused
        self.clock = clock
    }

    func append(_ records: [[UInt8]]) async throws {
        let number = appends.withLock { count -> Int in
            count += 1
            return count
        }
        if refused.contains(number) {
            clock?.advance(byMillis: 5_000)
            throw IntakeError(.full, "refused by the test")
        }
        try await spool.append(records)
    }

    func nextBatch(maxRecords: Int, drainOnly: Bool) async throws -> IntakeBatch? {
        try await spool.nextBatch(maxRecords: maxRecords, drainOnly: drainOnly)
    }

    func commit(_ batch: IntakeBatch) throws { try spool.commit(batch) }
    var backlogBytes: Int64 { spool.backlogBytes }
}

struct SyslogBatcherTests {
    let now: EpochMillis = 1_795_514_400_000
    let tenant = TenantName("acme")!

    /// Frames are taken out of the backlog while their batch is submitted; a batch the spool
    /// refuses goes back in front of what arrived meanwhile and is submitted again.
    @Test func aRefusedBatchIsSubmittedAgainInOrderWithNothingLostOrDoubled() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("batcher-\(UUID().uuidString)", isDirectory: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let spool = try Spool(configuration: SpoolConfiguration(directory: dir.appendingPathComponent("spool")))
        // Batches of 5 out of 12 frames: 5 (part of the backlog), 5 (refused once, then
        // accepted), 2 (all that is left).
        let queue = RefusingQueue(spool, refusing: [2])
        let store = try SQLiteEventStore(dataDirectory: dir, logger: Logger(label: "test"))
        let intake = IntakeService(queue: queue, store: store, clock: ManualClock(now), limits: IntakeLimits(), logger: Logger(label: "test"))
        let batcher = SyslogBatcher(intake: intake, clock: ManualClock(now), logger: Logger(label: "test"), maxBatchFrames: 5)
        let frames = (0..<12).map { "frame \($0)" }
        let entries = frames.map { text -> (TenantName, SyslogDecoded) in
            let item = NativeDecoder.decode(Array("{\"message\":\"\(text)\"}".utf8), limits: IntakeLimits())[0]
            return (tenant, SyslogDecoded(item: item, dataset: "test", parseFailure: false))
        }

        await batcher.admitAndWait(entries)

        #expect(await batcher.backlog == 0)
        #expect(queue.appends.withLock { $0 } == 4)
        var stored: [String] = []
        while let batch = try await spool.nextBatch(maxRecords: 100, drainOnly: true) {
            for record in batch.records {
                if case .event(let event)? = IntakeRecord.decode(record) { stored.append(event.message ?? "") }
            }
            try spool.commit(batch)
        }
        #expect(stored == frames)
    }

    /// A batch holds frames of two tenants; the first tenant's are admitted, the second's
    /// refused and submitted again seconds later. The first tenant's are not submitted again:
    /// their keys are unique (the store does not record them), so a second copy would be
    /// stored twice. Frames without a time of their own take the time they were handed over.
    @Test func aTenantsFramesAdmittedBeforeAnotherTenantWasRefusedAreNotSubmittedAgain() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("batcher-\(UUID().uuidString)", isDirectory: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let spool = try Spool(configuration: SpoolConfiguration(directory: dir.appendingPathComponent("spool")))
        let clock = ManualClock(now)
        // Append 1 is acme's frames, append 2 beta's (refused), append 3 beta's again.
        let queue = RefusingQueue(spool, refusing: [2], clock: clock)
        let store = try SQLiteEventStore(dataDirectory: dir, logger: Logger(label: "test"))
        let intake = IntakeService(queue: queue, store: store, clock: clock, limits: IntakeLimits(), logger: Logger(label: "test"))
        let batcher = SyslogBatcher(intake: intake, clock: clock, logger: Logger(label: "test"))
        let beta = TenantName("beta")!
        let frames = (0..<6).map { "frame \($0)" }
        let entries = frames.enumerated().map { index, text -> (TenantName, SyslogDecoded) in
            let item = NativeDecoder.decode(Array("{\"message\":\"\(text)\"}".utf8), limits: IntakeLimits())[0]
            return (index < 3 ? tenant : beta, SyslogDecoded(item: item, dataset: "test", parseFailure: false))
        }

        await batcher.admitAndWait(entries)

        #expect(clock.now() == now + 5_000, "the retry came 5 s after the first attempt")
        #expect(queue.appends.withLock { $0 } == 3)
        #expect(await batcher.backlog == 0)
        var stored: [String: [String]] = [:]
        while let batch = try await spool.nextBatch(maxRecords: 100, drainOnly: true) {
            for record in batch.records {
                if case .event(let event)? = IntakeRecord.decode(record) {
                    stored[event.tenant.rawValue, default: []].append(event.message ?? "")
                    #expect(event.keyIsUnique)
                    #expect(event.timestamp == now, "a frame without a time takes the time it was handed over")
                    #expect(Int64(event.key.high >> 24) == now / 1000, "a frame's key leads with its second")
                }
            }
            try spool.commit(batch)
        }
        #expect(stored == ["acme": Array(frames[0..<3]), "beta": Array(frames[3...])])
    }

    /// Each frame without an id of its own gets the next `syslog-<boot>-<n>` (n in base 36), in
    /// order; an id a frame already has is kept, and an item that can only be quarantined goes
    /// through as it is.
    @Test func framesGetTheNextServerIDAndKeepTheirOwn() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("batcher-\(UUID().uuidString)", isDirectory: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let spool = try Spool(configuration: SpoolConfiguration(directory: dir.appendingPathComponent("spool")))
        let store = try SQLiteEventStore(dataDirectory: dir, logger: Logger(label: "test"))
        let intake = IntakeService(queue: spool, store: store, clock: ManualClock(now), limits: IntakeLimits(), logger: Logger(label: "test"))
        let batcher = SyslogBatcher(intake: intake, clock: ManualClock(now), logger: Logger(label: "test"))
        func decoded(_ json: String) -> SyslogDecoded {
            SyslogDecoded(item: NativeDecoder.decode(Array(json.utf8), limits: IntakeLimits())[0], dataset: "test", parseFailure: false)
        }
        var own = decoded("{\"message\":\"own\"}")
        if case .candidate(var candidate) = own.item {
            candidate.transportID = "sender-7"
            own.item = .candidate(candidate)
        }
        let count = 40
        var entries = (0..<count).map { (tenant, decoded("{\"message\":\"frame \($0)\"}")) }
        entries.insert((tenant, own), at: 5)
        entries.insert((tenant, decoded("not json")), at: 9)

        await batcher.admitAndWait(entries)

        let boot = await batcher.bootID
        var ids: [String: String] = [:]
        var quarantined = 0
        while let batch = try await spool.nextBatch(maxRecords: 100, drainOnly: true) {
            for record in batch.records {
                switch IntakeRecord.decode(record) {
                case .event(let event)?:
                    let document = try JSONParser.parse(event.document)
                    ids[event.message ?? ""] = document.value(atPath: "vigil.event_id")?.stringValue
                case .quarantine?: quarantined += 1
                case nil: Issue.record("a record that does not decode")
                }
            }
            try spool.commit(batch)
        }
        #expect(quarantined == 1)
        #expect(ids["own"] == "sender-7")
        for n in 0..<count {
            #expect(ids["frame \(n)"] == "syslog-\(boot)-\(String(n + 1, radix: 36))", "frame \(n)")
        }
        #expect(ids.count == count + 1)
    }
}
