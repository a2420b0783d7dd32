import VigilCore

/// libFuzzer entry point: every parser must accept any bytes without trapping.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzParsing(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let line = String(decoding: bytes, as: UTF8.self)
    _ = SyslogParser().parse(bytes, referenceTime: 1_700_000_000_000)
    _ = Normalizer().normalize(line: line, receivedAt: 1_700_000_000_000)
    var reader = ZeekTSVReader()
    _ = reader.normalize(line: "#fields\tts\tuid\tid.orig_h\tanswers", receivedAt: 0)
    _ = reader.normalize(line: "#types\ttime\tstring\taddr\tvector[string]", receivedAt: 0)
    _ = reader.normalize(line: line, receivedAt: 0)
    // Documents (Winlogbeat, evtx JSON, PAN-OS JSON, Zeek NDJSON) as HTTP ingest sees them.
    if case .object(let document)? = try? JSONParser.parse(bytes) {
        _ = Normalizer().normalize(document: document, receivedAt: 1_700_000_000_000)
    }
    // The flat paths (PAN-OS TRAFFIC, sshd logins, FortiGate traffic, ASA connections, F5 LTM),
    // on the input as it is, as the columns of a TRAFFIC line, as the rest of an sshd login, as
    // pairs of a FortiGate traffic log, as the rest of an ASA connection message and as an F5
    // tmm message; and the input as the syslog decoder normalizes a frame.
    let spliced = "<14>Nov 24 10:00:00 fw 1,2026/11/24 10:00:00,0123,TRAFFIC," + line + String(repeating: ",0", count: 50)
    let login = "<38>Nov 24 10:00:00 h sshd[1]: Failed password for " + line
    let pairs = "<189>date=2026-11-24 time=10:00:00 devid=\"FG1\" type=\"traffic\" " + line
    let connection = "<166>Nov 24 10:00:00 asa-1 : %ASA-6-302013: Built outbound TCP connection " + line
    let ltm = "<134>Nov 24 10:00:00 bigip-1 tmm[1]: " + line
    _ = Normalizer().normalize(frame: bytes, line: line, peer: "192.0.2.1", receivedAt: 1_700_000_000_000)
    for text in [line, spliced, login, pairs, connection, ltm] {
        if let flat = Normalizer().normalizeFlat(frame: Array(text.utf8), line: text, peer: "192.0.2.1", receivedAt: 1_700_000_000_000) {
            _ = flat.fields.write()
            _ = flat.fields.object()
        }
    }
    // The TCP framer, with the input split where its first byte says.
    var framer = SyslogFramer(maxFrameBytes: 512)
    let cut = bytes.isEmpty ? 0 : Int(bytes[0]) % (bytes.count + 1)
    for output in framer.feed(bytes[..<cut]) + framer.feed(bytes[cut...]) + framer.finish() {
        if case .frame(let frame) = output, frame.count > 512 { fatalError("frame over the limit") }
    }
    return 0
}
