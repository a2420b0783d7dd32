import VigilCore

/// A line no pack takes, stored as generic `syslog`, as flat fields: its header's fields
/// (`SyslogMessage.ecsFields`), the line and the dataset, without a nested object.
///
/// The caller has run the packs (`Normalizer.normalize(frame:line:peer:receivedAt:)`). Nil for
/// a header with structured data (an object of the sender's own keys: the document way keeps it).
enum GenericFlatSyslog {
    static let schema = FlatSyslog.schema("syslog", paths: paths, literals: [.string("syslog")])

    static let paths = [
        "log.syslog.priority", "log.syslog.facility.code", "log.syslog.severity.code", "log.syslog.hostname", "log.syslog.appname",
        "log.syslog.procid", "log.syslog.msgid", "log.source.address",
        "host.hostname", "host.name",
        "process.name", "process.pid",
        "message",
        "event.dataset",
    ]

    struct Paths {
        let header: FlatSyslog.HeaderPaths
        let process: FlatSyslog.ProcessPaths
        let msgid, message, dataset: Int

        init(_ s: FlatSchema) {
            func p(_ name: String) -> Int { s.path(name)! }
            header = FlatSyslog.HeaderPaths(s)
            process = FlatSyslog.ProcessPaths(s)
            (msgid, message, dataset) = (p("log.syslog.msgid"), p("message"), p("event.dataset"))
        }
    }

    static let at = Paths(schema)

    static func normalize(frame: [UInt8], line: String, syslog: SyslogMessage, peer: String) -> FlatNormalizedEvent? {
        guard syslog.structuredData?.isEmpty ?? true else { return nil }
        // The line as the document holds it: the frame, or (not valid UTF-8) its repaired text.
        var fields = FlatFields(schema: schema, bytes: frame.contains { $0 >= 0x80 } ? Array(line.utf8) : frame)
        let lineBytes = 0..<fields.bytes.count
        FlatSyslog.setHeader(&fields, at.header, priority: syslog.priority, hostname: syslog.hostname, peer: peer)
        FlatSyslog.setProcess(&fields, at.process, appName: syslog.appName, procID: syslog.procID)
        if let msgID = syslog.msgID, !ECSBuilder.isPlaceholder(msgID) { fields.set(at.msgid, copying: msgID.utf8) }
        fields.set(at.message, text: lineBytes)
        fields.set(at.dataset, literal: 0)
        return FlatNormalizedEvent(fields: fields, timestamp: syslog.timestamp, dataset: "syslog", parseFailure: false)
    }
}
