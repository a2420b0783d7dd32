import Foundation
public import VigilCore

/// Zeek logs as NDJSON documents or lines (conn, dns, http, ssl, files, notice, weird, ssh,
/// x509; other logs get the common fields). Dataset `zeek.<log>`; every Zeek field that is
/// not mapped away (`ts`, `uid`, `id.*`) stays under `zeek.<log>.*`.
///
/// Values are canonicalised so the TSV form (through `ZeekTSVReader`) and the JSON form of a
/// record normalize to identical fields: times become RFC 3339 strings with milliseconds,
/// doubles are rounded to microseconds (Zeek's TSV precision).
public struct ZeekPack: ProtocolPack {
    public let name = "zeek"
    public init() {}

    /// Fields of type `time` besides `ts` (JSON writes them as ISO strings or epoch doubles).
    static let timeFields: Set<String> = ["certificate.not_valid_before", "certificate.not_valid_after"]

    public func normalize(_ input: PackInput) -> PackResult? {
        guard let doc = input.document, let path = Self.logType(doc) else { return nil }
        return map(doc, path: path)
    }

    /// Which Zeek log a JSON record comes from (`_path` when present, else by its keys).
    static func logType(_ doc: JSONObject) -> String? {
        if let path = doc["_path"]?.stringValue { return path }
        guard doc["ts"] != nil else { return nil }
        let has = { (k: String) in doc[k] != nil }
        let hasID = has("id.orig_h") || doc["id"]?.objectValue?["orig_h"] != nil
        if has("certificate.version") || has("certificate.serial") || doc["certificate"] != nil { return "x509" }
        if has("fuid") && (has("mime_type") || has("tx_hosts") || has("seen_bytes") || has("total_bytes")) && !hasID { return "files" }
        guard has("uid") || hasID else { return nil }
        if has("note") { return "notice" }
        if has("query") || has("qtype") || has("trans_id") { return "dns" }
        if has("method") || has("status_code") || has("uri") { return "http" }
        if has("cipher") || has("server_name") || has("ssl_history") || (has("version") && has("established")) { return "ssl" }
        if has("auth_success") || has("auth_attempts") || has("host_key") { return "ssh" }
        if has("conn_state") || has("history") || has("orig_bytes") { return "conn" }
        if has("name") && (has("notice") || has("peer") || has("addl")) { return "weird" }
        if has("fuid") { return "files" }
        return nil
    }

    static func round6(_ d: Double) -> Double {
        guard d.isFinite, abs(d) < 1e12 else { return d }
        return (d * 1_000_000).rounded() / 1_000_000
    }

    /// Zeek's `time`: epoch seconds (number) or an ISO 8601 string.
    static func epochMillis(_ v: JSONValue?) -> EpochMillis? {
        switch v {
        case .double(let d)?:
            guard d.isFinite, abs(d) < 1e13 else { return nil }
            let micros = Int64((d * 1_000_000).rounded())
            return micros >= 0 ? micros / 1000 : (micros - 999) / 1000
        case .int(let i)?: return i.multipliedReportingOverflow(by: 1000).overflow ? nil : i * 1000
        case .string(let s)?: return Timestamp.parseRFC3339(s)
        default: return nil
        }
    }

    /// Canonical value: doubles rounded to microseconds, recursively.
    static func canonical(_ v: JSONValue) -> JSONValue {
        switch v {
        case .double(let d): return .double(round6(d))
        case .array(let a): return .array(a.map(canonical))
        case .object(let o): return .object(JSONObject(o.members.map { ($0.key, canonical($0.value)) }))
        default: return v
        }
    }

    func map(_ doc: JSONObject, path: String) -> PackResult {
        // Flatten `{"id":{"orig_h":..}}` (Filebeat-style) into Zeek's dotted keys.
        var flat: [(String, JSONValue)] = []
        func walk(_ prefix: String, _ o: JSONObject) {
            for (k, v) in o.members {
                let key = prefix.isEmpty ? k : "\(prefix).\(k)"
                if case .object(let child) = v { walk(key, child) } else { flat.append((key, v)) }
            }
        }
        walk("", doc)
        var r: [String: JSONValue] = [:]
        for (k, v) in flat { r[k] = v }
        func str(_ k: String) -> String? { r[k]?.scalarText }

        var b = ECSBuilder()
        b.set("event.kind", string: "event")
        b.set("event.id", string: str("uid"))
        b.set("zeek.session_id", string: str("uid"))
        b.set("source.ip", ip: str("id.orig_h"))
        b.set("source.port", int: str("id.orig_p"))
        b.set("destination.ip", ip: str("id.resp_h"))
        b.set("destination.port", int: str("id.resp_p"))
        b.set("network.transport", string: str("proto")?.lowercased())
        var consumed: Set<String> = ["ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "_path", "_write_ts"]
        switch path {
        case "conn":
            b.set("event.category", strings: ["network"])
            b.set("event.type", strings: ["connection", "info"])
            b.set("network.protocol", string: str("service"))
            b.set("source.bytes", int: str("orig_bytes"))
            b.set("destination.bytes", int: str("resp_bytes"))
            b.set("source.packets", int: str("orig_pkts"))
            b.set("destination.packets", int: str("resp_pkts"))
            if case .double(let d)? = r["duration"] { b.set("event.duration", .int(Int64((Self.round6(d) * 1e9).rounded()))) }
        case "dns":
            b.set("event.category", strings: ["network"])
            b.set("event.type", strings: ["connection", "protocol", "info"])
            b.set("network.protocol", string: "dns")
            b.set("dns.id", string: str("trans_id"))
            b.set("dns.question.name", string: str("query"))
            b.set("dns.question.type", string: str("qtype_name"))
            let qclass = str("qclass_name")
            b.set("dns.question.class", string: qclass == "C_INTERNET" ? "IN" : qclass)
            b.set("dns.response_code", string: str("rcode_name"))
            b.set("dns.type", string: r["answers"] != nil || r["rcode"] != nil ? "answer" : "query")
            b.set("event.outcome", string: r["rejected"] == .bool(true) ? "failure" : "success")
        case "http":
            b.set("event.category", strings: ["network", "web"])
            b.set("event.type", strings: ["connection", "info"])
            b.set("network.protocol", string: "http")
            b.set("http.request.method", string: str("method"))
            b.set("http.response.status_code", int: str("status_code"))
            b.set("http.version", string: str("version"))
            b.set("http.request.body.bytes", int: str("request_body_len"))
            b.set("http.response.body.bytes", int: str("response_body_len"))
            b.set("http.request.referrer", string: str("referrer"))
            b.set("user_agent.original", string: str("user_agent"))
            if let uri = str("uri") {
                URLFields.apply(uri, to: &b)
                if let host = str("host") { b.set("url.domain", string: host) }
            }
            if let code = r["status_code"].flatMap({ $0.scalarText }).flatMap(ECSBuilder.parseInt) {
                b.set("event.outcome", string: code < 400 ? "success" : "failure")
            }
        case "ssl":
            b.set("event.category", strings: ["network"])
            b.set("event.type", strings: ["connection", "protocol"])
            b.set("network.protocol", string: "tls")
            b.set("tls.cipher", string: str("cipher"))
            b.set("tls.curve", string: str("curve"))
            b.set("tls.client.server_name", string: str("server_name"))
            b.set("destination.domain", string: str("server_name"))
            b.set("tls.resumed", r["resumed"].flatMap { if case .bool = $0 { $0 } else { nil } })
            b.set("tls.established", r["established"].flatMap { if case .bool = $0 { $0 } else { nil } })
            if let v = str("version") {
                let parts = v.split(separator: "v", maxSplits: 1)
                if parts.count == 2 {
                    b.set("tls.version_protocol", string: parts[0].lowercased())
                    b.set("tls.version", string: parts[1].count == 2 ? "\(parts[1].prefix(1)).\(parts[1].suffix(1))" : String(parts[1]))
                }
            }
        case "files":
            b.set("event.category", strings: ["file"])
            b.set("event.type", strings: ["info"])
            b.set("file.mime_type", string: str("mime_type"))
            b.set("file.name", string: str("filename"))
            b.set("file.size", int: str("total_bytes"))
            b.set("file.hash.md5", string: str("md5"))
            b.set("file.hash.sha1", string: str("sha1"))
            b.set("file.hash.sha256", string: str("sha256"))
            if case .array(let tx)? = r["tx_hosts"], b.get("source.ip") == nil { b.set("source.ip", ip: tx.first?.stringValue) }
            if case .array(let rx)? = r["rx_hosts"], b.get("destination.ip") == nil { b.set("destination.ip", ip: rx.first?.stringValue) }
        case "notice":
            b.set("event.kind", string: "alert")
            b.set("event.category", strings: ["intrusion_detection"])
            b.set("event.type", strings: ["info"])
            b.set("rule.name", string: str("note"))
            b.set("event.reason", string: str("msg"))
            if b.get("source.ip") == nil { b.set("source.ip", ip: str("src")) }
            if b.get("destination.ip") == nil { b.set("destination.ip", ip: str("dst")) }
            if b.get("destination.port") == nil { b.set("destination.port", int: str("p")) }
        case "weird":
            b.set("event.kind", string: "alert")
            b.set("event.category", strings: ["network"])
            b.set("event.type", strings: ["info"])
            b.set("rule.name", string: str("name"))
        case "ssh":
            b.set("event.category", strings: ["network"])
            b.set("event.type", strings: ["connection", "protocol"])
            b.set("network.protocol", string: "ssh")
            if case .bool(let ok)? = r["auth_success"] { b.set("event.outcome", string: ok ? "success" : "failure") }
        case "x509":
            b.set("event.category", strings: ["file"])
            b.set("event.type", strings: ["info"])
            b.set("file.x509.subject.distinguished_name", string: str("certificate.subject"))
            b.set("file.x509.issuer.distinguished_name", string: str("certificate.issuer"))
            b.set("file.x509.serial_number", string: str("certificate.serial"))
            b.set("file.x509.public_key_algorithm", string: str("certificate.key_alg"))
            b.set("file.x509.signature_algorithm", string: str("certificate.sig_alg"))
            b.set("file.x509.version_number", string: str("certificate.version"))
            for (field, target) in [("certificate.not_valid_before", "file.x509.not_before"), ("certificate.not_valid_after", "file.x509.not_after")] {
                if let t = Self.epochMillis(r[field]) { b.set(target, string: Timestamp.formatRFC3339(t)) }
            }
        default:
            b.set("event.category", strings: ["network"])
        }
        consumed.insert("ts")
        for (k, v) in flat where !consumed.contains(k) {
            var value = Self.canonical(v)
            if Self.timeFields.contains(k), let t = Self.epochMillis(v) { value = .string(Timestamp.formatRFC3339(t)) }
            b.set("zeek.\(path).\(k)", value)
        }
        for p in ["source.ip", "destination.ip"] { b.append("related.ip", b.string(p)) }
        let ts = Self.epochMillis(r["ts"])
        return PackResult(dataset: "zeek.\(path)", fields: b.object, timestamp: ts, parseFailure: ts == nil)
    }
}

/// Reads Zeek's TSV logs line by line: `#separator`, `#set_separator`, `#empty_field`,
/// `#unset_field`, `#path`, `#fields` and `#types` headers set the state; each data line
/// becomes the record Zeek's JSON writer would have written, then goes through `ZeekPack`.
///
/// ```swift
/// var reader = ZeekTSVReader()
/// for line in lines { if let event = reader.normalize(line: line, receivedAt: now) { ... } }
/// ```
public struct ZeekTSVReader: Sendable {
    public private(set) var path: String?
    public private(set) var fields: [String] = []
    public private(set) var types: [String] = []
    var separator: Character = "\t"
    var setSeparator: Character = ","
    var emptyField = "(empty)"
    var unsetField = "-"
    let pack = ZeekPack()

    public init(path: String? = nil) { self.path = path }

    /// Feeds one line; returns the event for a data line, nil for headers, comments and
    /// data lines seen before `#fields`.
    public mutating func normalize(line: String, receivedAt: EpochMillis) -> NormalizedEvent? {
        guard let record = record(line: line), let path else { return nil }
        let result = pack.map(record, path: path)
        var fields = result.fields
        fields["message"] = .string(line)
        FieldNesting.set(.string(result.dataset), at: "event.dataset", in: &fields)
        return NormalizedEvent(fields: fields, timestamp: result.timestamp, dataset: result.dataset, parseFailure: result.parseFailure)
    }

    /// The data line as a Zeek JSON record (unset fields left out), or nil.
    public mutating func record(line raw: String) -> JSONObject? {
        var line = raw
        while let l = line.last, l == "\n" || l == "\r" || l == "\r\n" { line.removeLast() }
        if line.hasPrefix("#") {
            header(line)
            return nil
        }
        guard !fields.isEmpty, !line.isEmpty else { return nil }
        let values = line.split(separator: separator, omittingEmptySubsequences: false)
        var out = JSONObject()
        for (i, name) in fields.enumerated() where i < values.count {
            let text = String(values[i])
            let type = i < types.count ? types[i] : "string"
            if text == unsetField { continue }
            if let v = value(text, type: type, field: name) { out.members.append((name, v)) }
        }
        return out
    }

    private mutating func header(_ line: String) {
        let parts = line.split(separator: separator == " " ? " " : "\t", omittingEmptySubsequences: false).map(String.init)
        guard let key = parts.first else { return }
        switch key {
        case "#separator":
            // `#separator \x09` uses a space before the value.
            let value = line.dropFirst("#separator".count).drop(while: { $0 == " " })
            if let c = Self.unescape(String(value)).first { separator = c }
        case "#set_separator": if parts.count > 1, let c = Self.unescape(parts[1]).first { setSeparator = c }
        case "#empty_field": if parts.count > 1 { emptyField = parts[1] }
        case "#unset_field": if parts.count > 1 { unsetField = parts[1] }
        case "#path": if parts.count > 1 { path = parts[1] }
        case "#fields": fields = Array(parts.dropFirst())
        case "#types": types = Array(parts.dropFirst())
        default: break
        }
    }

    /// Undoes Zeek's TSV escaping: `\\` and `\xNN`.
    static func unescape(_ s: String) -> String {
        guard s.contains("\\") else { return s }
        let b = Array(s.utf8)
        var out: [UInt8] = []
        var i = 0
        while i < b.count {
            if b[i] == UInt8(ascii: "\\"), i + 1 < b.count {
                if b[i + 1] == UInt8(ascii: "\\") { out.append(0x5C); i += 2; continue }
                if b[i + 1] == UInt8(ascii: "x"), i + 3 < b.count,
                   let v = UInt8(String(decoding: b[(i + 2)...(i + 3)], as: UTF8.self), radix: 16) {
                    out.append(v)
                    i += 4
                    continue
                }
            }
            out.append(b[i])
            i += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    private func value(_ text: String, type: String, field: String) -> JSONValue? {
        if type.hasPrefix("set[") || type.hasPrefix("vector[") {
            guard let open = type.firstIndex(of: "["), type.hasSuffix("]") else { return .string(Self.unescape(text)) }
            let inner = String(type[type.index(after: open)..<type.index(before: type.endIndex)])
            if text == emptyField { return .array([]) }
            return .array(text.split(separator: setSeparator, omittingEmptySubsequences: false).compactMap { element in
                element == Substring(unsetField) ? .null : value(String(element), type: inner, field: field)
            })
        }
        switch type {
        case "count", "int", "port":
            if let i = ECSBuilder.parseInt(text) { return .int(i) }
            return .string(text)
        case "double", "interval":
            if let d = Double(text) { return .double(ZeekPack.round6(d)) }
            return .string(text)
        case "time":
            if field == "ts" || ZeekPack.timeFields.contains(field), let d = Double(text) { return .double(d) }
            if let d = Double(text) { return .double(ZeekPack.round6(d)) }
            return .string(text)
        case "bool":
            return text == "T" ? .bool(true) : text == "F" ? .bool(false) : .string(text)
        default:
            if text == emptyField { return .string("") }
            return .string(Self.unescape(text))
        }
    }
}
