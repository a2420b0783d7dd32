import Logging
import Dispatch
import Metrics
import ServiceLifecycle
import VigilCore
import VigilStorage

/// Sees what the pipeline stores: per-event detection rules match here, as events are stored.
public protocol PipelineObserver: Sendable {
    /// Called before the pipeline asks the queue for its next batch: every record that batch
    /// (or a later one) holds was appended after this call.
    func beforeNextBatch()
    /// The events a batch holds (`EventStore.writeClaiming`) once they are stored. It runs
    /// while the pipeline writes the next batch; the batch is committed to the queue, and its
    /// events stop counting as unstored, only once it has returned. Throwing calls it again
    /// with the same events (after a backoff), so it must be idempotent.
    func stored(_ events: [StoredEvent]) async throws
}

/// Moves records from the intake queue into the event store, then commits the queue.
///
/// Store writes are idempotent by event key and record sequence, so a crash between the
/// store commit and the queue commit only replays records that change nothing. On graceful shutdown the pipeline
/// drains what the queue holds before returning.
public struct PipelineService: Service {
    let queue: any IntakeQueue
    let store: any EventStore
    let intake: IntakeService
    let logger: Logger
    let observer: (any PipelineObserver)?
    public var batchRecords = 20_000

    public init(queue: any IntakeQueue, store: any EventStore, intake: IntakeService, observer: (any PipelineObserver)? = nil, logger: Logger) {
        self.observer = observer
        self.queue = queue
        self.store = store
        self.intake = intake
        self.logger = logger
    }

    public func run() async throws {
        let storedCounter = Counter(label: "vigil_events_stored_total")
        let writeTimer = Timer(label: "vigil_store_write_seconds")
        let failures = Counter(label: "vigil_errors_total", dimensions: [("stage", "store"), ("error", "write_failed")])
        // A batch that failed to store is retried as it is: the queue's read cursor has already
        // moved past it, and it must not be skipped (nor at shutdown).
        var current: IntakeBatch?
        // A stored batch whose observer work (detection) runs while the next batch is
        // written; it is committed, in queue order, once that work is done.
        var observed: Observed?
        await withGracefulShutdownHandler {
            var backoffMillis: Int64 = 50
            var wroteSinceIdle = false
            while !Task.isShuttingDownGracefully, !Task.isCancelled {
                do {
                    if current == nil {
                        observer?.beforeNextBatch()
                        current = try await queue.nextBatch(maxRecords: batchRecords, drainOnly: true)
                        if current == nil {
                            // Nothing queued: finish the last batch and let the store tidy up before waiting.
                            if let last = observed { try await finish(last) }
                            observed = nil
                            if wroteSinceIdle { await store.writerIdle() }
                            wroteSinceIdle = false
                            observer?.beforeNextBatch()
                            current = try await queue.nextBatch(maxRecords: batchRecords, drainOnly: false)
                        }
                    }
                    guard let batch = current else { continue }
                    let next = try await write(batch, stored: storedCounter, writeTimer: writeTimer)
                    if let previous = observed { try await finish(previous) }
                    observed = nil
                    if next.work == nil { try await finish(next) } else { observed = next }
                    current = nil
                    wroteSinceIdle = true
                    backoffMillis = 50
                } catch is CancellationError {
                    break
                } catch {
                    failures.increment()
                    logger.error("Store write failed; retrying", metadata: ["error": "\(error)"])
                    try? await Task.sleep(for: .milliseconds(backoffMillis))
                    backoffMillis = min(backoffMillis * 2, 5_000)
                }
            }
        } onGracefulShutdown: {
            if let spool = queue as? Spool { spool.shutdown() }
        }
        // Drain: everything acknowledged before shutdown is stored before we return.
        if let last = observed { try await finish(last) }
        if let batch = current {
            try await process(batch, stored: storedCounter, writeTimer: writeTimer)
        }
        while true {
            observer?.beforeNextBatch()
            guard let batch = try await queue.nextBatch(maxRecords: batchRecords, drainOnly: true) else { break }
            try await process(batch, stored: storedCounter, writeTimer: writeTimer)
        }
        logger.info("Intake pipeline drained")
    }

    /// A stored batch and the observer's work on it (nil: none).
    struct Observed {
        var batch: IntakeBatch
        var events: [StoredEvent]
        var claimed: [StoredEvent]
        var work: Task<Void, any Error>?
    }

    /// Stores a batch, then commits it.
    func process(_ batch: IntakeBatch, stored: Counter, writeTimer: Timer? = nil) async throws {
        try await finish(try await write(batch, stored: stored, writeTimer: writeTimer))
    }

    /// Decodes and stores a batch; the observer starts on the events it claimed.
    func write(_ batch: IntakeBatch, stored: Counter, writeTimer: Timer? = nil) async throws -> Observed {
        let started = DispatchTime.now()
        var events: [StoredEvent] = []
        var quarantined: [QuarantineItem] = []
        for (index, bytes) in batch.records.enumerated() {
            let sequence = index < batch.sequences.count ? batch.sequences[index] : nil
            switch IntakeRecord.decode(bytes) {
            case .event(var event)?:
                event.sequence = sequence
                events.append(event)
            case .quarantine(var item)?:
                item.sequence = sequence
                quarantined.append(item)
            case nil:
                Counter(label: "vigil_events_dropped_total", dimensions: [("stage", "pipeline"), ("reason", "undecodable_record"), ("intentional", "false")]).increment()
                logger.error("Undecodable intake record skipped")
            }
        }
        let decoded = DispatchTime.now()
        let count: Int
        var result = Observed(batch: batch, events: events, claimed: [], work: nil)
        if let observer {
            let (newly, claimed) = try await store.writeClaiming(events: events, quarantined: quarantined)
            count = newly
            result.claimed = claimed
            result.work = Task { try await observer.stored(claimed) }
        } else {
            count = try await store.write(events: events, quarantined: quarantined)
        }
        let written = DispatchTime.now()
        writeTimer?.recordNanoseconds(Int64(written.uptimeNanoseconds - decoded.uptimeNanoseconds))
        stored.increment(by: count)
        logger.debug("Stored intake batch", metadata: [
            "records": "\(batch.records.count)", "stored": "\(count)",
            "decode_ms": "\((decoded.uptimeNanoseconds - started.uptimeNanoseconds) / 1_000_000)",
            "store_ms": "\((written.uptimeNanoseconds - decoded.uptimeNanoseconds) / 1_000_000)",
        ])
        return result
    }

    /// Waits for the observer's work on a stored batch (retrying it until it succeeds: it is
    /// idempotent), then commits the batch to the queue and marks its events stored.
    func finish(_ observed: Observed) async throws {
        if var work = observed.work, let observer {
            var backoffMillis: Int64 = 50
            while true {
                do {
                    try await work.value
                    break
                } catch {
                    Counter(label: "vigil_errors_total", dimensions: [("stage", "pipeline_observer"), ("error", "failed")]).increment()
                    logger.error("Detection on stored events failed; retrying", metadata: ["error": "\(error)"])
                    try await Task.sleep(for: .milliseconds(backoffMillis))
                    backoffMillis = min(backoffMillis * 2, 5_000)
                    let claimed = observed.claimed
                    work = Task { try await observer.stored(claimed) }
                }
            }
        }
        try queue.commit(observed.batch)
        intake.markStored(observed.events)
    }
}
