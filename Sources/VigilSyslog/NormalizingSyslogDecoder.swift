import VigilCore
import VigilIntake
import VigilParsing

/// The syslog decoder with every protocol pack of `VigilParsing` (PAN-OS, FortiGate, Cisco ASA,
/// F5, Zeek, Linux auth, CEF, LEEF, key=value, JSON): the device's time, ECS fields and vendor
/// fields; anything no pack knows is generic `syslog`.
public struct NormalizingSyslogDecoder: SyslogDecoding {
    let normalizer: Normalizer

    public init(normalizer: Normalizer = Normalizer()) {
        self.normalizer = normalizer
    }

    public func decode(frame: [UInt8], peer: String, received: EpochMillis) -> SyslogDecoded {
        let line = String(decoding: frame, as: UTF8.self)
        let normalized: NormalizedEvent
        switch normalizer.normalize(frame: frame, line: line, peer: peer, receivedAt: received) {
        case .flat(let flat):
            var candidate = Candidate(object: JSONObject(), timestamp: flat.timestamp.map { .millis($0) } ?? .absent, raw: frame)
            candidate.flat = flat.fields
            candidate.normalized = true
            return SyslogDecoded(item: .candidate(candidate), dataset: flat.dataset, parseFailure: flat.parseFailure)
        case .document(let document):
            normalized = document
        }
        var fields = normalized.fields
        FieldNesting.set(.string(peer), at: "log.source.address", in: &fields)
        let timestamp: Candidate.TimestampField = normalized.timestamp.map { .millis($0) } ?? .absent
        var candidate = Candidate(object: fields, timestamp: timestamp, raw: frame)
        candidate.normalized = true
        return SyslogDecoded(item: .candidate(candidate),
                             dataset: normalized.dataset, parseFailure: normalized.parseFailure)
    }
}
