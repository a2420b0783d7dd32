import VigilCore

/// F5 BIG-IP LTM messages from `tmm` and the other LTM daemons that hold no fields the pack
/// reads (an iRule's `log` line, a message with an 8-hex code) normalized into flat fields: the
/// document `F5BigIPPack` (through `Normalizer` and the syslog decoder) makes for them, without
/// a `String` or a nested object per field.
///
/// It takes only lines whose document it makes exactly (`nil` for any other): ASCII, an RFC 3164
/// header whose tag is one of the pack's, no level word before it, no CR, and a message that
/// is not APM, not a pool status, has no `key=value` pair, and that no earlier pack takes.
struct F5FlatLTM: Sendable {
    static let schema = FlatSyslog.schema("F5 LTM", paths: paths, literals: literals)

    static let paths = FlatSyslog.taggedHeaderPaths + [
        "observer.vendor", "observer.product", "observer.type",
        "f5.bigip.product", "f5.bigip.message",
        "event.code", "event.severity", "event.category", "event.dataset",
        "message",
    ]

    enum Literal: Int {
        case vendor, product, loadbalancer, ltm, network, dataset
    }

    static let literals: [JSONValue] = [
        .string("F5"), .string("BIG-IP"), .string("loadbalancer"), .string("LTM"), .array([.string("network")]), .string("f5.bigip.ltm"),
    ]

    struct Paths {
        let header: FlatSyslog.HeaderPaths
        let process: FlatSyslog.ProcessPaths
        let vendor, product, observerType, f5Product, f5Message, code, severity, category, dataset, message: Int

        init(_ s: FlatSchema) {
            func p(_ name: String) -> Int { s.path(name)! }
            header = FlatSyslog.HeaderPaths(s)
            process = FlatSyslog.ProcessPaths(s)
            (vendor, product, observerType, f5Product, f5Message) = (p("observer.vendor"), p("observer.product"), p("observer.type"), p("f5.bigip.product"), p("f5.bigip.message"))
            (code, severity, category, dataset, message) = (p("event.code"), p("event.severity"), p("event.category"), p("event.dataset"), p("message"))
        }
    }

    static let at = Paths(schema)

    /// - Parameters:
    ///   - frame: the syslog frame as received; `syslog`, its header as `SyslogParser` read it.
    ///   - earlierPacks: the packs a line meets before F5's: none may take it.
    static func normalize(frame: [UInt8], line: String, syslog: SyslogMessage, peer: String, receivedAt: EpochMillis,
                          earlierPacks: ArraySlice<any ProtocolPack>) -> FlatNormalizedEvent? {
        let body = syslog.message
        guard syslog.format == .rfc3164, let priority = syslog.priority, let tag = syslog.appName, tag != "apmd", F5BigIPPack.tags.contains(tag),
              syslog.msgID == nil, syslog.structuredData == nil, !body.hasPrefix("{"), !body.hasPrefix(" "), !body.containsBytes("\r"),
              !body.containsBytes("CEF:"), !body.containsBytes("unit_hostname="), !body.containsBytes("management_ip_address="), !body.hasPrefix("ASM:"),
              !F5BigIPPack.levels.contains(String(body.prefix { $0 != " " }))
        else { return nil }
        guard FlatSyslog.noneTakes(earlierPacks, line: line, syslog: syslog, receivedAt: receivedAt) else { return nil }
        return FlatSyslog.withBody(frame, message: body) { b, body -> FlatNormalizedEvent? in
            var fields = FlatFields(schema: schema, bytes: frame)
            // `F5BigIPPack.module`: an 8-hex code and a severity before the message.
            var message = body
            var code: Range<Int>?, severity: Range<Int>?
            let head = body.lowerBound..<(b[body].firstIndex(of: UInt8(ascii: ":")) ?? body.upperBound)
            if head.count == 8, b[head].allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x66) }) {
                code = head
                message = min(body.lowerBound + 9, body.upperBound)..<body.upperBound
                if let colon = b[message].firstIndex(of: UInt8(ascii: ":")) {
                    severity = message.lowerBound..<colon
                    var start = colon + 1
                    while start < message.upperBound, b[start] == 0x20 { start += 1 }
                    message = start..<message.upperBound
                }
            }
            // APM (`0149…`), pool status and request logs with pairs are left to the pack.
            if let code, b[code].starts(with: "0149".utf8) { return nil }
            if b[message].starts(with: "Pool ".utf8) { return nil }
            var pairs = KeyValueParser.Scanner(b, message)
            guard pairs.next() == nil else { return nil }
            let at = F5FlatLTM.at
            FlatSyslog.setHeader(&fields, at.header, priority: priority, hostname: syslog.hostname, peer: peer)
            FlatSyslog.setProcess(&fields, at.process, appName: tag, procID: syslog.procID)
            fields.set(at.vendor, literal: Literal.vendor.rawValue)
            fields.set(at.product, literal: Literal.product.rawValue)
            fields.set(at.observerType, literal: Literal.loadbalancer.rawValue)
            fields.set(at.f5Product, literal: Literal.ltm.rawValue)
            if let severity, let value = FlatSyslog.parseInt(b, severity) { fields.set(at.severity, int: value) }
            if let code, !FlatSyslog.isPlaceholder(b, code) { fields.set(at.code, text: code) }
            if !FlatSyslog.isPlaceholder(b, message) { fields.set(at.f5Message, text: message) }
            fields.set(at.category, literal: Literal.network.rawValue)
            fields.set(at.message, text: 0..<b.count)
            fields.set(at.dataset, literal: Literal.dataset.rawValue)
            return FlatNormalizedEvent(fields: fields, timestamp: syslog.timestamp, dataset: "f5.bigip.ltm", parseFailure: false)
        }
    }
}
