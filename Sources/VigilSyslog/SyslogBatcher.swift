import Logging
import Metrics
import VigilCore
import VigilIntake
import VigilStorage

/// Turns a syslog frame into an item for admission (the protocol packs live behind this).
public protocol SyslogDecoding: Sendable {
    /// - Parameters:
    ///   - frame: one syslog message as framed off the wire.
    ///   - peer: the sender's address text.
    ///   - received: the receive time.
    /// - Returns: the item to admit and the dataset it was recognised as, with whether the
    ///   pack that recognised it failed to parse it fully.
    func decode(frame: [UInt8], peer: String, received: EpochMillis) -> SyslogDecoded
}

public struct SyslogDecoded: Sendable {
    public var item: DecodedItem
    public var dataset: String
    public var parseFailure: Bool

    public init(item: DecodedItem, dataset: String, parseFailure: Bool) {
        self.item = item
        self.dataset = dataset
        self.parseFailure = parseFailure
    }
}

/// Collects frames from every connection and datagram and admits them in batches: one spool
/// append (one fsync) per batch, whatever the number of senders.
///
/// TCP connections wait until their frames are durable before reading more, so a slow or full
/// spool pushes back on the sender through the TCP window. UDP cannot push back: its frames are
/// admitted without waiting and, beyond `maxPendingFrames`, dropped and counted.
public actor SyslogBatcher {
    let intake: IntakeService
    let clock: any VigilClock
    let logger: Logger
    public let maxPendingFrames: Int
    let maxBatchFrames: Int

    /// Frames waiting, in order.
    var pending = Frames()
    /// Frames of the batch being submitted, taken out of the backlog meanwhile.
    var submitting = 0
    /// Frames ever appended, and ever admitted: a waiter is released once `admitted` reaches
    /// the `appended` count it saw, whatever arrives after it.
    var appended = 0
    var admitted = 0
    /// Frames admitted from a batch that is not all admitted yet (`flushLoop`).
    var carried = 0
    var waiters: [(target: Int, continuation: CheckedContinuation<Void, Never>)] = []
    var flushing = false
    var sequence: UInt64 = 0
    let bootID: String
    /// `syslog-<bootID>-`: each frame's id is this and its sequence number in base 36.
    let idPrefix: String

    public init(intake: IntakeService, clock: any VigilClock, logger: Logger, maxPendingFrames: Int = 100_000, maxBatchFrames: Int = 5_000) {
        self.intake = intake
        self.clock = clock
        self.logger = logger
        self.maxPendingFrames = maxPendingFrames
        self.maxBatchFrames = maxBatchFrames
        var generator = SystemRandomNumberGenerator()
        bootID = String(generator.next() as UInt64, radix: 36)
        idPrefix = "syslog-\(bootID)-"
    }

    /// Admits frames from a TCP connection: returns at once while the backlog is below
    /// `highWater` (so reading overlaps the previous batch's fsync), else once these frames
    /// are durable — which stops reading and pushes back on the sender through the TCP window.
    public func admitFromStream(_ entries: consuming [(TenantName, SyslogDecoded)], highWater: Int = 20_000) async {
        guard !entries.isEmpty else { return }
        if backlog + entries.count <= highWater {
            append(consume entries)
            startFlushing()
            return
        }
        await admitAndWait(consume entries)
    }

    /// Admits frames and returns once they are durable in the spool.
    public func admitAndWait(_ entries: consuming [(TenantName, SyslogDecoded)]) async {
        guard !entries.isEmpty else { return }
        append(consume entries)
        let target = appended
        await withCheckedContinuation { continuation in
            waiters.append((target, continuation))
            startFlushing()
        }
    }

    /// Admits frames without waiting (UDP); returns false when the backlog is full and the
    /// frames were dropped.
    public func admit(_ entries: consuming [(TenantName, SyslogDecoded)]) -> Bool {
        guard backlog + entries.count <= maxPendingFrames else {
            SyslogMetrics.drop("queue_full", count: entries.count)
            return false
        }
        append(consume entries)
        startFlushing()
        return true
    }

    /// Frames waiting to be admitted.
    public var backlog: Int { pending.count + submitting }

    /// Returns once everything handed over so far is admitted (used at shutdown).
    public func drain() async {
        guard flushing || pending.count > 0 else { return }
        let target = appended
        await withCheckedContinuation { continuation in
            waiters.append((target, continuation))
            startFlushing()
        }
    }

    func append(_ entries: consuming [(TenantName, SyslogDecoded)]) {
        let now = clock.now()
        // The consumed array is this function's own: its items are moved out of it in place.
        for index in entries.indices {
            // Moved out of the array, not copied: a copy retained every buffer of the event.
            let item = exchange(&entries[index].1.item, with: .rejected(.unparseable, detail: "", raw: []))
            switch consume item {
            case .candidate(var candidate) where candidate.transportID == nil:
                // Every frame is its own event: syslog has no retries that content keys would
                // catch, and two identical lines in one second are two events (think repeated
                // denies). The id is unique per server start and frame, and given here, once, so
                // a batch retried after a partial failure is recognised as the same events. So
                // is the time a line without one takes: the id's key leads with the event's
                // second (`Candidate.idIsServers`), and a retry must make the same key.
                sequence &+= 1
                candidate.transportID = idPrefix + String(sequence, radix: 36)
                candidate.idIsServers = true
                if candidate.defaultTimestamp == nil { candidate.defaultTimestamp = now }
                pending.append(entries[index].0, .candidate(candidate))
            case let other:
                pending.append(entries[index].0, other)
            }
            appended += 1
            if entries[index].1.parseFailure { SyslogMetrics.parseFailure(dataset: entries[index].1.dataset) }
        }
    }

    func startFlushing() {
        guard !flushing else { return }
        flushing = true
        Task { await self.flushLoop() }
    }

    func flushLoop() async {
        var backoff: Duration = .milliseconds(50)
        while pending.count > 0 {
            let count = min(pending.count, maxBatchFrames)
            // Taken out of the backlog while it is submitted: frames appended meanwhile queue
            // behind it.
            var batch = pending.takeFirst(count)
            submitting = count
            do {
                try await submit(&batch)
                submitting = 0
                admitted += count + carried
                carried = 0
                backoff = .milliseconds(50)
                releaseWaiters()
            } catch let error as IntakeError where error.code == .closed {
                // The spool is closed (the process is stopping): nothing more can be kept.
                submitting = 0
                let dropped = batch.count + pending.count
                logger.error("Syslog frames dropped: the intake spool is closed", metadata: ["frames": "\(dropped)"])
                SyslogMetrics.drop("shutdown", count: dropped)
                admitted += count + carried + pending.count
                carried = 0
                pending = Frames()
                releaseWaiters()
                break
            } catch {
                // The spool refused (full, disk full) a tenant's share: nothing of it, or of the
                // tenants after it, was kept. Put those frames back in front and try again;
                // TCP senders wait meanwhile. The shares admitted before it are not submitted
                // again: their frames' keys are unique (`StoredEvent.keyIsUnique`), so the
                // store would not recognise them a second time. They count as admitted once
                // the rest of their batch is, so waiters are released in order.
                submitting = 0
                carried += count - batch.count
                pending.insertInFront(batch)
                logger.warning("Syslog batch refused by the intake spool; retrying", metadata: ["error": "\(error)", "frames": "\(batch.count)"])
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(2))
                continue
            }
        }
        flushing = false
        releaseWaiters()
    }

    func releaseWaiters() {
        var kept: [(target: Int, continuation: CheckedContinuation<Void, Never>)] = []
        for waiter in waiters {
            if waiter.target <= admitted { waiter.continuation.resume() } else { kept.append(waiter) }
        }
        waiters = kept
    }

    /// Frames in order: each one's tenant and item, in two arrays so that a batch of one
    /// tenant (the usual case) is handed to admission as it is, without a copy of its items.
    struct Frames {
        private(set) var tenants: [TenantName] = []
        private(set) var items: [DecodedItem] = []

        var count: Int { items.count }

        mutating func append(_ tenant: TenantName, _ item: DecodedItem) {
            tenants.append(tenant)
            items.append(item)
        }

        /// Takes the first `count` frames out: all of them with no copy and no shifting.
        mutating func takeFirst(_ count: Int) -> Frames {
            guard count < self.count else { return exchange(&self, with: Frames()) }
            let first = Frames(tenants: Array(tenants.prefix(count)), items: Array(items.prefix(count)))
            tenants.removeFirst(count)
            items.removeFirst(count)
            return first
        }

        /// Puts `frames` back before these.
        mutating func insertInFront(_ frames: Frames) {
            tenants.insert(contentsOf: frames.tenants, at: 0)
            items.insert(contentsOf: frames.items, at: 0)
        }

        /// The frames whose tenant `keep` accepts, in order.
        func filter(_ keep: (TenantName) -> Bool) -> Frames {
            var kept = Frames()
            for (tenant, item) in zip(tenants, items) where keep(tenant) { kept.append(tenant, item) }
            return kept
        }
    }

    /// Submits the batch one tenant's share at a time; when one throws, `batch` is left with
    /// the frames not admitted (that share's and the ones after it), in order.
    func submit(_ batch: inout Frames) async throws {
        // One tenant (a listener's, or one sender's): its items as they are.
        if let first = batch.tenants.first, batch.tenants.allSatisfy({ $0 == first }) {
            _ = try await intake.submit(tenant: first, source: "syslog", items: batch.items)
            return
        }
        var byTenant: [TenantName: [DecodedItem]] = [:]
        var order: [TenantName] = []
        for (tenant, item) in zip(batch.tenants, batch.items) {
            if byTenant[tenant] == nil { order.append(tenant) }
            byTenant[tenant, default: []].append(item)
        }
        for (index, tenant) in order.enumerated() {
            do {
                _ = try await intake.submit(tenant: tenant, source: "syslog", items: byTenant[tenant] ?? [])
            } catch {
                let admitted = Set(order[..<index])
                batch = batch.filter { !admitted.contains($0) }
                throw error
            }
        }
    }
}

/// Counters for the listeners: frames, bytes, parse failures and drops by reason.
public enum SyslogMetrics {
    public static func frames(_ count: Int, transport: String, bytes: Int) {
        Counter(label: "vigil_syslog_frames_total", dimensions: [("transport", transport)]).increment(by: count)
        Counter(label: "vigil_syslog_bytes_total", dimensions: [("transport", transport)]).increment(by: bytes)
    }

    public static func drop(_ reason: String, count: Int = 1) {
        Counter(label: "vigil_syslog_dropped_total", dimensions: [("reason", reason)]).increment(by: count)
    }

    /// A connection refused (over the limit) or closed by the server (idle).
    public static func connectionRefused(_ reason: String) {
        Counter(label: "vigil_syslog_connections_closed_total", dimensions: [("reason", reason)]).increment()
    }

    public static func parseFailure(dataset: String) {
        Counter(label: "vigil_parse_failures_total", dimensions: [("dataset", dataset)]).increment()
    }
}
