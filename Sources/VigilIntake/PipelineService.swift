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
    /// The events a batch holds (`EventStore.writeClaiming`) once they are stored, before the
    /// queue commits the batch and before they stop counting as unstored. Throwing retries
    /// the whole batch, which the store takes as a replay.
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
        await withGracefulShutdownHandler {
            var backoffMillis: Int64 = 50
            var wroteSinceIdle = false
            while !Task.isShuttingDownGracefully, !Task.isCancelled {
                do {
                    if current == nil {
                        observer?.beforeNextBatch()
                        current = try await queue.nextBatch(maxRecords: batchRecords, drainOnly: true)
                        if current == nil {
                            // Nothing queued: let the store tidy up before waiting.
                            if wroteSinceIdle { await store.writerIdle() }
                            wroteSinceIdle = false
                            observer?.beforeNextBatch()
                            current = try await queue.nextBatch(maxRecords: batchRecords, drainOnly: false)
                        }
                    }
                    guard let batch = current else { continue }
                    try await process(batch, stored: storedCounter, writeTimer: writeTimer)
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

    func process(_ batch: IntakeBatch, stored: Counter, writeTimer: Timer? = nil) async throws {
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
        if let observer {
            let (stored, claimed) = try await store.writeClaiming(events: events, quarantined: quarantined)
            try await observer.stored(claimed)
            count = stored
        } else {
            count = try await store.write(events: events, quarantined: quarantined)
        }
        let written = DispatchTime.now()
        writeTimer?.recordNanoseconds(Int64(written.uptimeNanoseconds - decoded.uptimeNanoseconds))
        stored.increment(by: count)
        try queue.commit(batch)
        intake.markStored(events)
        logger.debug("Stored intake batch", metadata: [
            "records": "\(batch.records.count)", "stored": "\(count)",
            "decode_ms": "\((decoded.uptimeNanoseconds - started.uptimeNanoseconds) / 1_000_000)",
            "store_ms": "\((written.uptimeNanoseconds - decoded.uptimeNanoseconds) / 1_000_000)",
            "commit_ms": "\((DispatchTime.now().uptimeNanoseconds - written.uptimeNanoseconds) / 1_000_000)",
        ])
    }
}
