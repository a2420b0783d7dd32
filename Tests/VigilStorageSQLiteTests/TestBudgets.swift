import Synchronization
import VigilCore
import VigilStorage

/// A search budget whose time limit never runs out by itself: its clock stands still. These
/// tests are about what a search answers; on the 2-core machine, CPU-bound suites running
/// beside them could otherwise hold a search past its 10 s long enough to interrupt it.
func patientBudget() -> QueryBudget {
    QueryBudget(timeoutMillis: 10_000, clock: ManualClock(0))
}

/// A clock that moves one millisecond each time it is read: a budget on it runs out after a
/// known number of checks, whatever the machine's load.
final class TickingClock: VigilClock {
    private let current = Atomic<EpochMillis>(0)
    func now() -> EpochMillis { current.wrappingAdd(1, ordering: .relaxed).oldValue }
    var reads: Int64 { current.load(ordering: .relaxed) }
}
