import VigilCore
import VigilThreatIntel

/// Admission step: threat-intel enrichment against the current indicator set (after the packs,
/// so it sees normalized fields).
public struct IntelStep: AdmissionStep {
    let feeds: IntelFeeds

    public init(feeds: IntelFeeds) {
        self.feeds = feeds
    }

    public func apply(to fields: inout JSONObject, received: EpochMillis) -> EpochMillis? {
        let set = feeds.current
        if set.count > 0 { Enrichment.enrich(&fields, with: set) }
        return nil
    }

    public func leavesUnchanged(_ fields: FlatFields) -> Bool {
        !Enrichment.matches(fields, with: feeds.current)
    }
}
