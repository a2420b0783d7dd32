import VigilCore
import VigilPacks

/// Admission step for Windows events shipped over HTTP (Winlogbeat/Elastic Agent documents
/// and evtx-style JSON): normalizes them with `WindowsEventPack` and offers
/// `System.TimeCreated` as the timestamp when the document has none.
public struct WindowsEventStep: AdmissionStep {
    public init() {}

    public func apply(to fields: inout JSONObject, received: EpochMillis) -> EpochMillis? {
        guard fields["Event"] != nil || fields["winlog"] != nil else { return nil }
        return WindowsEventPack.normalize(&fields).timestamp
    }
}
