import Foundation
public import VigilCore

/// Turns raw lines and JSON documents into ECS events by trying each protocol pack in order.
///
/// A line no pack knows becomes dataset `syslog` with the syslog header fields, never an
/// error; `message` is always the original line, verbatim.
///
/// ```swift
/// let event = Normalizer().normalize(line: "<134>Jan  1 00:00:00 fw %ASA-6-302013: ...", receivedAt: now)
/// event.dataset // "cisco.asa"
/// ```
public struct Normalizer: Sendable {
    public var packs: [any ProtocolPack] {
        didSet { flatPacks = FlatPackPositions(packs) }
    }
    public var syslogParser = SyslogParser()
    /// Where the packs the flat paths stand for are in `packs`: found when they are set, not
    /// by a run-time type check of each pack for every line.
    private var flatPacks: FlatPackPositions

    public init(packs: [any ProtocolPack] = Normalizer.defaultPacks) {
        self.packs = packs
        flatPacks = FlatPackPositions(packs)
    }

    /// The positions of the packs `normalizeFlat` needs in a list of packs.
    struct FlatPackPositions: Sendable {
        var panosFirst: Bool
        var linux, asa, fortinet, f5: Int?

        init(_ packs: [any ProtocolPack]) {
            panosFirst = packs.first is PANOSPack
            linux = packs.firstIndex { $0 is LinuxAuthPack }
            asa = packs.firstIndex { $0 is CiscoASAPack }
            fortinet = packs.firstIndex { $0 is FortiGatePack }
            f5 = packs.firstIndex { $0 is F5BigIPPack }
        }
    }

    /// Vendor packs first (most specific), then the generic formats.
    public static var defaultPacks: [any ProtocolPack] {
        [
            PANOSPack(), FortiGatePack(), CiscoASAPack(), F5BigIPPack(), ZeekPack(), WindowsEventPack(),
            LinuxAuthPack(), CEFPack(), LEEFPack(), KeyValuePack(),
        ]
    }

    /// Normalizes one syslog or raw line (trailing CR/LF ignored for parsing, kept in `message`).
    public func normalize(line: String, receivedAt: EpochMillis) -> NormalizedEvent {
        // Looked at without a trimmed copy of every line: only a JSON line needs one.
        if line.drop(while: \.isWhitespace).hasPrefix("{"), case .object(let doc)? = try? JSONParser.parse(line.trimmedASCII) {
            if var event = normalize(document: doc, receivedAt: receivedAt) {
                FieldNesting.set(.string(line), at: "message", in: &event.fields)
                return event
            }
            var b = ECSBuilder(FieldNesting.nest(doc))
            b.set("message", .string(line))
            b.set("event.dataset", .string("json"))
            let ts = (doc["@timestamp"]?.stringValue).flatMap(Timestamp.parseRFC3339)
            return NormalizedEvent(fields: b.object, timestamp: ts, dataset: "json")
        }
        return normalize(line: line, syslog: syslogParser.parse(line, referenceTime: receivedAt), receivedAt: receivedAt)
    }

    /// `normalize(line:)` for a line that is no JSON object, with its header already parsed.
    func normalize(line: String, syslog: SyslogMessage, receivedAt: EpochMillis) -> NormalizedEvent {
        let fallback = PackResult(dataset: "syslog", fields: JSONObject(), parseFailure: false)
        return finish(packResult(line: line, syslog: syslog, receivedAt: receivedAt) ?? fallback, syslog: syslog, message: line)
    }

    /// The first pack's result for the line; nil when no pack takes it.
    func packResult(line: String, syslog: SyslogMessage, receivedAt: EpochMillis) -> PackResult? {
        var document: JSONObject?
        if syslog.message.hasPrefix("{"), case .object(let doc)? = try? JSONParser.parse(syslog.message) { document = doc }
        let input = PackInput(line: line, syslog: syslog, body: syslog.message, document: document, receivedAt: receivedAt)
        for pack in packs {
            if let result = pack.normalize(input) { return result }
        }
        return nil
    }

    /// A syslog frame normalized the way the syslog decoder stores it.
    public enum FrameNormalized: Sendable {
        /// The fields of a line a flat path takes (`normalizeFlat`).
        case flat(FlatNormalizedEvent)
        /// The document `normalize(line:)` makes, for any other line.
        case document(NormalizedEvent)
    }

    /// A syslog frame as flat fields when a flat path takes it or no pack does (generic
    /// `syslog`, `GenericFlatSyslog`), else as `normalize(line:)`'s document; the header is
    /// parsed once for all of them, and the packs run once.
    ///
    /// - Parameters:
    ///   - frame: the line's bytes; `line` is their text.
    ///   - peer: the sender's address, set as `log.source.address` of flat fields (the caller
    ///     sets it in a document).
    public func normalize(frame: [UInt8], line: String, peer: String, receivedAt: EpochMillis) -> FrameNormalized {
        guard frame.first == UInt8(ascii: "<") else { return .document(normalize(line: line, receivedAt: receivedAt)) }
        let syslog = syslogParser.parse(line, referenceTime: receivedAt)
        if let flat = normalizeFlat(frame: frame, line: line, syslog: syslog, peer: peer, receivedAt: receivedAt) { return .flat(flat) }
        if let result = packResult(line: line, syslog: syslog, receivedAt: receivedAt) {
            return .document(finish(result, syslog: syslog, message: line))
        }
        if let generic = GenericFlatSyslog.normalize(frame: frame, line: line, syslog: syslog, peer: peer) { return .flat(generic) }
        let fallback = PackResult(dataset: "syslog", fields: JSONObject(), parseFailure: false)
        return .document(finish(fallback, syslog: syslog, message: line))
    }

    /// The line as flat fields (`FlatFields`): the document `normalize(line:)` and the syslog
    /// decoder make for it, without building it. The flat paths are a PAN-OS TRAFFIC line
    /// (`PANOSFlatTraffic`), an sshd login (`SSHDFlatLogin`), a FortiGate traffic log
    /// (`FortiGateFlatTraffic`), a Cisco ASA connection message (`ASAFlatConnection`) and an
    /// F5 LTM message without fields (`F5FlatLTM`). Nil for any other line, and when this
    /// normalizer's packs would not take the line the same way (PAN-OS not first, the pack
    /// missing, an earlier pack taking it).
    ///
    /// - Parameters:
    ///   - frame: the line's bytes; `line` is their text.
    ///   - peer: the sender's address, set as `log.source.address`.
    public func normalizeFlat(frame: [UInt8], line: String, peer: String, receivedAt: EpochMillis) -> FlatNormalizedEvent? {
        guard frame.first == UInt8(ascii: "<") else { return nil }
        return normalizeFlat(frame: frame, line: line, syslog: syslogParser.parse(line, referenceTime: receivedAt), peer: peer, receivedAt: receivedAt)
    }

    /// `normalizeFlat` for a frame starting with `<`, its header already parsed.
    func normalizeFlat(frame: [UInt8], line: String, syslog: SyslogMessage, peer: String, receivedAt: EpochMillis) -> FlatNormalizedEvent? {
        func earlier(_ pack: Int) -> ArraySlice<any ProtocolPack> { packs[..<pack] }
        if line.containsBytes(",TRAFFIC,") {
            guard flatPacks.panosFirst else { return nil }
            return PANOSFlatTraffic.normalize(frame: frame, syslog: syslog, peer: peer)
        }
        // Read from the parsed header, not searched for in the line: `" sshd["` matched at every
        // space of every other kind's line. `SSHDFlatLogin` asks for both anyway.
        if syslog.appName == "sshd", syslog.message.hasPrefix("Accepted ") || syslog.message.hasPrefix("Failed "),
           let linux = flatPacks.linux {
            return SSHDFlatLogin.normalize(frame: frame, line: line, syslog: syslog, peer: peer, receivedAt: receivedAt, earlierPacks: earlier(linux))
        }
        if line.containsBytes("%ASA-"), line.containsBytes("-30201"), let asa = flatPacks.asa {
            return ASAFlatConnection.normalize(frame: frame, line: line, syslog: syslog, peer: peer, receivedAt: receivedAt, earlierPacks: earlier(asa))
        }
        if line.containsBytes("devid="), line.containsBytes("traffic"), let fortinet = flatPacks.fortinet {
            return FortiGateFlatTraffic.normalize(frame: frame, line: line, syslog: syslog, peer: peer, receivedAt: receivedAt, earlierPacks: earlier(fortinet))
        }
        if let app = syslog.appName, F5BigIPPack.tags.contains(app), let f5 = flatPacks.f5 {
            return F5FlatLTM.normalize(frame: frame, line: line, syslog: syslog, peer: peer, receivedAt: receivedAt, earlierPacks: earlier(f5))
        }
        return nil
    }

    /// Normalizes a JSON document (Winlogbeat, evtx JSON, PAN-OS JSON, Zeek NDJSON, a Splunk
    /// export wrapper). Returns nil when no pack recognises it: store the document as it is.
    public func normalize(document: JSONObject, receivedAt: EpochMillis) -> NormalizedEvent? {
        // Splunk search export: {"result": {"_raw": "...", "host": "..."}}.
        if let result = document["result"]?.objectValue, let raw = result["_raw"]?.stringValue {
            var event = normalize(line: raw, receivedAt: receivedAt)
            if event.dataset == "syslog" || event.dataset == "json" { return nil }
            if let host = result["host"]?.stringValue { FieldNesting.set(.string(host), at: "host.name", in: &event.fields) }
            return event
        }
        let input = PackInput(line: "", syslog: SyslogMessage(), body: "", document: document, receivedAt: receivedAt)
        for pack in packs {
            guard let result = pack.normalize(input) else { continue }
            var event = finish(result, syslog: SyslogMessage(), message: nil)
            if event.fields["message"] == nil, let message = document["message"] {
                event.fields["message"] = message
            }
            return event
        }
        return nil
    }

    private func finish(_ result: consuming PackResult, syslog: SyslogMessage, message: String?) -> NormalizedEvent {
        var fields = syslog.ecsFields
        // A result built on its document (which has no syslog header) is the document already.
        let buildsOnDocument = result.buildsOnDocument && fields.isEmpty
        // Taken out of the result, not shared with it: `event`, which the dataset is set into
        // below, would be copied first if the result still held it.
        var packFields = JSONObject()
        swap(&packFields, &result.fields)
        if buildsOnDocument { fields = consume packFields } else { FieldNesting.merge(consume packFields, into: &fields) }
        if let message { fields["message"] = .string(message) }
        FieldNesting.set(.string(result.dataset), at: "event.dataset", in: &fields)
        let timestamp = result.timestamp ?? syslog.timestamp
        let fromPack = result.timestamp != nil
        return NormalizedEvent(
            fields: fields, timestamp: timestamp, dataset: result.dataset, parseFailure: result.parseFailure,
            timestampHasYear: fromPack ? true : syslog.timestampHasYear,
            timestampHasZone: fromPack ? result.timestampHasZone : syslog.timestampHasZone,
            buildsOnDocument: buildsOnDocument)
    }

}
