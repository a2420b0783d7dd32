import VigilCore

/// Cisco ASA connection messages (302013–302016: a TCP or UDP connection built or torn down)
/// normalized into flat fields: the document `CiscoASAPack` (through `Normalizer` and the
/// syslog decoder) makes for them, without a `String` or a nested object per field.
///
/// It takes only lines whose document it makes exactly (`nil` for any other): ASCII, an RFC 3164
/// header with a priority and no tag, `%ASA-<level>-<id>:` as the body's first mnemonic, no
/// `message repeated`, and no pack before the ASA one taking the line.
struct ASAFlatConnection: Sendable {
    static let schema = FlatSyslog.schema("Cisco ASA", paths: paths, literals: literals)

    static let paths = [
        "log.syslog.priority", "log.syslog.facility.code", "log.syslog.severity.code", "log.syslog.hostname", "log.level", "log.source.address",
        "host.hostname", "host.name",
        "observer.vendor", "observer.product", "observer.type", "observer.hostname",
        "observer.ingress.interface.name", "observer.egress.interface.name",
        "event.code", "event.kind", "event.severity", "event.action", "event.outcome", "event.category", "event.type", "event.dataset",
        "cisco.asa.message", "cisco.asa.connection_id", "cisco.asa.duration",
        "network.transport", "network.direction", "network.bytes",
        "source.ip", "source.port",
        "destination.ip", "destination.port",
        "related.ip",
        "message",
    ]

    enum Literal: Int {
        case vendor, product, firewall, event, flowCreation, flowExpiration, success, network, start, end, tcp, udp, inbound, outbound, dataset
        /// `log.level` by severity, 0 to 7.
        case levels
    }

    static let literals: [JSONValue] = [
        .string("Cisco"), .string("asa"), .string("firewall"), .string("event"), .string("flow-creation"), .string("flow-expiration"),
        .string("success"), .array([.string("network")]),
        .array([.string("connection"), .string("start")]), .array([.string("connection"), .string("end")]),
        .string("tcp"), .string("udp"), .string("inbound"), .string("outbound"), .string("cisco.asa"),
    ] + CiscoASAPack.levels.map(JSONValue.string)

    /// Path positions, looked up once.
    struct Paths {
        let header: FlatSyslog.HeaderPaths
        let level, vendor, product, observerType, observerHostname, ingressInterface, egressInterface: Int
        let code, kind, severity, action, outcome, category, type, dataset: Int
        let asaMessage, connectionID, duration, transport, direction, bytes: Int
        let sourceIP, sourcePort, destinationIP, destinationPort, relatedIP, message: Int

        init(_ s: FlatSchema) {
            func p(_ name: String) -> Int { s.path(name)! }
            header = FlatSyslog.HeaderPaths(s)
            (level, vendor, product, observerType, observerHostname) = (p("log.level"), p("observer.vendor"), p("observer.product"), p("observer.type"), p("observer.hostname"))
            (ingressInterface, egressInterface) = (p("observer.ingress.interface.name"), p("observer.egress.interface.name"))
            (code, kind, severity, action, outcome, category, type, dataset) = (p("event.code"), p("event.kind"), p("event.severity"), p("event.action"), p("event.outcome"), p("event.category"), p("event.type"), p("event.dataset"))
            (asaMessage, connectionID, duration) = (p("cisco.asa.message"), p("cisco.asa.connection_id"), p("cisco.asa.duration"))
            (transport, direction, bytes) = (p("network.transport"), p("network.direction"), p("network.bytes"))
            (sourceIP, sourcePort, destinationIP, destinationPort) = (p("source.ip"), p("source.port"), p("destination.ip"), p("destination.port"))
            (relatedIP, message) = (p("related.ip"), p("message"))
        }
    }

    static let at = Paths(schema)

    /// - Parameters:
    ///   - frame: the syslog frame as received; `syslog`, its header as `SyslogParser` read it.
    ///   - earlierPacks: the packs a line meets before the ASA one: none may take it.
    static func normalize(frame: [UInt8], line: String, syslog: SyslogMessage, peer: String, receivedAt: EpochMillis,
                          earlierPacks: ArraySlice<any ProtocolPack>) -> FlatNormalizedEvent? {
        let body = syslog.message
        guard syslog.format == .rfc3164, let priority = syslog.priority, syslog.appName == nil, syslog.procID == nil,
              syslog.msgID == nil, syslog.structuredData == nil, !body.hasPrefix("{"), body.containsBytes("%ASA-"), body.containsBytes("-30201")
        else { return nil }
        guard FlatSyslog.noneTakes(earlierPacks, line: line, syslog: syslog, receivedAt: receivedAt) else { return nil }
        return FlatSyslog.withBody(frame, message: body) { b, body -> FlatNormalizedEvent? in
            var mapping = Mapping(frame: frame, b: b)
            guard let ok = mapping.map(body, priority: priority, hostname: syslog.hostname, peer: peer) else { return nil }
            return FlatNormalizedEvent(fields: mapping.fields, timestamp: syslog.timestamp, dataset: "cisco.asa", parseFailure: !ok)
        }
    }

    struct Mapping {
        var fields: FlatFields
        let b: UnsafeBufferPointer<UInt8>

        init(frame: [UInt8], b: UnsafeBufferPointer<UInt8>) {
            fields = FlatFields(schema: ASAFlatConnection.schema, bytes: frame)
            self.b = b
        }

        func isWhitespace(_ c: UInt8) -> Bool { c == 0x20 || (c >= 0x09 && c <= 0x0D) }

        /// Maps the message as `CiscoASAPack` does; nil when it is not one this path takes,
        /// else whether it had the shape its id expects (`parseFailure` when not).
        mutating func map(_ body: Range<Int>, priority: Int, hostname: String?, peer: String) -> Bool? {
            let at = ASAFlatConnection.at
            // `%ASA-6-302013: text` (the first of `%ASA-`, `%FTD-`, `%PIX-` is the pack's).
            guard let mnemonic = FlatSyslog.find("%ASA-", in: b, body) else { return nil }
            let after = (mnemonic + 5)..<body.upperBound
            guard let dash = b[after].firstIndex(of: UInt8(ascii: "-")), let colon = b[after].firstIndex(of: UInt8(ascii: ":")), dash < colon else { return nil }
            let id = (dash + 1)..<colon
            let built: Bool, tcp: Bool
            switch (FlatSyslog.equals(b, id, "302013"), FlatSyslog.equals(b, id, "302014"), FlatSyslog.equals(b, id, "302015"), FlatSyslog.equals(b, id, "302016")) {
            case (true, _, _, _): (built, tcp) = (true, true)
            case (_, true, _, _): (built, tcp) = (false, true)
            case (_, _, true, _): (built, tcp) = (true, false)
            case (_, _, _, true): (built, tcp) = (false, false)
            default: return nil
            }
            // The text after the colon, trimmed (`trimmedASCII`).
            var start = colon + 1, end = body.upperBound
            while start < end, isWhitespace(b[start]) { start += 1 }
            while end > start, isWhitespace(b[end - 1]) { end -= 1 }
            let rest = start..<end
            guard FlatSyslog.find("message repeated ", in: b, rest) != rest.lowerBound else { return nil }
            let words = Words(b, rest)

            FlatSyslog.setHeader(&fields, at.header, priority: priority, hostname: hostname, peer: peer)
            fields.set(at.vendor, literal: Literal.vendor.rawValue)
            fields.set(at.product, literal: Literal.product.rawValue)
            fields.set(at.observerType, literal: Literal.firewall.rawValue)
            if let host = fields.textRange(at.header.hostname) { fields.set(at.observerHostname, text: host) }
            text(at.code, id)
            fields.set(at.kind, literal: Literal.event.rawValue)
            if let severity = FlatSyslog.parseInt(b, after.lowerBound..<dash), severity >= 0, severity < 8 {
                fields.set(at.severity, int: severity)
                fields.set(at.level, literal: Literal.levels.rawValue + Int(severity))
            }
            text(at.asaMessage, rest)
            // `ASAMessage.apply` for 302013–302016.
            fields.set(at.action, literal: (built ? Literal.flowCreation : .flowExpiration).rawValue)
            fields.set(at.outcome, literal: Literal.success.rawValue)
            fields.set(at.category, literal: Literal.network.rawValue)
            fields.set(at.type, literal: (built ? Literal.start : .end).rawValue)
            fields.set(at.transport, literal: (tcp ? Literal.tcp : .udp).rawValue)
            let outbound = words.ranges.contains { FlatSyslog.equals(b, $0, "outbound") }
            if built { fields.set(at.direction, literal: (outbound ? Literal.outbound : .inbound).rawValue) }
            text(at.connectionID, words.word(after: "connection"))
            let first = ASAMessage.endpoint(b, words.word(after: "for")), second = ASAMessage.endpoint(b, words.word(after: "to"))
            let (source, destination) = outbound ? (second, first) : (first, second)
            if let source {
                fields.set(at.sourceIP, text: source.ip)
                int(at.sourcePort, source.port)
                text(at.ingressInterface, source.interface)
            }
            if let destination {
                fields.set(at.destinationIP, text: destination.ip)
                int(at.destinationPort, destination.port)
                text(at.egressInterface, destination.interface)
            }
            if !built {
                int(at.bytes, words.word(after: "bytes"))
                text(at.duration, words.word(after: "duration"))
            }
            FlatSyslog.setDistinct(&fields, at.relatedIP, [source?.ip, destination?.ip])
            fields.set(at.message, text: 0..<b.count)
            fields.set(at.dataset, literal: Literal.dataset.rawValue)
            return first != nil && second != nil
        }

        /// The text's words (`splitBytes(" ")`, empty ones left out), as `ASAMessage.words`.
        struct Words {
            let b: UnsafeBufferPointer<UInt8>
            let ranges: [Range<Int>]

            init(_ b: UnsafeBufferPointer<UInt8>, _ text: Range<Int>) {
                self.b = b
                var ranges: [Range<Int>] = []
                ranges.reserveCapacity(16)
                var start = text.lowerBound
                for i in text where b[i] == 0x20 {
                    if start < i { ranges.append(start..<i) }
                    start = i + 1
                }
                if start < text.upperBound { ranges.append(start..<text.upperBound) }
                self.ranges = ranges
            }

            /// `ASAMessage.word(after:)`: the word after the first that is `keyword`.
            func word(after keyword: StaticString) -> Range<Int>? {
                guard let i = ranges.firstIndex(where: { FlatSyslog.equals(b, $0, keyword) }) else { return nil }
                return i + 1 < ranges.count ? ranges[i + 1] : nil
            }
        }

        /// `ECSBuilder.set(_:string:)` on a range of the frame.
        mutating func text(_ path: Int, _ range: Range<Int>?) {
            if let range, !FlatSyslog.isPlaceholder(b, range) { fields.set(path, text: range) }
        }

        /// `ECSBuilder.set(_:int:)` on a range of the frame.
        mutating func int(_ path: Int, _ range: Range<Int>?) {
            if let range, let value = FlatSyslog.parseInt(b, range) { fields.set(path, int: value) }
        }
    }
}

extension ASAMessage {
    static func endpoint(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>?) -> (interface: Range<Int>?, ip: Range<Int>, port: Range<Int>?)? {
        range.flatMap { endpoint(bytes, $0) }
    }
}
