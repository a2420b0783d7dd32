import Logging
import Dispatch
import Metrics
import ServiceLifecycle
import VigilCore
import VigilStorage

/// Sees what the pipeline stores: the alerts of per-event detection rules, which matched at
/// admission (`StoredEvent.matched`), are inserted here as the events are stored.
public protocol PipelineObserver: Sendable {
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
    /// Records per batch at most (a batch is what the queue holds, so under light load it is
    /// small and stored at once). Under a backlog a larger batch spreads each transaction's
    /// commit, checkpoint share and token-index segment over more events: 40,000 against
    /// 20,000 cut 2-6 us of server CPU per event over a million events (2026-12-04), for
    /// about 130 MiB more peak memory.
    public var batchRecords = 40_000

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
        // The pipeline is two stages deep: the keys of batch N+1 are claimed (and its rows
        // built) while the rows of batch N are inserted and the observer matches batch N-1.
        // Inserts run in queue order, each after its own claim; batches are committed in
        // queue order once their insert and their observer's work are done.
        //
        // Batches read from the queue are never skipped (its read cursor has moved past them):
        // `current` is read and not yet claimed; `flights` are claimed and not yet committed,
        // oldest first; `retry` are batches to write again from the start after a failure,
        // oldest first (every stage is idempotent, so redoing a stage that had worked is harmless).
        var current: IntakeBatch?
        var flights: [InFlight] = []
        var retry: [IntakeBatch] = []
        await withGracefulShutdownHandler {
            var backoffMillis: Int64 = 50
            var wroteSinceIdle = false
            while !Task.isShuttingDownGracefully, !Task.isCancelled {
                do {
                    if let first = retry.first {
                        try await process(first, stored: storedCounter, writeTimer: writeTimer)
                        retry.removeFirst()
                        backoffMillis = 50
                        continue
                    }
                    if current == nil {
                        current = try await queue.nextBatch(maxRecords: batchRecords, drainOnly: true)
                        if current == nil {
                            // Nothing queued: finish what is in flight and let the store tidy up before waiting.
                            while let flight = flights.first {
                                try await finish(flight)
                                flights.removeFirst()
                            }
                            if wroteSinceIdle { await store.writerIdle() }
                            wroteSinceIdle = false
                            current = try await queue.nextBatch(maxRecords: batchRecords, drainOnly: false)
                        }
                    }
                    guard current != nil else { continue }
                    let claimed = try await claim(&current!)
                    if let last = flights.last { _ = try await last.insert.value }
                    flights.append(start(claimed, stored: storedCounter, writeTimer: writeTimer))
                    current = nil
                    wroteSinceIdle = true
                    while flights.count > 1 {
                        try await finish(flights[0])
                        flights.removeFirst()
                    }
                    backoffMillis = 50
                } catch is CancellationError {
                    break
                } catch {
                    failures.increment()
                    logger.error("Store write failed; retrying", metadata: ["error": "\(error)"])
                    // Let what is in flight settle, then write those batches again, in order.
                    for flight in flights { await flight.settle() }
                    retry = flights.map(\.batch) + retry
                    flights = []
                    try? await Task.sleep(for: .milliseconds(backoffMillis))
                    backoffMillis = min(backoffMillis * 2, 5_000)
                }
            }
        } onGracefulShutdown: {
            if let spool = queue as? Spool { spool.shutdown() }
        }
        // Drain: everything acknowledged before shutdown is stored before we return.
        for flight in flights {
            if (try? await flight.insert.value) != nil {
                try await finish(flight)
            } else {
                await flight.settle()
                try await process(flight.batch, stored: storedCounter, writeTimer: writeTimer)
            }
        }
        for batch in retry + (current.map { [$0] } ?? []) {
            try await process(batch, stored: storedCounter, writeTimer: writeTimer)
        }
        while true {
            guard let batch = try await queue.nextBatch(maxRecords: batchRecords, drainOnly: true) else { break }
            try await process(batch, stored: storedCounter, writeTimer: writeTimer)
        }
        logger.info("Intake pipeline drained")
    }

    /// A batch whose keys are claimed: its decoded events, and what the store built.
    struct Claimed {
        var batch: IntakeBatch
        var events: [StoredEvent]
        var rows: ClaimedBatch
    }

    /// A claimed batch on its way: its insert, then the observer's work on the events it
    /// holds (nil: no observer). Committed by `finish`.
    struct InFlight {
        var batch: IntakeBatch
        var events: [StoredEvent]
        var claimed: [StoredEvent]
        var insert: Task<Int, any Error>
        var work: Task<Void, any Error>?

        /// Waits for both tasks, whatever their outcome.
        func settle() async {
            _ = try? await insert.value
            _ = try? await work?.value
        }
    }

    /// Writes a batch from start to end (claim, insert, observer) and commits it.
    func process(_ batch: IntakeBatch, stored: Counter, writeTimer: Timer? = nil) async throws {
        var batch = batch
        try await finish(start(try await claim(&batch), stored: stored, writeTimer: writeTimer))
    }

    /// Stage one: decodes a batch's records and claims their keys. The records the queue
    /// handed over decoded are moved out of the batch (a copy would retain all an event
    /// holds); were it processed again, its bytes decode to the same records.
    func claim(_ batch: inout IntakeBatch) async throws -> Claimed {
        var events: [StoredEvent] = []
        var quarantined: [QuarantineItem] = []
        var decoded: [IntakeRecord?] = []
        swap(&decoded, &batch.decoded)
        for (index, bytes) in batch.records.enumerated() {
            let sequence = index < batch.sequences.count ? batch.sequences[index] : nil
            // As appended, when the queue still had it: the bytes are its encoding.
            let sorted = index < decoded.count && Self.sort(decoded[index].take(), sequence: sequence, into: &events, &quarantined)
            if !sorted, !Self.sort(IntakeRecord.decode(bytes), sequence: sequence, into: &events, &quarantined) {
                Counter(label: "vigil_events_dropped_total", dimensions: [("stage", "pipeline"), ("reason", "undecodable_record"), ("intentional", "false")]).increment()
                logger.error("Undecodable intake record skipped")
            }
        }
        let started = DispatchTime.now().uptimeNanoseconds
        let rows = try await store.claim(events: events, quarantined: quarantined)
        Timer(label: "vigil_store_claim_seconds").recordNanoseconds(Int64(DispatchTime.now().uptimeNanoseconds - started))
        return Claimed(batch: batch, events: events, rows: rows)
    }

    /// Appends a record's event or quarantined item, with its sequence; false for nil. Taken
    /// (`consuming`) and switched over where it is: in `claim`, an optional record tested
    /// against nil was copied, which retained everything an event holds.
    static func sort(_ record: consuming IntakeRecord?, sequence: IntakeSequence?, into events: inout [StoredEvent], _ quarantined: inout [QuarantineItem]) -> Bool {
        switch consume record {
        case .event(var event)?:
            event.sequence = sequence
            events.append(consume event)
            return true
        case .quarantine(var item)?:
            item.sequence = sequence
            quarantined.append(consume item)
            return true
        case nil:
            return false
        }
    }

    /// Stage two: starts the insert of a claimed batch, and the observer's work once it is in.
    /// The caller makes sure the insert of the batch before has finished.
    func start(_ claimed: Claimed, stored: Counter, writeTimer: Timer? = nil) -> InFlight {
        let store = store, logger = logger
        let rows = claimed.rows
        let records = claimed.batch.records.count
        let insert = Task { () async throws -> Int in
            let started = DispatchTime.now()
            let count = try await store.insert(rows)
            let elapsed = DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds
            writeTimer?.recordNanoseconds(Int64(elapsed))
            stored.increment(by: count)
            logger.debug("Stored intake batch", metadata: ["records": "\(records)", "stored": "\(count)", "insert_ms": "\(elapsed / 1_000_000)"])
            return count
        }
        let events = rows.claimed
        let work = observer.map { observer in
            Task { () async throws in
                _ = try await insert.value
                try await observer.stored(events)
            }
        }
        return InFlight(batch: claimed.batch, events: claimed.events, claimed: events, insert: insert, work: work)
    }

    /// Waits for a batch's insert (its failure is thrown: the batch must be written again)
    /// and for the observer's work on it (retried until it succeeds: it is idempotent), then
    /// commits the batch to the queue and marks its events stored.
    func finish(_ flight: InFlight) async throws {
        _ = try await flight.insert.value
        if var work = flight.work, let observer {
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
                    let claimed = flight.claimed
                    work = Task { try await observer.stored(claimed) }
                }
            }
        }
        try queue.commit(flight.batch)
        intake.markStored(flight.events)
    }
}
