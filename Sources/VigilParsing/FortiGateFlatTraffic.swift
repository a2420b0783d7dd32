#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import VigilCore

/// FortiGate traffic logs (`key=value` syslog, `type="traffic"`) normalized into flat fields:
/// the document `FortiGatePack` (through `Normalizer` and the syslog decoder) makes for them,
/// without a `String` or a nested object per field. The keys the pack does not map stay under
/// `fortinet.firewall`, sorted, as one object of the line's own keys.
///
/// It takes only lines whose document it makes exactly (`nil` for any other): ASCII, an RFC 3164
/// header with a priority and no tag, a body that is not JSON or CEF, no key with a dot (the
/// pack would nest it), and no pack before FortiGate's taking the line.
struct FortiGateFlatTraffic: Sendable {
    typealias Field = FortiGatePack.Field
    typealias Pair = KeyValueParser.Pair

    static let schema = FlatSyslog.schema("FortiGate", paths: paths, literals: literals)

    static let paths = [
        "log.syslog.priority", "log.syslog.facility.code", "log.syslog.severity.code", "log.syslog.hostname", "log.level", "log.source.address",
        "host.hostname", "host.name",
        "observer.vendor", "observer.product", "observer.type", "observer.name", "observer.serial_number",
        "observer.ingress.interface.name", "observer.egress.interface.name",
        "event.code", "event.reason", "event.duration", "event.action", "event.category", "event.type", "event.outcome", "event.dataset",
        "rule.description", "rule.id",
        "source.ip", "source.port", "source.mac", "source.bytes", "source.packets",
        "destination.ip", "destination.port", "destination.mac", "destination.bytes", "destination.packets",
        "network.transport", "network.protocol",
        "user.name",
        "fortinet.firewall",
        "related.ip",
        "message",
    ]

    enum Literal: Int {
        case vendor, product, firewall, network, denied, start, end, success, failure, dataset, tcp, udp, icmp, ipv6ICMP
    }

    static let literals: [JSONValue] = [
        .string("Fortinet"), .string("Fortigate"), .string("firewall"), .array([.string("network")]),
    ] + ["denied", "start", "end"].map { JSONValue.array([.string("connection"), .string($0)]) } + [
        .string("success"), .string("failure"), .string("fortinet.firewall"),
        .string("tcp"), .string("udp"), .string("icmp"), .string("ipv6-icmp"),
    ]

    /// Path positions, looked up once.
    struct Paths {
        let header: FlatSyslog.HeaderPaths
        let level, vendor, product, observerType, observerName, serial, ingressInterface, egressInterface: Int
        let code, reason, duration, action, category, type, outcome, dataset, ruleDescription, ruleID: Int
        let sourceIP, sourcePort, sourceMAC, sourceBytes, sourcePackets: Int
        let destinationIP, destinationPort, destinationMAC, destinationBytes, destinationPackets: Int
        let transport, networkProtocol, userName, vendorFields, relatedIP, message: Int

        init(_ s: FlatSchema) {
            func p(_ name: String) -> Int { s.path(name)! }
            header = FlatSyslog.HeaderPaths(s)
            (level, vendor, product, observerType, observerName, serial) = (p("log.level"), p("observer.vendor"), p("observer.product"), p("observer.type"), p("observer.name"), p("observer.serial_number"))
            (ingressInterface, egressInterface) = (p("observer.ingress.interface.name"), p("observer.egress.interface.name"))
            (code, reason, duration, action, category, type, outcome, dataset) = (p("event.code"), p("event.reason"), p("event.duration"), p("event.action"), p("event.category"), p("event.type"), p("event.outcome"), p("event.dataset"))
            (ruleDescription, ruleID) = (p("rule.description"), p("rule.id"))
            (sourceIP, sourcePort, sourceMAC, sourceBytes, sourcePackets) = (p("source.ip"), p("source.port"), p("source.mac"), p("source.bytes"), p("source.packets"))
            (destinationIP, destinationPort, destinationMAC, destinationBytes, destinationPackets) = (p("destination.ip"), p("destination.port"), p("destination.mac"), p("destination.bytes"), p("destination.packets"))
            (transport, networkProtocol, userName, vendorFields, relatedIP, message) = (p("network.transport"), p("network.protocol"), p("user.name"), p("fortinet.firewall"), p("related.ip"), p("message"))
        }
    }

    static let at = Paths(schema)

    /// The pack's keys by their length, for looking a key up by its bytes.
    static let fieldsByLength: [[(name: [UInt8], field: Field)]] = {
        var table = [[(name: [UInt8], field: Field)]](repeating: [], count: 17)
        for field in Field.allCases {
            let name = Array(String(describing: field).utf8)
            table[name.count].append((name, field))
        }
        return table
    }()

    /// `FortiGatePack.actionByLogID` as bytes.
    static let actionsByLogID: [(logID: [UInt8], action: [UInt8])] = FortiGatePack.actionByLogID.map { (Array($0.key.utf8), Array($0.value.utf8)) }

    /// `CEFRecord.transport`'s protocol numbers.
    static let transports: [(number: [UInt8], literal: Literal)] = [("6", Literal.tcp), ("17", .udp), ("1", .icmp), ("58", .ipv6ICMP)].map { (Array($0.0.utf8), $0.1) }

    /// `FortiGatePack`'s verdicts that make a traffic log a denied connection.
    static let deniedActions: [[UInt8]] = ["deny", "block", "blocked", "dropped", "server-rst", "client-rst"].map { Array($0.utf8) }

    /// - Parameters:
    ///   - frame: the syslog frame as received; `syslog`, its header as `SyslogParser` read it.
    ///   - earlierPacks: the packs a line meets before FortiGate's: none may take it.
    static func normalize(frame: [UInt8], line: String, syslog: SyslogMessage, peer: String, receivedAt: EpochMillis,
                          earlierPacks: ArraySlice<any ProtocolPack>) -> FlatNormalizedEvent? {
        let body = syslog.message
        guard syslog.format == .rfc3164, let priority = syslog.priority, syslog.appName == nil, syslog.procID == nil,
              syslog.msgID == nil, syslog.structuredData == nil,
              !body.hasPrefix("{"), !body.containsBytes("CEF:"),
              body.containsBytes("devid="), body.containsBytes("type="), body.containsBytes("logid=") || body.containsBytes("date=")
        else { return nil }
        guard FlatSyslog.noneTakes(earlierPacks, line: line, syslog: syslog, receivedAt: receivedAt) else { return nil }
        return FlatSyslog.withBody(frame, message: body) { b, body -> FlatNormalizedEvent? in
            var mapping = Mapping(frame: frame, b: b)
            guard mapping.read(body) else { return nil }
            let timestamp = mapping.map(priority: priority, hostname: syslog.hostname, peer: peer)
            return FlatNormalizedEvent(fields: mapping.fields, timestamp: timestamp ?? syslog.timestamp, dataset: "fortinet.firewall", parseFailure: false)
        }
    }

    struct Mapping {
        var fields: FlatFields
        let b: UnsafeBufferPointer<UInt8>
        /// By `Field`: the last pair of that key (`FortiGatePack.Record`).
        var slots: [Pair?]
        /// The pairs whose keys the pack does not map, in line order.
        var unmapped: [Pair] = []

        init(frame: [UInt8], b: UnsafeBufferPointer<UInt8>) {
            fields = FlatFields(schema: FortiGateFlatTraffic.schema, bytes: frame)
            self.b = b
            slots = [Pair?](repeating: nil, count: Field.allCases.count)
            unmapped.reserveCapacity(8)
        }

        func field(_ key: Range<Int>) -> Field? {
            guard key.count < FortiGateFlatTraffic.fieldsByLength.count else { return nil }
            for candidate in FortiGateFlatTraffic.fieldsByLength[key.count]
            where candidate.name.withUnsafeBufferPointer({ memcmp($0.baseAddress!, b.baseAddress! + key.lowerBound, key.count) == 0 }) {
                return candidate.field
            }
            return nil
        }

        /// Reads the body's pairs; false when the flat path cannot make the pack's document:
        /// no `devid`, a type other than `traffic`, or a key the pack would nest.
        mutating func read(_ body: Range<Int>) -> Bool {
            var scanner = KeyValueParser.Scanner(b, body)
            while let pair = scanner.next() {
                let field = field(pair.key)
                if let field { slots[field.rawValue] = pair }
                guard field.map({ !Field.isMapped[$0.rawValue] }) ?? true else { continue }
                if b[pair.key].contains(UInt8(ascii: ".")) { return false }
                unmapped.append(pair)
            }
            guard slots[Field.devid.rawValue] != nil, let type = slots[Field.type.rawValue], !type.escaped,
                  FlatSyslog.equals(b, type.value, "traffic")
            else { return false }
            return true
        }

        func pair(_ field: Field) -> Pair? { slots[field.rawValue] }

        /// The value's bytes as the pack's string holds them (unescaped).
        func bytes(_ pair: Pair) -> [UInt8] { pair.escaped ? KeyValueParser.unescaped(b, pair.value) : Array(b[pair.value]) }

        func string(_ pair: Pair?) -> String? { pair.map { String(decoding: bytes($0), as: UTF8.self) } }

        /// The value's range in `fields.bytes`; nil for a placeholder (`ECSBuilder.set(_:string:)`).
        /// An escaped value holds a quote or a backslash, so it is never a placeholder.
        mutating func text(_ pair: Pair?) -> Range<Int>? {
            guard let pair else { return nil }
            if pair.escaped { return fields.append(KeyValueParser.unescaped(b, pair.value)) }
            return FlatSyslog.isPlaceholder(b, pair.value) ? nil : pair.value
        }

        mutating func setText(_ path: Int, _ field: Field) {
            if let range = text(pair(field)) { fields.set(path, text: range) }
        }

        /// `ECSBuilder.set(_:int:)` (an escaped value is never a number).
        mutating func setInt(_ path: Int, _ pair: Pair?) {
            if let pair, !pair.escaped, let value = FlatSyslog.parseInt(b, pair.value) { fields.set(path, int: value) }
        }

        /// `ECSBuilder.set(_:ip:)` (an escaped value is never an address).
        mutating func setIP(_ path: Int, _ pair: Pair?) {
            guard let pair, !pair.escaped, FlatSyslog.isIP(b, pair.value) else { return }
            fields.set(path, text: pair.value)
        }

        /// Sets `text` unless it is a placeholder.
        mutating func setCopy(_ path: Int, _ text: [UInt8]) {
            guard !text.withUnsafeBufferPointer(ECSBuilder.isPlaceholder(utf8:)) else { return }
            fields.set(path, copying: text)
        }

        /// Maps the fields as `FortiGatePack` does for a traffic log; returns its time.
        mutating func map(priority: Int, hostname: String?, peer: String) -> EpochMillis? {
            let at = FortiGateFlatTraffic.at
            FlatSyslog.setHeader(&fields, at.header, priority: priority, hostname: hostname, peer: peer)
            fields.set(at.vendor, literal: Literal.vendor.rawValue)
            fields.set(at.product, literal: Literal.product.rawValue)
            fields.set(at.observerType, literal: Literal.firewall.rawValue)
            setText(at.observerName, .devname)
            setText(at.serial, .devid)
            setText(at.code, .logid)
            setText(at.level, .level)
            setText(at.ruleDescription, .logdesc)
            setText(at.ruleID, .policyid)
            setText(at.reason, .msg)
            setIP(at.sourceIP, pair(.srcip) ?? pair(.remip))
            setIP(at.destinationIP, pair(.dstip) ?? pair(.locip))
            setInt(at.sourcePort, pair(.srcport) ?? pair(.remport))
            setInt(at.destinationPort, pair(.dstport) ?? pair(.locport))
            setText(at.sourceMAC, .srcmac)
            setText(at.destinationMAC, .dstmac)
            setText(at.ingressInterface, .srcintf)
            setText(at.egressInterface, .dstintf)
            setInt(at.sourceBytes, pair(.sentbyte))
            setInt(at.destinationBytes, pair(.rcvdbyte))
            setInt(at.sourcePackets, pair(.sentpkt))
            setInt(at.destinationPackets, pair(.rcvdpkt))
            if let proto = pair(.proto).map(bytes).map(FlatSyslog.lowercased) {
                // `CEFRecord.transport`: the protocol number's name, or the text lower-cased.
                if let named = FortiGateFlatTraffic.transports.first(where: { $0.number == proto }) {
                    fields.set(at.transport, literal: named.literal.rawValue)
                } else {
                    setCopy(at.transport, proto)
                }
            }
            if let service = pair(.service) { setCopy(at.networkProtocol, FlatSyslog.lowercased(bytes(service))) }
            if let duration = pair(.duration), !duration.escaped, let seconds = FlatSyslog.parseInt(b, duration.value) {
                fields.set(at.duration, int: seconds &* 1_000_000_000)
            }
            let action = pair(.action).map(bytes)
            if let logID = pair(.logid).map(bytes), let named = FortiGateFlatTraffic.actionsByLogID.first(where: { $0.logID == logID }) {
                fields.set(at.action, copying: named.action)
            } else {
                setText(at.action, .action)
            }
            // The traffic type's verdict.
            let denied = FortiGateFlatTraffic.deniedActions.contains(FlatSyslog.lowercased(action ?? []))
            fields.set(at.category, literal: Literal.network.rawValue)
            fields.set(at.type, literal: (denied ? Literal.denied : action == Array("start".utf8) ? .start : .end).rawValue)
            fields.set(at.outcome, literal: (denied ? Literal.failure : .success).rawValue)
            setText(at.userName, .user)
            setVendorFields()
            FlatSyslog.setDistinct(&fields, at.relatedIP, [fields.textRange(at.sourceIP), fields.textRange(at.destinationIP)])
            fields.set(at.message, text: 0..<b.count)
            fields.set(at.dataset, literal: Literal.dataset.rawValue)
            return FortiGatePack.timestamp(date: string(pair(.date)), time: string(pair(.time)), tz: string(pair(.tz)), eventtime: string(pair(.eventtime)))?.0
        }

        /// The unmapped keys, sorted, each with its last value, placeholders left out
        /// (`FortiGatePack.Record.unmapped`, then `ECSBuilder.set(_:string:)`).
        mutating func setVendorFields() {
            guard !unmapped.isEmpty else { return }
            let b = b, at = FortiGateFlatTraffic.at
            // By key, then line order (the last of a key is kept).
            let order = unmapped.indices.sorted { x, y in
                let a = unmapped[x].key, c = unmapped[y].key
                let common = memcmp(b.baseAddress! + a.lowerBound, b.baseAddress! + c.lowerBound, min(a.count, c.count))
                if common != 0 { return common < 0 }
                return a.count != c.count ? a.count < c.count : x < y
            }
            var members: [(key: Range<Int>, value: Range<Int>)] = []
            members.reserveCapacity(order.count)
            for (position, index) in order.enumerated() {
                let pair = unmapped[index]
                if position + 1 < order.count, b[unmapped[order[position + 1]].key].elementsEqual(b[pair.key]) { continue }
                if let value = text(pair) { members.append((pair.key, value)) }
            }
            if !members.isEmpty { fields.set(at.vendorFields, members: members) }
        }
    }
}
