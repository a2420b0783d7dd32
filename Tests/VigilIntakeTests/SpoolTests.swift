import Foundation
import Testing
@testable import VigilIntake
import VigilCore
import VigilStorage

struct SpoolTests {
    func temporaryDirectory() -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("spool-test-\(UUID().uuidString)", isDirectory: true)
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    func records(_ range: Range<Int>) -> [[UInt8]] { range.map { Array("record-\($0)".utf8) } }

    /// Writes records into a new spool in `dir`, closes it, and returns its one segment file.
    func spoolSegment(in dir: URL, with written: [[UInt8]]) async throws -> URL {
        do {
            let spool = try Spool(configuration: SpoolConfiguration(directory: dir))
            try await spool.append(written)
        }
        let name = try #require(try FileManager.default.contentsOfDirectory(atPath: dir.path).first { $0.hasSuffix(".seg") })
        return dir.appendingPathComponent(name)
    }

    @Test func appendedRecordsAreReadBackInOrderAndCommitted() async throws {
        let spool = try Spool(configuration: SpoolConfiguration(directory: temporaryDirectory()))
        try await spool.append(records(0..<3))
        try await spool.append(records(3..<5))
        let batch = try #require(try await spool.nextBatch(maxRecords: 100, drainOnly: true))
        #expect(batch.records == records(0..<5))
        try spool.commit(batch)
        #expect(spool.backlogBytes == 0)
        #expect(try await spool.nextBatch(maxRecords: 100, drainOnly: true) == nil)
    }

    /// Records appended with their decoded form are handed to the consumer from memory, with
    /// the positions and sequences a reader of the files gets, across segments, with and
    /// without room in the tail, and mixed with records appended as bytes only.
    @Test(arguments: [64 << 20, 300, 0])
    func recentRecordsComeFromMemoryExactlyAsTheDiskHasThem(tailBytes: Int) async throws {
        let dir = temporaryDirectory()
        var configuration = SpoolConfiguration(directory: dir)
        configuration.segmentBytes = 500
        configuration.tailBytes = tailBytes
        let spool = try Spool(configuration: configuration)
        func item(_ n: Int) -> IntakeRecord {
            .quarantine(QuarantineItem(tenant: TenantName("acme")!, reason: .malformedJSON, detail: "item \(n)", source: "test",
                                       received: Int64(n), raw: Array(repeating: UInt8(n), count: n % 40)))
        }
        var fromMemory: [IntakeBatch] = []
        var n = 0
        for round in 0..<12 {
            let items = (0..<(round % 4 + 1)).map { _ in defer { n += 1 }; return item(n) }
            if round % 5 == 2 {
                try await spool.append(items.map { $0.encoded() })
            } else {
                try await spool.append(items.map { $0.encoded() }, decoded: items)
            }
            if round % 3 == 0, let batch = try await spool.nextBatch(maxRecords: 3, drainOnly: true) { fromMemory.append(batch) }
        }
        while let batch = try await spool.nextBatch(maxRecords: 3, drainOnly: true) { fromMemory.append(batch) }
        // Another spool on the same files reads them from disk.
        let reader = try Spool(configuration: SpoolConfiguration(directory: dir))
        var fromDisk: [IntakeBatch] = []
        while let batch = try await reader.nextBatch(maxRecords: 1000, drainOnly: true) { fromDisk.append(batch) }
        #expect(fromMemory.flatMap(\.records) == fromDisk.flatMap(\.records))
        #expect(fromMemory.flatMap(\.records).count == n)
        #expect(fromMemory.flatMap(\.sequences) == fromDisk.flatMap(\.sequences))
        #expect(fromMemory.last?.end == fromDisk.last?.end)
        var handedOver = 0
        for batch in fromMemory {
            for (bytes, record) in zip(batch.records, batch.decoded) {
                guard let record else { continue }
                handedOver += 1
                #expect(record == IntakeRecord.decode(bytes))
            }
        }
        if tailBytes == 0 { #expect(handedOver == 0) } else { #expect(handedOver > 0) }
    }

    @Test func concurrentAppendsAreAllDurable() async throws {
        let spool = try Spool(configuration: SpoolConfiguration(directory: temporaryDirectory()))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for client in 0..<20 {
                group.addTask { try await spool.append(self.records((client * 10)..<(client * 10 + 10))) }
            }
            try await group.waitForAll()
        }
        let all = try spool.uncommittedRecords()
        #expect(all.count == 200)
        #expect(Set(all) == Set(records(0..<200)))
    }

    @Test func reopeningResumesAfterTheCheckpoint() async throws {
        let dir = temporaryDirectory()
        do {
            let spool = try Spool(configuration: SpoolConfiguration(directory: dir))
            try await spool.append(records(0..<4))
            let batch = try #require(try await spool.nextBatch(maxRecords: 2, drainOnly: true))
            try spool.commit(batch)
        }
        let reopened = try Spool(configuration: SpoolConfiguration(directory: dir))
        #expect(try reopened.uncommittedRecords() == records(2..<4))
    }

    @Test func aTornTailIsCutOnOpenAndEarlierRecordsSurvive() async throws {
        let dir = temporaryDirectory()
        let segment = try await spoolSegment(in: dir, with: records(0..<3))
        let handle = try FileHandle(forWritingTo: segment)
        try handle.seekToEnd()
        // A frame header that promises 100 bytes, then only 5 of them: a crash mid-write.
        try handle.write(contentsOf: Data([100, 0, 0, 0, 1, 2, 3, 4, 9, 9, 9, 9, 9]))
        try handle.close()
        let reopened = try Spool(configuration: SpoolConfiguration(directory: dir))
        #expect(try reopened.uncommittedRecords() == records(0..<3))
        try await reopened.append(records(3..<4))
        #expect(try reopened.uncommittedRecords() == records(0..<4))
    }

    @Test func aCorruptChecksumAtTheTailIsCut() async throws {
        let dir = temporaryDirectory()
        let segment = try await spoolSegment(in: dir, with: records(0..<2))
        var bytes = try #require(FileManager.default.contents(atPath: segment.path))
        bytes[bytes.count - 1] ^= 0xFF
        try bytes.write(to: segment)
        let reopened = try Spool(configuration: SpoolConfiguration(directory: dir))
        #expect(try reopened.uncommittedRecords() == records(0..<1))
    }

    @Test func refusesAppendsBeyondItsSizeLimitAndKeepsNothingOfThem() async throws {
        var configuration = SpoolConfiguration(directory: temporaryDirectory())
        configuration.maxBytes = 100
        let spool = try Spool(configuration: configuration)
        try await spool.append([Array(repeating: 1, count: 50)])
        await #expect(throws: IntakeError.self) { try await spool.append([Array(repeating: 2, count: 50)]) }
        #expect(try spool.uncommittedRecords() == [Array(repeating: 1, count: 50)])
        let batch = try #require(try await spool.nextBatch(maxRecords: 10, drainOnly: true))
        try spool.commit(batch)
        try await spool.append([Array(repeating: 2, count: 50)])
    }

    @Test func rollsSegmentsAndDeletesConsumedOnes() async throws {
        let dir = temporaryDirectory()
        var configuration = SpoolConfiguration(directory: dir)
        configuration.segmentBytes = 64
        let spool = try Spool(configuration: configuration)
        for i in 0..<10 { try await spool.append(records(i..<(i + 1))) }
        let segments = { try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".seg") }.count }
        #expect(try segments() > 2)
        var all: [[UInt8]] = []
        while let batch = try await spool.nextBatch(maxRecords: 3, drainOnly: true) {
            all.append(contentsOf: batch.records)
            try spool.commit(batch)
        }
        #expect(all == records(0..<10))
        #expect(try segments() <= 1)
    }

    @Test func aWaitingConsumerWakesWhenRecordsArrive() async throws {
        let spool = try Spool(configuration: SpoolConfiguration(directory: temporaryDirectory()))
        async let batch = spool.nextBatch(maxRecords: 10, drainOnly: false)
        try await spool.append(records(0..<1))
        #expect(try await batch?.records == records(0..<1))
    }
}
