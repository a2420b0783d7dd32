import CZlib
import Dispatch
import Foundation
import Synchronization
import VigilStorage

#if canImport(Glibc)
import Glibc
#endif

/// Where an intake queue's consumer is; opaque to everything but the queue.
public struct SpoolPosition: Sendable, Comparable, Codable, CustomStringConvertible {
    public var segment: UInt64
    public var offset: UInt64

    public static func < (lhs: SpoolPosition, rhs: SpoolPosition) -> Bool {
        (lhs.segment, lhs.offset) < (rhs.segment, rhs.offset)
    }

    public var description: String { "\(segment):\(offset)" }
}

/// Records read from an intake queue, to be committed once they are stored.
public struct IntakeBatch: Sendable {
    public var records: [[UInt8]]
    public var end: SpoolPosition
    /// Where each record is in the queue, the same every time it is read (store writes use it
    /// to recognise a replayed record). Empty for queues that cannot say.
    public var sequences: [IntakeSequence] = []
    /// The records decoded, when the queue still had them as appended (empty otherwise; nil
    /// for one it has only as bytes): they are `IntakeRecord.decode(records[i])`.
    public var decoded: [IntakeRecord?] = []

    public init(records: [[UInt8]], end: SpoolPosition, sequences: [IntakeSequence] = [], decoded: [IntakeRecord?] = []) {
        self.records = records
        self.end = end
        self.sequences = sequences
        self.decoded = decoded
    }
}

/// The durable queue between admission and the pipeline. `append` returns only once the
/// records are durable; the consumer reads batches and commits them after storing them.
public protocol IntakeQueue: Sendable {
    func append(_ records: [[UInt8]]) async throws
    /// `append(records)`, with each record as it was before it was encoded (`decoded[i]`
    /// encodes to `records[i]`; nil: not given), which a queue may hand to its consumer
    /// instead of the bytes.
    func append(_ records: [[UInt8]], decoded: consuming [IntakeRecord?]) async throws
    /// The next records after the read cursor, waiting until some arrive. Returns nil when
    /// `drainOnly` is set and nothing is left.
    func nextBatch(maxRecords: Int, drainOnly: Bool) async throws -> IntakeBatch?
    func commit(_ batch: IntakeBatch) throws
    /// Durable bytes not yet committed by the consumer.
    var backlogBytes: Int64 { get }
}

extension IntakeQueue {
    public func append(_ records: [[UInt8]], decoded: consuming [IntakeRecord?]) async throws {
        try await append(records)
    }
}

/// An error from the intake queue, with a code fit for a metric label.
public struct IntakeError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        /// The spool holds its configured maximum: refuse until the pipeline catches up.
        case full
        /// The file system refused the write (ENOSPC, EIO, ...).
        case diskFull = "disk_full"
        case io
        case closed
    }
    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "IntakeError.\(code.rawValue): \(message)" }
}

/// Sizing of the on-disk spool.
public struct SpoolConfiguration: Sendable {
    public var directory: URL
    /// Durable, not yet stored bytes beyond which ingest is refused (file key: `spool_max_bytes`).
    public var maxBytes: Int64 = 1 << 30
    /// A segment file is closed and a new one started past this size (`spool_segment_bytes`).
    public var segmentBytes: Int64 = 64 << 20
    /// Bytes of recently appended records kept in memory for the consumer (`Spool.Tail`).
    public var tailBytes: Int = 32 << 20

    public init(directory: URL) { self.directory = directory }
}

/// The on-disk intake spool: append-only segment files of checksummed records, written with
/// group commit, and a consumer checkpoint.
///
/// Record frame: `u32 length (LE) | u32 CRC-32 of payload (LE) | payload`. Appends from many
/// requests are gathered by one writer, written together and made durable with one
/// `fdatasync`; each caller resumes only after that. On open, the last segment is scanned and
/// cut at the first incomplete or corrupt frame (a torn tail after a crash is never
/// acknowledged data, because acknowledgement waits for the sync).
public final class Spool: IntakeQueue {
    public let configuration: SpoolConfiguration

    struct Pending {
        var frames: [UInt8]
        var records: [[UInt8]]
        var decoded: DecodedRecords?
        var continuation: CheckedContinuation<Void, any Error>
    }

    /// The decoded records of an append, held only here: the appending caller, its frames and
    /// the closures the append goes through refer to this box, not to the array, so the
    /// writer can move the records out of the array without copying it first. Unchecked
    /// Sendable: after `append` makes it, only the writer changes it, under the state lock.
    final class DecodedRecords: @unchecked Sendable {
        var records: [IntakeRecord?]
        init(_ records: consuming [IntakeRecord?]) { self.records = records }
    }

    /// A durable record still in memory as it was appended, at its frame's position.
    struct TailEntry {
        var position: SpoolPosition
        var bytes: [UInt8]
        /// Nil once taken.
        var record: IntakeRecord?
    }

    /// Records made durable recently, in order, for the consumer to take without reading them
    /// back, checking their checksums and decoding them: the pipeline usually reads what was
    /// appended a moment ago. Bounded by `SpoolConfiguration.tailBytes`; what is not here is
    /// read from disk.
    struct Tail {
        var entries: [TailEntry] = []
        /// Entries before `head` are taken.
        var head = 0
        var bytes = 0

        mutating func drop(before position: SpoolPosition) {
            while head < entries.count, entries[head].position < position { take() }
            compact()
        }

        /// The next entry, moved out of the array (a copy would retain all it holds).
        @discardableResult
        mutating func take() -> TailEntry {
            var entry = TailEntry(position: entries[head].position, bytes: [], record: nil)
            swap(&entry, &entries[head])
            bytes -= entry.bytes.count
            head += 1
            return entry
        }

        mutating func compact() {
            if head == entries.count {
                entries.removeAll(keepingCapacity: true)
                head = 0
            } else if head > 1024, head * 2 > entries.count {
                entries.removeFirst(head)
                head = 0
            }
        }
    }

    struct State {
        var fd: Int32
        var segment: UInt64
        /// Durable size of each segment still on disk.
        var sizes: [UInt64: UInt64]
        var pending: [Pending] = []
        var pendingBytes: Int64 = 0
        var flushing = false
        var readPosition: SpoolPosition
        var checkpoint: SpoolPosition
        var closed = false
        var tail = Tail()
    }

    private let state: Mutex<State>
    /// When this spool was created (epoch ms, kept in the `generation` file): positions start
    /// again in a new spool, so a record's sequence is (generation, position).
    public let generation: Int64
    private let writerQueue = DispatchQueue(label: "vigil.spool.writer")
    /// Wakes the one consumer when new records are durable.
    private let wakeup = Mutex<(signaled: Bool, waiter: CheckedContinuation<Void, Never>?)>((false, nil))

    public init(configuration: SpoolConfiguration) throws {
        self.configuration = configuration
        let dir = configuration.directory
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        var segments = names.compactMap { name -> UInt64? in
            guard name.hasSuffix(".seg") else { return nil }
            return UInt64(name.dropLast(4))
        }.sorted()
        var checkpoint = Self.readCheckpoint(dir) ?? SpoolPosition(segment: segments.first ?? 1, offset: 0)
        // Segments wholly before the checkpoint were consumed; a crash may have left them.
        for segment in segments where segment < checkpoint.segment {
            unlink(Self.segmentPath(dir, segment))
        }
        segments.removeAll { $0 < checkpoint.segment }
        if segments.isEmpty { segments = [checkpoint.segment] }
        var sizes: [UInt64: UInt64] = [:]
        for segment in segments.dropLast() {
            sizes[segment] = UInt64((try? FileManager.default.attributesOfItem(atPath: Self.segmentPath(dir, segment))[.size] as? Int) ?? 0)
        }
        let last = segments.last!
        let path = Self.segmentPath(dir, last)
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw IntakeError(.io, "cannot open spool segment \(path): errno \(errno)") }
        let validEnd = Self.scanValidEnd(fd: fd)
        if ftruncate(fd, off_t(validEnd)) != 0 || fsync(fd) != 0 {
            Glibc.close(fd)
            throw IntakeError(.io, "cannot repair spool segment \(path): errno \(errno)")
        }
        sizes[last] = validEnd
        if checkpoint.segment == last, checkpoint.offset > validEnd { checkpoint.offset = validEnd }
        generation = try Self.readOrCreateGeneration(dir)
        Self.syncDirectory(dir)
        state = Mutex(State(fd: fd, segment: last, sizes: sizes, readPosition: checkpoint, checkpoint: checkpoint))
    }

    deinit {
        state.withLock { s in
            if s.fd >= 0 { Glibc.close(s.fd) }
        }
    }

    static func segmentPath(_ dir: URL, _ segment: UInt64) -> String {
        let digits = String(segment)
        return dir.appendingPathComponent(String(repeating: "0", count: max(0, 20 - digits.count)) + digits + ".seg").path
    }

    static func readOrCreateGeneration(_ dir: URL) throws -> Int64 {
        let url = dir.appendingPathComponent("generation")
        if let data = FileManager.default.contents(atPath: url.path),
           let value = Int64(String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) {
            return value
        }
        let value = Int64(Date().timeIntervalSince1970 * 1000)
        let fd = open(url.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw IntakeError(.io, "cannot write spool generation: errno \(errno)") }
        let text = Array("\(value)\n".utf8)
        let ok = text.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) } == text.count && fsync(fd) == 0
        Glibc.close(fd)
        guard ok else { throw IntakeError(.io, "cannot write spool generation: errno \(errno)") }
        return value
    }

    static func readCheckpoint(_ dir: URL) -> SpoolPosition? {
        guard let data = FileManager.default.contents(atPath: dir.appendingPathComponent("checkpoint").path),
              let text = String(data: data, encoding: .utf8)
        else { return nil }
        let parts = text.split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard parts.count >= 2, let segment = UInt64(parts[0]), let offset = UInt64(parts[1]) else { return nil }
        return SpoolPosition(segment: segment, offset: offset)
    }

    static func syncDirectory(_ dir: URL) {
        let fd = open(dir.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 {
            fsync(fd)
            Glibc.close(fd)
        }
    }

    static func crc(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        guard let base = bytes.baseAddress else { return UInt32(crc32(0, nil, 0)) }
        return UInt32(crc32(0, base.assumingMemoryBound(to: Bytef.self), uInt(bytes.count)))
    }

    /// Finds the end of the last whole, checksum-valid frame in a segment.
    static func scanValidEnd(fd: Int32) -> UInt64 {
        let size = lseek(fd, 0, SEEK_END)
        guard size > 0 else { return 0 }
        var data = [UInt8](repeating: 0, count: Int(size))
        let read = data.withUnsafeMutableBytes { pread(fd, $0.baseAddress, Int(size), 0) }
        guard read == size else { return 0 }
        var offset = 0
        while offset + 8 <= data.count {
            let length = Int(readLE32(data, offset))
            let checksum = readLE32(data, offset + 4)
            guard length <= data.count - offset - 8 else { break }
            let valid = data.withUnsafeBytes { crc(UnsafeRawBufferPointer(rebasing: $0[(offset + 8)..<(offset + 8 + length)])) } == checksum
            guard valid else { break }
            offset += 8 + length
        }
        return UInt64(offset)
    }

    static func readLE32(_ data: [UInt8], _ offset: Int) -> UInt32 {
        UInt32(data[offset]) | UInt32(data[offset + 1]) << 8 | UInt32(data[offset + 2]) << 16 | UInt32(data[offset + 3]) << 24
    }

    static func appendFrame(_ payload: [UInt8], to out: inout [UInt8]) {
        let length = UInt32(payload.count)
        let checksum = payload.withUnsafeBytes { crc($0) }
        for shift in stride(from: 0, to: 32, by: 8) { out.append(UInt8(truncatingIfNeeded: length >> UInt32(shift))) }
        for shift in stride(from: 0, to: 32, by: 8) { out.append(UInt8(truncatingIfNeeded: checksum >> UInt32(shift))) }
        out.append(contentsOf: payload)
    }

    // MARK: - Writing

    public var backlogBytes: Int64 {
        state.withLock { Self.backlog($0) }
    }

    static func backlog(_ s: State) -> Int64 {
        var total: Int64 = 0
        for (segment, size) in s.sizes where segment >= s.checkpoint.segment {
            total += Int64(size) - (segment == s.checkpoint.segment ? Int64(s.checkpoint.offset) : 0)
        }
        return total + s.pendingBytes
    }

    /// Appends records and returns once they are durable on disk.
    /// - Throws: `IntakeError.full` when the spool is at its size limit, `.diskFull`/`.io`
    ///   when the file system refuses the write. Nothing of a refused append is kept.
    public func append(_ records: [[UInt8]]) async throws {
        try await append(records, decoded: DecodedRecords?.none)
    }

    public func append(_ records: [[UInt8]], decoded: consuming [IntakeRecord?]) async throws {
        try await append(records, decoded: DecodedRecords(decoded))
    }

    private func append(_ records: [[UInt8]], decoded: DecodedRecords?) async throws {
        guard !records.isEmpty else { return }
        precondition(decoded.map { $0.records.count == records.count } ?? true, "one decoded record per record")
        var frames: [UInt8] = []
        frames.reserveCapacity(records.reduce(0) { $0 + $1.count + 8 })
        for record in records { Self.appendFrame(record, to: &frames) }
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            enum Decision { case refuse(IntakeError), queued(startWriter: Bool) }
            let decision: Decision = state.withLock { s in
                if s.closed { return .refuse(IntakeError(.closed, "the spool is closed")) }
                if Self.backlog(s) + Int64(frames.count) > configuration.maxBytes {
                    return .refuse(IntakeError(.full, "the intake spool holds its maximum of \(configuration.maxBytes) bytes"))
                }
                s.pending.append(Pending(frames: frames, records: records, decoded: decoded, continuation: continuation))
                s.pendingBytes += Int64(frames.count)
                if s.flushing { return .queued(startWriter: false) }
                s.flushing = true
                return .queued(startWriter: true)
            }
            switch decision {
            case .refuse(let error): continuation.resume(throwing: error)
            case .queued(let startWriter):
                if startWriter { writerQueue.async { self.flushLoop() } }
            }
        }
    }

    /// Writes everything pending in one go, syncs, resumes the waiters; repeats until idle.
    private func flushLoop() {
        while true {
            let work: (batch: [Pending], fd: Int32, segment: UInt64, offset: UInt64)? = state.withLock { s in
                if s.pending.isEmpty {
                    s.flushing = false
                    return nil
                }
                let batch = s.pending
                s.pending = []
                return (batch, s.fd, s.segment, s.sizes[s.segment] ?? 0)
            }
            guard let work else { return }
            // Each append's frames are written where they are, one after the other, then
            // synced once: copying them into one buffer first copied every byte once more.
            let result = writeFrames(work.batch.map(\.frames), fd: work.fd, at: work.offset)
            let batchBytes = work.batch.reduce(Int64(0)) { $0 + Int64($1.frames.count) }
            var rollover = false
            state.withLock { s in
                s.pendingBytes -= batchBytes
                if case .success = result {
                    s.sizes[work.segment] = work.offset + UInt64(batchBytes)
                    rollover = Int64(work.offset) + batchBytes >= configuration.segmentBytes
                    // Durable now: the consumer may take them from memory, at their positions.
                    // The decoded records are moved into the tail (a copy would retain all they hold).
                    var offset = work.offset
                    for item in work.batch.indices {
                        var decoded: [IntakeRecord?] = []
                        if let box = work.batch[item].decoded { swap(&decoded, &box.records) }
                        for (index, record) in work.batch[item].records.enumerated() {
                            if index < decoded.count, s.tail.bytes + record.count <= configuration.tailBytes,
                               let taken = decoded[index].take() {
                                s.tail.bytes += record.count
                                s.tail.entries.append(TailEntry(position: SpoolPosition(segment: work.segment, offset: offset), bytes: record, record: consume taken))
                            }
                            offset += 8 + UInt64(record.count)
                        }
                    }
                }
            }
            switch result {
            case .success:
                for item in work.batch { item.continuation.resume() }
                wake()
            case .failure(let error):
                for item in work.batch { item.continuation.resume(throwing: error) }
            }
            if rollover { rollSegment() }
        }
    }

    /// Writes `chunks` one after the other from `offset`, then syncs; on failure the segment
    /// is cut back to `offset`, so it ends on a whole frame again.
    private func writeFrames(_ chunks: [[UInt8]], fd: Int32, at offset: UInt64) -> Result<Void, IntakeError> {
        var position = off_t(offset)
        for chunk in chunks {
            var written = 0
            while written < chunk.count {
                let n = chunk.withUnsafeBytes { raw in
                    pwrite(fd, raw.baseAddress! + written, chunk.count - written, position + off_t(written))
                }
                if n < 0 {
                    if errno == EINTR { continue }
                    let code = errno
                    _ = ftruncate(fd, off_t(offset))
                    return .failure(IntakeError(code == ENOSPC || code == EDQUOT ? .diskFull : .io,
                                                "spool write failed: \(String(cString: strerror(code)))"))
                }
                written += n
            }
            position += off_t(chunk.count)
        }
        if fdatasync(fd) != 0 {
            let code = errno
            _ = ftruncate(fd, off_t(offset))
            return .failure(IntakeError(code == ENOSPC || code == EDQUOT ? .diskFull : .io,
                                        "spool sync failed: \(String(cString: strerror(code)))"))
        }
        return .success(())
    }

    private func rollSegment() {
        let next = state.withLock { $0.segment + 1 }
        let fd = open(Self.segmentPath(configuration.directory, next), O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return }  // keep writing the current segment; retried at the next rollover
        Self.syncDirectory(configuration.directory)
        state.withLock { s in
            Glibc.close(s.fd)
            s.fd = fd
            s.segment = next
            s.sizes[next] = 0
        }
    }

    // MARK: - Reading

    public func nextBatch(maxRecords: Int, drainOnly: Bool) async throws -> IntakeBatch? {
        while true {
            try Task.checkCancellation()
            if let batch = takeFromTail(maxRecords: maxRecords) { return batch }
            if let batch = try readAvailable(maxRecords: maxRecords, consuming: true) { return batch }
            if drainOnly { return nil }
            if state.withLock({ $0.closed }) { return try readAvailable(maxRecords: maxRecords, consuming: true) }
            await waitForWakeup()
        }
    }

    private func wake() {
        let waiter = wakeup.withLock { w -> CheckedContinuation<Void, Never>? in
            if let waiter = w.waiter {
                w.waiter = nil
                return waiter
            }
            w.signaled = true
            return nil
        }
        waiter?.resume()
    }

    private func waitForWakeup() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = wakeup.withLock { w -> Bool in
                    if w.signaled || Task.isCancelled {
                        w.signaled = false
                        return true
                    }
                    w.waiter = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            wake()
        }
    }

    /// The first segment on disk after `segment`: where reading goes on past its end.
    static func segment(after segment: UInt64, in sizes: [UInt64: UInt64]) -> UInt64? {
        sizes.keys.filter { $0 > segment }.min()
    }

    /// The next records from the tail when it holds the read position's record: the same
    /// records, positions and sequences `readAvailable` would read from disk.
    func takeFromTail(maxRecords: Int) -> IntakeBatch? {
        state.withLock { s -> IntakeBatch? in
            var position = s.readPosition
            // Past the end of a finished segment, the next one starts (as `readAvailable` moves on).
            if position.offset >= s.sizes[position.segment] ?? 0, let next = Self.segment(after: position.segment, in: s.sizes) {
                position = SpoolPosition(segment: next, offset: 0)
            }
            s.tail.drop(before: position)
            guard s.tail.head < s.tail.entries.count, s.tail.entries[s.tail.head].position == position else { return nil }
            var records: [[UInt8]] = [], decoded: [IntakeRecord?] = [], sequences: [IntakeSequence] = []
            while records.count < maxRecords, s.tail.head < s.tail.entries.count, s.tail.entries[s.tail.head].position == position {
                var entry = s.tail.take()
                sequences.append(IntakeSequence(generation: generation, position: Int64(position.segment << 40 | position.offset)))
                position.offset += 8 + UInt64(entry.bytes.count)
                // Moved, not copied: a copy would retain all the record holds.
                decoded.append(entry.record.take())
                records.append(entry.bytes)
            }
            s.tail.compact()
            s.readPosition = position
            return IntakeBatch(records: records, end: position, sequences: sequences, decoded: decoded)
        }
    }

    /// Reads the next records from disk. `consuming`: for the consumer, which also lets go of
    /// tail entries it has read past.
    func readAvailable(maxRecords: Int, consuming: Bool = false) throws -> IntakeBatch? {
        var (position, sizes) = state.withLock { ($0.readPosition, $0.sizes) }
        var records: [[UInt8]] = []
        var sequences: [IntakeSequence] = []
        while records.count < maxRecords {
            let end = sizes[position.segment] ?? 0
            if position.offset >= end {
                // Move on when a later segment exists.
                guard let next = Self.segment(after: position.segment, in: sizes) else { break }
                position = SpoolPosition(segment: next, offset: 0)
                continue
            }
            let path = Self.segmentPath(configuration.directory, position.segment)
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw IntakeError(.io, "cannot read spool segment: errno \(errno)") }
            defer { Glibc.close(fd) }
            let chunk = Int(min(end - position.offset, 8 << 20))
            var data = [UInt8](repeating: 0, count: chunk)
            let n = data.withUnsafeMutableBytes { pread(fd, $0.baseAddress, chunk, off_t(position.offset)) }
            guard n == chunk else { throw IntakeError(.io, "short read from spool segment") }
            var offset = 0
            var corrupt = false
            while offset + 8 <= data.count, records.count < maxRecords {
                let length = Int(Self.readLE32(data, offset))
                if offset + 8 + length > data.count {
                    if offset == 0, 8 + length <= Int(end - position.offset) {
                        // A record larger than the chunk: read it whole.
                        var big = [UInt8](repeating: 0, count: 8 + length)
                        let m = big.withUnsafeMutableBytes { pread(fd, $0.baseAddress, 8 + length, off_t(position.offset)) }
                        guard m == 8 + length else { throw IntakeError(.io, "short read from spool segment") }
                        data = big
                        continue
                    }
                    if offset == 0 { corrupt = true }
                    break
                }
                let payload = Array(data[(offset + 8)..<(offset + 8 + length)])
                guard payload.withUnsafeBytes({ Self.crc($0) }) == Self.readLE32(data, offset + 4) else {
                    corrupt = true
                    break
                }
                records.append(payload)
                sequences.append(IntakeSequence(generation: generation, position: Int64(position.segment << 40 | (position.offset + UInt64(offset)))))
                offset += 8 + length
            }
            position.offset += UInt64(offset)
            if corrupt {
                // Only a damaged disk gets here (tails are repaired on open): skip the rest
                // of this segment rather than stop the pipeline forever.
                position.offset = end
            }
            if offset == 0, !corrupt { break }
        }
        state.withLock { s in
            s.readPosition = position
            if consuming { s.tail.drop(before: position) }
        }
        return records.isEmpty ? nil : IntakeBatch(records: records, end: position, sequences: sequences)
    }

    /// Records that the consumer has stored everything up to `batch.end`.
    public func commit(_ batch: IntakeBatch) throws {
        let dir = configuration.directory
        let tmp = dir.appendingPathComponent("checkpoint.tmp").path
        let text = "\(batch.end.segment) \(batch.end.offset)\n"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw IntakeError(.io, "cannot write spool checkpoint: errno \(errno)") }
        let ok = Array(text.utf8).withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) } == text.utf8.count && fsync(fd) == 0
        Glibc.close(fd)
        guard ok, rename(tmp, dir.appendingPathComponent("checkpoint").path) == 0 else {
            throw IntakeError(.io, "cannot write spool checkpoint: errno \(errno)")
        }
        let obsolete: [UInt64] = state.withLock { s in
            s.checkpoint = max(s.checkpoint, batch.end)
            let old = s.sizes.keys.filter { $0 < s.checkpoint.segment && $0 != s.segment }
            for segment in old { s.sizes[segment] = nil }
            return old
        }
        for segment in obsolete { unlink(Self.segmentPath(dir, segment)) }
        if !obsolete.isEmpty { Self.syncDirectory(dir) }
    }

    /// Refuses further appends and ends a consumer waiting for data.
    public func shutdown() {
        state.withLock { $0.closed = true }
        wake()
    }

    /// Visits every record not yet committed, a batch at a time (start-up rebuilds its
    /// in-memory state from them without holding the whole backlog in memory).
    public func forEachUncommitted(_ body: ([[UInt8]]) throws -> Void) throws {
        let saved = state.withLock { $0.readPosition }
        defer { state.withLock { $0.readPosition = saved } }
        while let batch = try readAvailable(maxRecords: 10_000) {
            try body(batch.records)
        }
    }

    /// Every record not yet committed.
    public func uncommittedRecords() throws -> [[UInt8]] {
        var all: [[UInt8]] = []
        try forEachUncommitted { all.append(contentsOf: $0) }
        return all
    }
}
