import Synchronization

/// A clock that moves only when told to: tests use it instead of sleeping.
public final class ManualClock: VigilClock {
    private let current: Mutex<EpochMillis>

    public init(_ start: EpochMillis) { current = Mutex(start) }

    public func now() -> EpochMillis { current.withLock { $0 } }

    public func advance(byMillis delta: Int64) { current.withLock { $0 += delta } }

    public func set(_ value: EpochMillis) { current.withLock { $0 = value } }
}
