import Synchronization
import VigilCore

/// A lease on a named piece of work, with a fencing token that grows with every grant: a
/// store that remembers the largest token it has seen refuses writes from older holders.
public struct Lease: Sendable, Equatable {
    public var name: String
    public var holder: String
    public var token: UInt64
    public var expires: EpochMillis
}

/// Who evaluates which window: exactly one worker holds a rule's lease at a time. In-process
/// now; the Redis implementation comes with scale-out.
public protocol Coordinator: Sendable {
    /// Grants the lease when it is free, expired, or already held by `holder` (renewal keeps
    /// the token); nil when someone else holds it.
    func acquire(_ name: String, holder: String, ttlMillis: Int64, now: EpochMillis) async -> Lease?
    func release(_ lease: Lease) async
}

public final class InProcessCoordinator: Coordinator {
    struct State {
        var leases: [String: Lease] = [:]
        var nextToken: UInt64 = 1
    }

    let state = Mutex(State())

    public init() {}

    public func acquire(_ name: String, holder: String, ttlMillis: Int64, now: EpochMillis) async -> Lease? {
        state.withLock { state in
            if let current = state.leases[name], current.expires > now {
                guard current.holder == holder else { return nil }
                var renewed = current
                renewed.expires = now + ttlMillis
                state.leases[name] = renewed
                return renewed
            }
            let lease = Lease(name: name, holder: holder, token: state.nextToken, expires: now + ttlMillis)
            state.nextToken += 1
            state.leases[name] = lease
            return lease
        }
    }

    public func release(_ lease: Lease) async {
        state.withLock { state in
            if state.leases[lease.name]?.token == lease.token { state.leases[lease.name] = nil }
        }
    }
}
