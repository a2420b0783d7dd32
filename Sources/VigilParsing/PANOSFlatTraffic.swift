import VigilCore

/// An event normalized into flat fields (`FlatFields`) instead of a nested document.
public struct FlatNormalizedEvent: Sendable {
    public var fields: FlatFields
    public var timestamp: EpochMillis?
    public var dataset: String
    public var parseFailure: Bool
}

/// PAN-OS TRAFFIC logs as syslog CSV behind an RFC 3164 header, normalized into flat fields:
/// the document `PANOSPack` (through `Normalizer` and the syslog decoder) makes for them,
/// without a `String` or a nested object per field.
///
/// It takes only lines whose document it makes exactly (`nil` for any other, which go the
/// way every line goes): ASCII, a plain `<PRI>Mmm dd hh:mm:ss host ` header, a body with no
/// quote, no `CEF:` or `LEEF:`, and every TRAFFIC column. Member order may differ where a
/// field is missing (an invalid `src` moves `source` after `destination` in the pack's document).
struct PANOSFlatTraffic: Sendable {
    static let schema = FlatSyslog.schema("PAN-OS", paths: paths, literals: literals)

    static let paths = [
        "log.syslog.priority", "log.syslog.facility.code", "log.syslog.severity.code", "log.syslog.hostname", "log.source.address",
        "host.hostname", "host.name",
        "observer.vendor", "observer.product", "observer.type", "observer.serial_number",
        "observer.ingress.zone", "observer.ingress.interface.name", "observer.egress.zone", "observer.egress.interface.name", "observer.hostname",
        "panw.panos.type", "panw.panos.sub_type", "panw.panos.vsys", "panw.panos.sessionid", "panw.panos.action", "panw.panos.seqno",
        "panw.panos.actionflags", "panw.panos.category", "panw.panos.session_end_reason", "panw.panos.logset", "panw.panos.repeat_count",
        "source.ip", "source.port", "source.nat.ip", "source.nat.port", "source.user.name", "source.bytes", "source.packets",
        "destination.ip", "destination.port", "destination.nat.ip", "destination.nat.port", "destination.user.name", "destination.bytes", "destination.packets",
        "rule.name", "user.name",
        "network.application", "network.transport", "network.bytes", "network.packets",
        "event.kind", "event.category", "event.action", "event.type", "event.outcome", "event.duration", "event.dataset",
        "related.user", "related.ip",
        "message",
    ]

    enum Literal: Int {
        case vendor, product, firewall, traffic, event, network, success, failure, dataset
        case flowStarted, flowTerminated, flowDropped, flowDenied
        /// `event.type`: allowed, then denied, each without a phase, with start, with end.
        case types
    }

    static let literals: [JSONValue] = [
        .string("Palo Alto Networks"), .string("PAN-OS"), .string("firewall"), .string("TRAFFIC"), .string("event"),
        .array([.string("network")]), .string("success"), .string("failure"), .string("panos.traffic"),
        .string("flow_started"), .string("flow_terminated"), .string("flow_dropped"), .string("flow_denied"),
    ] + ["allowed", "denied"].flatMap { verdict in
        [[], ["start"], ["end"]].map { phase in JSONValue.array(([verdict, "connection"] + phase).map { .string($0) }) }
    }

    /// Path positions, looked up once.
    struct Paths {
        let header: FlatSyslog.HeaderPaths
        let vendor, product, observerType, serial, ingressZone, ingressInterface, egressZone, egressInterface, observerHostname: Int
        let panosType, subType, repeatCount: Int
        let sourceIP, sourcePort, sourceNATIP, sourceNATPort, sourceUser, sourceBytes, sourcePackets: Int
        let destinationIP, destinationPort, destinationNATIP, destinationNATPort, destinationUser, destinationBytes, destinationPackets: Int
        let ruleName, userName, application, transport, networkBytes, networkPackets: Int
        let kind, category, action, type, outcome, duration, dataset, relatedUser, relatedIP, message: Int
        /// (CSV column, path) of the vendor fields kept as they are.
        let vendorColumns: [(column: Int, path: Int)]

        init(_ s: FlatSchema) {
            func p(_ name: String) -> Int { s.path(name)! }
            header = FlatSyslog.HeaderPaths(s)
            (vendor, product, observerType, serial) = (p("observer.vendor"), p("observer.product"), p("observer.type"), p("observer.serial_number"))
            (ingressZone, ingressInterface, egressZone, egressInterface, observerHostname) = (p("observer.ingress.zone"), p("observer.ingress.interface.name"), p("observer.egress.zone"), p("observer.egress.interface.name"), p("observer.hostname"))
            (panosType, subType, repeatCount) = (p("panw.panos.type"), p("panw.panos.sub_type"), p("panw.panos.repeat_count"))
            (sourceIP, sourcePort, sourceNATIP, sourceNATPort, sourceUser, sourceBytes, sourcePackets) = (p("source.ip"), p("source.port"), p("source.nat.ip"), p("source.nat.port"), p("source.user.name"), p("source.bytes"), p("source.packets"))
            (destinationIP, destinationPort, destinationNATIP, destinationNATPort, destinationUser, destinationBytes, destinationPackets) = (p("destination.ip"), p("destination.port"), p("destination.nat.ip"), p("destination.nat.port"), p("destination.user.name"), p("destination.bytes"), p("destination.packets"))
            (ruleName, userName, application, transport, networkBytes, networkPackets) = (p("rule.name"), p("user.name"), p("network.application"), p("network.transport"), p("network.bytes"), p("network.packets"))
            (kind, category, action, type, outcome, duration, dataset) = (p("event.kind"), p("event.category"), p("event.action"), p("event.type"), p("event.outcome"), p("event.duration"), p("event.dataset"))
            (relatedUser, relatedIP, message) = (p("related.user"), p("related.ip"), p("message"))
            // `PANOSPack.vendorFields` that TRAFFIC has, in that order.
            vendorColumns = [(15, "vsys"), (22, "sessionid"), (30, "action"), (39, "seqno"), (40, "actionflags"), (37, "category"),
                             (46, "session_end_reason"), (20, "logset")].map { ($0.0, p("panw.panos.\($0.1)")) }
        }
    }

    static let at = Paths(schema)

    /// The TRAFFIC columns (`PANOSPack.layouts["TRAFFIC"]`) the mapping reads.
    enum Column {
        static let receiveTime = 1, serial = 2, type = 3, subtype = 4, timeGenerated = 6, src = 7, dst = 8, natsrc = 9, natdst = 10
        static let rule = 11, srcuser = 12, dstuser = 13, app = 14, from = 16, to = 17, inboundIf = 18, outboundIf = 19
        static let repeatcnt = 23, sport = 24, dport = 25, natsport = 26, natdport = 27, proto = 29, action = 30
        static let bytes = 31, bytesSent = 32, bytesReceived = 33, packets = 34, elapsed = 36, pktsSent = 44, pktsReceived = 45
        static let count = 47
    }

    /// - Parameters:
    ///   - frame: the syslog frame as received.
    ///   - syslog: its header as `SyslogParser` read it from the frame's text.
    ///   - peer: the sender's address (`log.source.address`).
    static func normalize(frame: [UInt8], syslog: SyslogMessage, peer: String) -> FlatNormalizedEvent? {
        guard syslog.format == .rfc3164, let priority = syslog.priority, let hostname = syslog.hostname,
              syslog.appName == nil, syslog.procID == nil, syslog.msgID == nil, syslog.structuredData == nil,
              !ECSBuilder.isPlaceholder(hostname), !syslog.message.containsBytes("\""),
              !syslog.message.containsBytes("CEF:"), !syslog.message.containsBytes("LEEF:")
        else { return nil }
        return FlatSyslog.withBody(frame, message: syslog.message) { b, body -> FlatNormalizedEvent? in
            var mapping = Mapping(frame: frame, b: b, bodyStart: body.lowerBound, end: body.upperBound)
            guard mapping.columns.count >= Column.count, mapping.equals(Column.type, "TRAFFIC") else { return nil }
            mapping.map(priority: priority, hostname: hostname, peer: peer)
            let timestamp = mapping.time(Column.timeGenerated) ?? mapping.time(Column.receiveTime)
            return FlatNormalizedEvent(fields: mapping.fields, timestamp: timestamp ?? syslog.timestamp, dataset: "panos.traffic", parseFailure: false)
        }
    }

    /// A line's columns, mapped into its fields (a struct of its own: helpers as nested
    /// functions capturing the fields made every change to them a checked, boxed access).
    struct Mapping {
        var fields: FlatFields
        let b: UnsafeBufferPointer<UInt8>
        var columns: [Range<Int>] = []

        /// `<digits>,` first (at most four bytes before the comma), then the CSV columns;
        /// none when the body does not start so.
        init(frame: [UInt8], b: UnsafeBufferPointer<UInt8>, bodyStart: Int, end: Int) {
            fields = FlatFields(schema: PANOSFlatTraffic.schema, bytes: frame)
            self.b = b
            var digits = 0
            var position = bodyStart
            while position < end, b[position] >= 0x30, b[position] <= 0x39 { position += 1; digits += 1 }
            guard digits > 0, digits <= 4, position < end, b[position] == UInt8(ascii: ",") else { return }
            columns.reserveCapacity(72)
            var start = bodyStart
            for i in bodyStart..<end where b[i] == UInt8(ascii: ",") {
                columns.append(start..<i)
                start = i + 1
            }
            columns.append(start..<end)
        }

        func equals(_ column: Int, _ text: StaticString) -> Bool {
            FlatSyslog.equals(b, columns[column], text)
        }

        func isPlaceholder(_ range: Range<Int>) -> Bool { FlatSyslog.isPlaceholder(b, range) }

        mutating func text(_ path: Int, _ column: Int) {
            if !isPlaceholder(columns[column]) { fields.set(path, text: columns[column]) }
        }

        mutating func int(_ path: Int, _ column: Int) {
            if let value = FlatSyslog.parseInt(b, columns[column]) { fields.set(path, int: value) }
        }

        /// Sets an address (`ECSBuilder.normalizedIP`: an IPv4 or IPv6 literal, as it is).
        mutating func ip(_ path: Int, _ column: Int) {
            if FlatSyslog.isIP(b, columns[column]) { fields.set(path, text: columns[column]) }
        }

        /// The column's text lower-cased.
        func lowered(_ column: Int) -> [UInt8] { FlatSyslog.lowercased(b[columns[column]]) }

        /// Sets the column's text lower-cased (copied only when it has capitals), unless a placeholder.
        mutating func setLowered(_ path: Int, _ column: Int, _ low: [UInt8]) {
            guard !low.withUnsafeBufferPointer({ ECSBuilder.isPlaceholder(utf8: $0) }) else { return }
            if low.elementsEqual(b[columns[column]]) { fields.set(path, text: columns[column]) } else { fields.set(path, copying: low) }
        }

        func time(_ column: Int) -> EpochMillis? {
            PANOSPack.time(String(decoding: UnsafeBufferPointer(rebasing: b[columns[column]]), as: UTF8.self))?.0
        }

        /// `SyslogMessage.ecsFields`, `PANOSPack.map` for TRAFFIC, `Normalizer.finish` and the
        /// syslog decoder's sender address, in the document's order.
        mutating func map(priority: Int, hostname: String, peer: String) {
            let at = PANOSFlatTraffic.at
            let host = FlatSyslog.setHeader(&fields, at.header, priority: priority, hostname: hostname, peer: peer)!
            fields.set(at.vendor, literal: Literal.vendor.rawValue)
            fields.set(at.product, literal: Literal.product.rawValue)
            fields.set(at.observerType, literal: Literal.firewall.rawValue)
            text(at.serial, Column.serial)
            fields.set(at.panosType, literal: Literal.traffic.rawValue)
            let subtype = lowered(Column.subtype)
            setLowered(at.subType, Column.subtype, subtype)
            ip(at.sourceIP, Column.src)
            ip(at.destinationIP, Column.dst)
            int(at.sourcePort, Column.sport)
            int(at.destinationPort, Column.dport)
            if !equals(Column.natsrc, "0.0.0.0") { ip(at.sourceNATIP, Column.natsrc) }
            if !equals(Column.natdst, "0.0.0.0") { ip(at.destinationNATIP, Column.natdst) }
            if !equals(Column.natsport, "0") { int(at.sourceNATPort, Column.natsport) }
            if !equals(Column.natdport, "0") { int(at.destinationNATPort, Column.natdport) }
            text(at.ruleName, Column.rule)
            text(at.sourceUser, Column.srcuser)
            text(at.destinationUser, Column.dstuser)
            text(at.userName, Column.srcuser)
            text(at.application, Column.app)
            setLowered(at.transport, Column.proto, lowered(Column.proto))
            text(at.ingressZone, Column.from)
            text(at.egressZone, Column.to)
            text(at.ingressInterface, Column.inboundIf)
            text(at.egressInterface, Column.outboundIf)
            for (column, path) in at.vendorColumns { text(path, column) }
            int(at.repeatCount, Column.repeatcnt)
            let action = lowered(Column.action)
            let allowed = action.isEmpty || action.elementsEqual("allow".utf8) || action.elementsEqual("alert".utf8) || action.elementsEqual("continue".utf8)
            fields.set(at.kind, literal: Literal.event.rawValue)
            fields.set(at.category, literal: Literal.network.rawValue)
            let flowAction: Literal? = switch String(decoding: subtype, as: UTF8.self) {
            case "start": .flowStarted
            case "end": .flowTerminated
            case "drop": .flowDropped
            case "deny": .flowDenied
            default: nil
            }
            if let flowAction {
                fields.set(at.action, literal: flowAction.rawValue)
            } else {
                setLowered(at.action, Column.subtype, subtype)
            }
            let phase = subtype.elementsEqual("start".utf8) ? 1 : subtype.elementsEqual("end".utf8) ? 2 : 0
            fields.set(at.type, literal: Literal.types.rawValue + (allowed ? 0 : 3) + phase)
            fields.set(at.outcome, literal: (allowed ? Literal.success : .failure).rawValue)
            int(at.networkBytes, Column.bytes)
            int(at.sourceBytes, Column.bytesSent)
            int(at.destinationBytes, Column.bytesReceived)
            int(at.networkPackets, Column.packets)
            int(at.sourcePackets, Column.pktsSent)
            int(at.destinationPackets, Column.pktsReceived)
            if let elapsed = FlatSyslog.parseInt(b, columns[Column.elapsed]) { fields.set(at.duration, int: elapsed &* 1_000_000_000) }
            FlatSyslog.setDistinct(&fields, at.relatedUser, [fields.textRange(at.userName)])
            FlatSyslog.setDistinct(&fields, at.relatedIP, [fields.textRange(at.sourceIP), fields.textRange(at.destinationIP), fields.textRange(at.sourceNATIP)])
            fields.set(at.observerHostname, text: host)
            fields.set(at.message, text: 0..<b.count)
            fields.set(at.dataset, literal: Literal.dataset.rawValue)
        }
    }
}
