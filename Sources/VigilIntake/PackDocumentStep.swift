import VigilCore
import VigilParsing

/// Admission step for documents shipped over HTTP that a protocol pack recognises (Winlogbeat
/// and evtx-style Windows events, PAN-OS JSON, Zeek NDJSON): the pack's ECS and vendor fields
/// are merged into the document (the pack wins on conflicts, nothing else is dropped), and the
/// pack's timestamp is offered when the document has none. An evtx `Event` object is replaced
/// by its normalized form (`winlog.*` keeps every EventData item verbatim). A pack that built
/// its fields on the document (Winlogbeat) returns the document itself, which replaces it.
public struct PackDocumentStep: AdmissionStep {
    let normalizer: Normalizer

    public init(normalizer: Normalizer = Normalizer()) {
        self.normalizer = normalizer
    }

    /// Syslog lines were normalized by the same packs in the listener.
    public var appliesToNormalized: Bool { false }

    public func apply(to fields: inout JSONObject, received: EpochMillis) -> EpochMillis? {
        guard let normalized = normalizer.normalize(document: fields, receivedAt: received) else { return nil }
        if normalized.buildsOnDocument {
            fields = normalized.fields
            return normalized.timestamp
        }
        if normalized.dataset.hasPrefix("windows."), fields["Event"] != nil { fields.removeValue(forKey: "Event") }
        FieldNesting.merge(normalized.fields, into: &fields)
        return normalized.timestamp
    }
}
