import VigilCore

/// Per-event detection rules matched at admission, on the fields an event is encoded from: the
/// pipeline then inserts the alerts once the event is stored, without parsing it back.
///
/// Admission takes an event's receive time first and asks for the tenant's matcher after it.
/// Rules are adopted under a lock that also reads the clock: a rule adopted at `A` is matched
/// from receive time `A + 1` on, as any request received then asks for its matcher after the
/// adoption.
public protocol AdmissionMatcher: Sendable {
    /// What matches a tenant's events now (nil: the tenant has no per-event rules).
    func matcher(for tenant: TenantName) -> (any EventMatcher)?
}

/// One tenant's per-event rules, as adopted at one time.
public protocol EventMatcher: Sendable {
    /// The tags of the rules the event's fields match (`StoredEvent.matched`).
    func tags(_ fields: JSONObject) -> [UInt64]
    /// The same for flat fields (`FlatFields`) with top-level members added after them: the
    /// tags of their nested document (`FlatFields.object()`) with `appending` set in it.
    func tags(flat: FlatFields, appending: JSONObject) -> [UInt64]
}

extension EventMatcher {
    public func tags(flat: FlatFields, appending: JSONObject) -> [UInt64] {
        tags(flat.object(setting: appending))
    }
}

/// A store's query filters on one event in memory (`EventStore.eventPredicates(for:)`).
public protocol EventPredicates: Sendable {
    /// The indexes of the queries the store would certainly return the event for, in order.
    func matching(_ fields: JSONObject) -> [Int]
    /// The same for flat fields with top-level members added after them (`EventMatcher.tags(flat:appending:)`).
    func matching(flat: FlatFields, appending: JSONObject) -> [Int]
}

extension EventPredicates {
    public func matching(flat: FlatFields, appending: JSONObject) -> [Int] {
        matching(flat.object(setting: appending))
    }
}
