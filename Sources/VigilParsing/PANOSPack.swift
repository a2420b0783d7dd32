import Foundation
import VigilCore

/// Palo Alto Networks PAN-OS: syslog CSV (TRAFFIC, THREAT incl. URL, SYSTEM, CONFIG, USERID,
/// GLOBALPROTECT), CEF/LEEF from a PAN-OS device, and JSON documents whose keys are the
/// PAN-OS log-format field names (`type`, `subtype`, `src`, `dst`, `sport`, ...).
///
/// Datasets: `panos.traffic`, `panos.threat`, `panos.system`, `panos.config`, `panos.userid`,
/// `panos.globalprotect` (`panos.<type lower-cased>` for other types). Vendor fields go under
/// `panw.panos.*` as Elastic's panw integration does.
public struct PANOSPack: ProtocolPack {
    public let name = "panos"
    public init() {}

    static let common = ["future_use", "receive_time", "serial", "type", "subtype", "future_use2", "time_generated"]
    static let sessionFields = common + [
        "src", "dst", "natsrc", "natdst", "rule", "srcuser", "dstuser", "app", "vsys", "from", "to",
        "inbound_if", "outbound_if", "logset", "future_use3", "sessionid", "repeatcnt", "sport", "dport",
        "natsport", "natdport", "flags", "proto", "action",
    ]
    static let layouts: [String: [String]] = [
        "TRAFFIC": sessionFields + [
            "bytes", "bytes_sent", "bytes_received", "packets", "start", "elapsed", "category", "future_use4",
            "seqno", "actionflags", "srcloc", "dstloc", "future_use5", "pkts_sent", "pkts_received",
            "session_end_reason",
        ],
        "THREAT": sessionFields + [
            "misc", "threatid", "category", "severity", "direction", "seqno", "actionflags", "srcloc", "dstloc",
            "future_use4", "contenttype", "pcap_id", "filedigest", "cloud", "url_idx", "user_agent", "filetype",
            "xff", "referer", "sender", "subject", "recipient", "reportid",
        ],
        "SYSTEM": common + ["vsys", "eventid", "object", "future_use3", "future_use4", "module", "severity", "opaque", "seqno", "actionflags"],
        "CONFIG": common + ["host", "vsys", "cmd", "admin", "client", "result", "path", "seqno", "actionflags", "before_change_detail", "after_change_detail"],
        "USERID": common + [
            "vsys", "ip", "user", "datasourcename", "eventid", "repeatcnt", "timeout", "beginport", "endport",
            "datasource", "datasourcetype", "seqno", "actionflags",
        ],
        "GLOBALPROTECT": common + [
            "vsys", "eventid", "stage", "auth_method", "tunnel_type", "srcuser", "srcregion", "machinename",
            "public_ip", "public_ipv6", "private_ip", "private_ipv6", "hostid", "serialnumber", "client_ver",
            "client_os", "client_os_ver", "repeatcnt", "reason", "error", "opaque", "status", "location",
            "login_duration", "connect_method", "error_code", "portal", "seqno",
        ],
    ]

    /// The record fields the mapping reads, by their PAN-OS log-format names.
    enum Field: Int, CaseIterable {
        case serial, type, subtype, time_generated, receive_time
        case src, dst, sport, dport, natsrc, natdst, natsport, natdport, rule, srcuser, dstuser, user, app, proto
        case from, to, inbound_if, outbound_if, repeatcnt
        case vsys, sessionid, action, seqno, actionflags, category, severity, direction, session_end_reason, logset
        case threatid, eventid, module, cmd, admin, client, result, path, stage, auth_method, tunnel_type, portal
        case status, reason, error, login_duration, connect_method, machinename, client_os, client_ver, datasource
        case datasourcetype, datasourcename, object
        case bytes, bytes_sent, bytes_received, packets, pkts_sent, pkts_received, elapsed
        case misc, user_agent, referer, filedigest, opaque, host, ip, public_ip, public_ipv6, private_ip

        /// By log-format name (the case names are the names).
        static let byName: [String: Field] = Dictionary(uniqueKeysWithValues: allCases.map { ("\($0)", $0) })
    }

    /// One log's fields by `Field`: an array filled by position instead of a dictionary keyed
    /// by name, which hashed every column name of every line twice.
    struct Record {
        var values = [String?](repeating: nil, count: Field.allCases.count)

        subscript(field: Field) -> String? {
            get { values[field.rawValue] }
            set { values[field.rawValue] = newValue }
        }
    }

    /// Per log type, the columns the mapping reads: (column in the CSV, position in `Record`).
    /// A name that occurs twice in a layout takes the later column, as a dictionary would.
    static let layoutFields: [String: [(column: Int, field: Int)]] = layouts.mapValues(fieldColumns)
    static let commonFields = fieldColumns(common)

    static func fieldColumns(_ layout: [String]) -> [(column: Int, field: Int)] {
        var byField: [Int: Int] = [:]
        for (column, name) in layout.enumerated() {
            if let field = Field.byName[name] { byField[field.rawValue] = column }
        }
        return byField.map { (column: $0.value, field: $0.key) }.sorted { $0.column < $1.column }
    }

    public func normalize(_ input: PackInput) -> PackResult? {
        if let doc = input.document { return normalizeJSON(doc) }
        if input.body.containsBytes("CEF:"), let cef = CEFRecord.parse(input.body), cef.vendor == "Palo Alto Networks" {
            var b = cef.ecs()
            let type = (cef.extensions["cat"] ?? cef.signatureID).uppercased()
            setObserver(&b)
            return PackResult(dataset: dataset(type), fields: b.object, timestamp: cef.timestamp(), parseFailure: !cef.complete)
        }
        if input.body.containsBytes("LEEF:"), let leef = LEEFRecord.parse(input.body), leef.vendor == "Palo Alto Networks" {
            var b = leef.ecs()
            setObserver(&b)
            let type = (leef.attributes["cat"] ?? leef.eventID).uppercased()
            return PackResult(dataset: dataset(type), fields: b.object, timestamp: leef.timestamp(), parseFailure: !leef.complete)
        }
        let body = input.body
        // Cheap check before splitting: `<digits>,yyyy/mm/dd hh:mm:ss,<serial>,<TYPE>,`.
        // A byte search: this runs on every line that reaches the pack, and `firstIndex(of:)`
        // with a Character walks grapheme clusters over the whole line.
        guard let comma = body.firstIndex(ofByte: UInt8(ascii: ",")), body[..<comma].allSatisfy(\.isNumber),
              body.distance(from: body.startIndex, to: comma) <= 4
        else { return nil }
        let values = CSVSplitter.split(body)
        guard values.count >= 8, let layout = Self.layouts[values[3]] ?? (values[3].allSatisfy(\.isUppercase) && values.count > 10 ? Self.common : nil)
        else { return nil }
        var record = Record()
        for (column, field) in Self.layoutFields[values[3]] ?? Self.commonFields where column < values.count {
            record.values[field] = values[column]
        }
        var result = map(record, hostname: input.syslog.hostname)
        // Session logs need everything up to `action` (index 30); the rest is optional detail.
        let required = values[3] == "TRAFFIC" || values[3] == "THREAT" ? 31 : min(layout.count, 11)
        result.parseFailure = values.count < required
        return result
    }

    private func dataset(_ type: String) -> String {
        "panos.\(type.isEmpty ? "unknown" : type.lowercased())"
    }

    private func setObserver(_ b: inout ECSBuilder) {
        b.set("observer.vendor", string: "Palo Alto Networks")
        b.set("observer.product", string: "PAN-OS")
        b.set("observer.type", string: "firewall")
    }

    private func normalizeJSON(_ doc: JSONObject) -> PackResult? {
        guard let type = (doc["type"] ?? doc["log_type"])?.scalarText?.uppercased(), Self.layouts[type] != nil,
              doc["serial"] != nil || doc["receive_time"] != nil || doc["time_generated"] != nil
        else { return nil }
        var record = Record()
        for (key, value) in doc.members {
            if let field = Field.byName[key], let text = value.scalarText { record[field] = text }
        }
        record[.type] = type
        return map(record, hostname: nil)
    }

    /// `2018/11/30 16:44:36` (device local time; UTC assumed) or RFC 3339.
    static func time(_ s: String?) -> (EpochMillis, Bool)? {
        guard let s, !s.isEmpty else { return nil }
        if let t = Timestamp.parseRFC3339(s) { return (t, true) }
        let iso = s.replacingByte(UInt8(ascii: "/"), with: UInt8(ascii: "-"))
        if let t = Timestamp.parseRFC3339(iso + "Z") { return (t, false) }
        return nil
    }

    /// Record fields kept as they are under `panw.panos.*` (paths built once, not per event).
    static let vendorFields: [(key: Field, path: String)] = [
        "vsys", "sessionid", "action", "seqno", "actionflags", "category", "severity", "direction", "session_end_reason", "logset",
        "threatid", "eventid", "module", "cmd", "admin", "client", "result", "path", "stage", "auth_method", "tunnel_type", "portal",
        "status", "reason", "error", "login_duration", "connect_method", "machinename", "client_os", "client_ver", "datasource",
        "datasourcetype", "datasourcename", "object",
    ].map { (Field.byName[$0]!, "panw.panos.\($0)") }

    static let trafficActions: [String: String] = ["start": "flow_started", "end": "flow_terminated", "drop": "flow_dropped", "deny": "flow_denied"]

    static let threatActions: [String: String] = [
        "url": "url_filtering", "virus": "virus_detected", "spyware": "spyware_detected",
        "vulnerability": "exploit_detected", "file": "file_match", "scan": "scan_detected",
        "flood": "flood_detected", "data": "data_match", "wildfire": "wildfire_verdict",
        "wildfire-virus": "wildfire_virus_detected",
    ]

    private func map(_ r: Record, hostname: String?) -> PackResult {
        let type = (r[.type] ?? "").uppercased()
        let subtype = (r[.subtype] ?? "").lowercased()
        var b = ECSBuilder()
        setObserver(&b)
        b.set("observer.serial_number", string: r[.serial])
        b.set("panw.panos.type", string: type)
        b.set("panw.panos.sub_type", string: subtype)
        b.set("source.ip", ip: r[.src])
        b.set("destination.ip", ip: r[.dst])
        b.set("source.port", int: r[.sport])
        b.set("destination.port", int: r[.dport])
        if r[.natsrc] != "0.0.0.0" { b.set("source.nat.ip", ip: r[.natsrc]) }
        if r[.natdst] != "0.0.0.0" { b.set("destination.nat.ip", ip: r[.natdst]) }
        if r[.natsport] != "0" { b.set("source.nat.port", int: r[.natsport]) }
        if r[.natdport] != "0" { b.set("destination.nat.port", int: r[.natdport]) }
        b.set("rule.name", string: r[.rule])
        b.set("source.user.name", string: r[.srcuser])
        b.set("destination.user.name", string: r[.dstuser])
        b.set("user.name", string: r[.srcuser] ?? r[.user])
        b.set("network.application", string: r[.app])
        b.set("network.transport", string: r[.proto]?.lowercased())
        b.set("observer.ingress.zone", string: r[.from])
        b.set("observer.egress.zone", string: r[.to])
        b.set("observer.ingress.interface.name", string: r[.inbound_if])
        b.set("observer.egress.interface.name", string: r[.outbound_if])
        for (key, path) in Self.vendorFields {
            b.set(path, string: r[key])
        }
        b.set("panw.panos.repeat_count", int: r[.repeatcnt])
        let action = (r[.action] ?? "").lowercased()
        let allowed = action.isEmpty || action == "allow" || action == "alert" || action == "continue"
        let ts = Self.time(r[.time_generated]) ?? Self.time(r[.receive_time])
        switch type {
        case "TRAFFIC":
            b.set("event.kind", string: "event")
            b.set("event.category", strings: ["network"])
            b.set("event.action", string: Self.trafficActions[subtype] ?? subtype)
            var types = [allowed ? "allowed" : "denied", "connection"]
            if subtype == "start" { types.append("start") } else if subtype == "end" { types.append("end") }
            b.set("event.type", strings: types)
            b.set("event.outcome", string: allowed ? "success" : "failure")
            b.set("network.bytes", int: r[.bytes])
            b.set("source.bytes", int: r[.bytes_sent])
            b.set("destination.bytes", int: r[.bytes_received])
            b.set("network.packets", int: r[.packets])
            b.set("source.packets", int: r[.pkts_sent])
            b.set("destination.packets", int: r[.pkts_received])
            if let elapsed = r[.elapsed].flatMap(ECSBuilder.parseInt) { b.set("event.duration", .int(elapsed &* 1_000_000_000)) }
        case "THREAT":
            b.set("event.kind", string: "alert")
            b.set("event.category", strings: ["intrusion_detection", "threat", "network"])
            b.set("event.action", string: Self.threatActions[subtype] ?? subtype)
            b.set("event.type", strings: [allowed ? "allowed" : "denied"])
            b.set("event.outcome", string: allowed ? "success" : "failure")
            if subtype == "url" {
                URLFields.apply(r[.misc], to: &b)
                b.set("destination.domain", string: b.string("url.domain"))
                b.set("panw.panos.url.category", string: r[.category])
            } else {
                b.set("file.name", string: r[.misc])
            }
            if let threat = r[.threatid], let open = threat.lastIndex(of: "("), threat.hasSuffix(")") {
                b.set("panw.panos.threat.id", string: String(threat[threat.index(after: open)..<threat.index(before: threat.endIndex)]))
                let name = threat[..<open].trimmingCharacters(in: " ")
                b.set("panw.panos.threat.name", string: name.isEmpty ? (subtype == "url" ? "URL-filtering" : nil) : name)
            }
            b.set("user_agent.original", string: r[.user_agent])
            b.set("http.request.referrer", string: r[.referer])
            b.set("file.hash.sha256", string: r[.filedigest])
            b.set("log.level", string: r[.severity])
        case "SYSTEM":
            b.set("event.kind", string: "event")
            b.set("event.category", strings: ["host"])
            b.set("event.type", strings: ["info"])
            b.set("event.action", string: r[.eventid])
            b.set("log.level", string: r[.severity])
            b.set("event.reason", string: r[.opaque])
        case "CONFIG":
            b.set("event.kind", string: "event")
            b.set("event.category", strings: ["configuration"])
            b.set("event.type", strings: ["change"])
            b.set("event.action", string: r[.cmd])
            b.set("user.name", string: r[.admin])
            b.set("source.ip", ip: r[.host])
            let result = (r[.result] ?? "").lowercased()
            b.set("event.outcome", string: result == "succeeded" ? "success" : result.isEmpty ? nil : "failure")
        case "USERID":
            b.set("event.kind", string: "event")
            b.set("event.category", strings: ["iam"])
            b.set("event.type", strings: ["info"])
            b.set("event.action", string: subtype == "login" ? "userid-login" : subtype == "logout" ? "userid-logout" : subtype)
            b.set("user.name", string: r[.user])
            b.set("source.ip", ip: r[.ip])
        case "GLOBALPROTECT":
            b.set("event.kind", string: "event")
            b.set("event.category", strings: ["authentication", "network"])
            b.set("event.type", strings: ["info"])
            b.set("event.action", string: r[.eventid])
            b.set("user.name", string: r[.srcuser])
            b.set("source.ip", ip: r[.public_ip] ?? r[.public_ipv6])
            b.set("source.nat.ip", ip: r[.private_ip])
            b.set("host.name", string: r[.machinename])
            let status = (r[.status] ?? "").lowercased()
            b.set("event.outcome", string: status == "success" ? "success" : status == "failure" ? "failure" : nil)
        default:
            b.set("event.kind", string: "event")
        }
        if let user = b.string("user.name") { b.append("related.user", user) }
        for path in ["source.ip", "destination.ip", "source.nat.ip"] { b.append("related.ip", b.string(path)) }
        b.set("observer.hostname", string: hostname)
        return PackResult(dataset: dataset(type), fields: b.object, timestamp: ts?.0, timestampHasZone: ts?.1 ?? true)
    }
}

