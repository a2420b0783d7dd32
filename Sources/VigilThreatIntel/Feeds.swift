import Foundation
import Synchronization
import VigilCore

/// Reads indicator feeds: CSV (`type,value,source,confidence`), STIX 2.1 bundles (indicators
/// with simple `[type:value = '...']` patterns, OR-combined), and MISP event JSON
/// (`Attribute`s and `Object` attributes; `{"Event":...}`, `{"response":[...]}` or a list).
public enum FeedLoader {
    public static func load(path: String) -> ([Indicator], FeedReport) {
        var report = FeedReport(path: path)
        guard let data = FileManager.default.contents(atPath: path) else {
            report.error = "cannot read \(path)"
            return ([], report)
        }
        let bytes = Array(data)
        let provider = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        let firstByte = bytes.first { $0 != 0x20 && $0 != 0x0A && $0 != 0x0D && $0 != 0x09 }
        if firstByte == UInt8(ascii: "{") || firstByte == UInt8(ascii: "[") {
            guard let json = try? JSONParser.parse(bytes) else {
                report.error = "\(path) is not valid JSON"
                return ([], report)
            }
            var out: [Indicator] = []
            if case .object(let object) = json, object["type"]?.stringValue == "bundle" {
                stix(object, provider: provider, into: &out, report: &report)
            } else {
                misp(json, provider: provider, into: &out, report: &report)
            }
            report.loaded = out.count
            return (out, report)
        }
        var out: [Indicator] = []
        csv(String(decoding: bytes, as: UTF8.self), provider: provider, into: &out, report: &report)
        report.loaded = out.count
        return (out, report)
    }

    static func csv(_ text: String, provider: String, into out: inout [Indicator], report: inout FeedReport) {
        for (index, rawLine) in text.split(whereSeparator: { $0 == "\n" || $0 == "\r\n" }).enumerated() {
            let line = rawLine.trimmedWhitespace
            if line.isEmpty || line.hasPrefix("#") { continue }
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map(\.trimmedSpacesAndQuotes)
            if index == 0, fields.first?.lowercased() == "type" { continue }
            guard fields.count >= 2 else {
                report.skipped["csv_too_few_columns", default: 0] += 1
                continue
            }
            let source = fields.count > 2 && !fields[2].isEmpty ? fields[2] : provider
            let confidence = fields.count > 3 && !fields[3].isEmpty ? fields[3] : nil
            guard Indicator.kind(named: fields[0], value: fields[1]) != nil else {
                report.skipped["unknown_type", default: 0] += 1
                continue
            }
            guard let indicator = Indicator.make(type: fields[0], value: fields[1], provider: source, confidence: confidence) else {
                report.skipped["invalid_value", default: 0] += 1
                continue
            }
            out.append(indicator)
        }
    }

    /// `[ipv4-addr:value = '1.2.3.4' OR domain-name:value = 'x']`.
    static func stix(_ bundle: JSONObject, provider: String, into out: inout [Indicator], report: inout FeedReport) {
        guard case .array(let objects)? = bundle["objects"] else {
            report.error = "a STIX bundle needs objects"
            return
        }
        for case .object(let object) in objects where object["type"]?.stringValue == "indicator" {
            guard let pattern = object["pattern"]?.stringValue, object["pattern_type"]?.stringValue ?? "stix" == "stix" else {
                report.skipped["stix_pattern_type", default: 0] += 1
                continue
            }
            let confidence = object["confidence"]?.scalarText
            let source = object["created_by_ref"]?.stringValue ?? provider
            var body = pattern.trimmingCharacters(in: .whitespaces)
            guard body.hasPrefix("["), body.hasSuffix("]"), !body.dropFirst().dropLast().contains("["), !body.contains(" AND ") else {
                report.skipped["stix_complex_pattern", default: 0] += 1
                continue
            }
            body = String(body.dropFirst().dropLast())
            for comparison in body.components(separatedBy: " OR ") {
                let parts = comparison.components(separatedBy: " = ")
                guard parts.count == 2 else {
                    report.skipped["stix_complex_pattern", default: 0] += 1
                    continue
                }
                let path = parts[0].trimmingCharacters(in: .whitespaces)
                let value = parts[1].trimmingCharacters(in: CharacterSet(charactersIn: " '"))
                let type: String
                switch path {
                case "ipv4-addr:value", "ipv6-addr:value": type = "ip"
                case "domain-name:value": type = "domain"
                case "url:value": type = "url"
                case "file:hashes.'SHA-256'", "file:hashes.SHA256", "file:hashes.'SHA256'": type = "sha256"
                case "file:hashes.'SHA-1'", "file:hashes.SHA1": type = "sha1"
                case "file:hashes.MD5", "file:hashes.'MD5'": type = "md5"
                default:
                    report.skipped["stix_unsupported_object", default: 0] += 1
                    continue
                }
                if let indicator = Indicator.make(type: type, value: value, provider: source, confidence: confidence) {
                    out.append(indicator)
                } else {
                    report.skipped["invalid_value", default: 0] += 1
                }
            }
        }
    }

    static func misp(_ json: JSONValue, provider: String, into out: inout [Indicator], report: inout FeedReport) {
        var events: [JSONObject] = []
        func collect(_ value: JSONValue) {
            switch value {
            case .array(let items): items.forEach(collect)
            case .object(let object):
                if case .object(let event)? = object["Event"] { events.append(event) } else if case .array? = object["response"] { collect(object["response"]!) } else if object["Attribute"] != nil { events.append(object) }
            default: break
            }
        }
        collect(json)
        guard !events.isEmpty else {
            report.error = "no MISP events or STIX bundle in the document"
            return
        }
        for event in events {
            let source = event["Orgc"]?.objectValue?["name"]?.stringValue ?? event["info"]?.stringValue ?? provider
            var attributes: [JSONValue] = []
            if case .array(let list)? = event["Attribute"] { attributes += list }
            if case .array(let objects)? = event["Object"] {
                for case .object(let object) in objects { if case .array(let list)? = object["Attribute"] { attributes += list } }
            }
            for case .object(let attribute) in attributes {
                guard let type = attribute["type"]?.stringValue, let value = attribute["value"]?.scalarText else {
                    report.skipped["misp_malformed_attribute", default: 0] += 1
                    continue
                }
                if case .bool(false)? = attribute["to_ids"] {
                    report.skipped["misp_not_to_ids", default: 0] += 1
                    continue
                }
                guard Indicator.kind(named: type, value: value) != nil else {
                    report.skipped["unknown_type", default: 0] += 1
                    continue
                }
                guard let indicator = Indicator.make(type: type, value: value, provider: source, confidence: nil) else {
                    report.skipped["invalid_value", default: 0] += 1
                    continue
                }
                out.append(indicator)
            }
        }
    }
}

/// Enriches normalized events with the indicators they match.
public enum Enrichment {
    static let ipFields = ["source.ip", "destination.ip", "client.ip", "server.ip", "host.ip", "related.ip"]
    static let domainFields = ["dns.question.name", "url.domain", "destination.domain", "server.domain"]
    static let urlFields = ["url.original", "url.full"]
    static let hashFields = ["file.hash.md5", "file.hash.sha1", "file.hash.sha256", "process.hash.md5", "process.hash.sha1", "process.hash.sha256",
                             "dll.hash.md5", "dll.hash.sha1", "dll.hash.sha256"]
    enum FieldKind { case ip, domain, url, hash }
    static let split: [(keys: [String], path: String, kind: FieldKind)] =
        [(ipFields, FieldKind.ip), (domainFields, .domain), (urlFields, .url), (hashFields, .hash)].flatMap { fields, kind in
            fields.map { ($0.split(separator: ".").map(String.init), $0, kind) }
        }
    static let paths = KeyPathSet(split.map(\.keys))

    /// The paths enrichment reads, in flat schemas.
    static let flatPaths = FlatPathLookup(split.map(\.path))

    /// Whether `enrich` would change flat fields (`FlatFields`): whether a text it reads
    /// matches, read straight from the fields, without a document.
    public static func matches(_ fields: FlatFields, with set: IndicatorSet) -> Bool {
        guard set.count > 0 else { return false }
        var missedIPs: [String] = []
        var missedV4: [UInt32] = []
        for (index, position) in flatPaths.positions(in: fields.schema).enumerated() {
            guard let position else { continue }
            let kind = split[index].kind
            if let found = fields.containsText(position, where: { match($0, kind, in: set, missedV4: &missedV4, missedIPs: &missedIPs) }) {
                if found { return true }
                continue
            }
            // A literal of the schema (a number or an object matches nothing).
            switch fields.value(position) {
            case .string(let text)?:
                if match(text, kind, in: set, missedIPs: &missedIPs) != nil { return true }
            case .array(let items)?:
                for case .string(let text) in items where match(text, kind, in: set, missedIPs: &missedIPs) != nil { return true }
            default: continue
            }
        }
        return false
    }

    /// Whether the text `bytes` matches an indicator as a field of `kind`, as `match` on its
    /// `String` would. An IPv4 address is read from the bytes (most of an event's texts here),
    /// and a text of a kind the set holds none of is not read at all.
    static func match(_ bytes: UnsafeBufferPointer<UInt8>, _ kind: FieldKind, in set: IndicatorSet,
                      missedV4: inout [UInt32], missedIPs: inout [String]) -> Bool {
        switch kind {
        case .ip:
            if set.ips.isEmpty, set.networks.isEmpty { return false }
            if set.networks.isEmpty, let v4 = ByteScan.ipv4(bytes) {
                guard !missedV4.contains(v4) else { return false }
                if set.ips[IndicatorSet.AddressKey(v4: v4)] != nil { return true }
                missedV4.append(v4)
                return false
            }
        case .domain: if set.domains.isEmpty { return false }
        case .url: if set.urls.isEmpty { return false }
        case .hash: if set.hashes.isEmpty { return false }
        }
        return match(String(decoding: bytes, as: UTF8.self), kind, in: set, missedIPs: &missedIPs) != nil
    }

    /// The indicator `text` matches as a field of `kind`. Addresses already looked up without
    /// a match are skipped (`related.ip` repeats source and destination): a lookup in a million
    /// indicators is a cache miss or two.
    static func match(_ text: String, _ kind: FieldKind, in set: IndicatorSet, missedIPs: inout [String]) -> Indicator? {
        switch kind {
        case .ip:
            guard !missedIPs.contains(text) else { return nil }
            let hit = set.match(ip: text)
            if hit == nil { missedIPs.append(text) }
            return hit
        case .domain: return set.match(domain: text)
        case .url: return set.match(url: text)
        case .hash: return set.match(hash: text)
        }
    }

    /// Adds `threat.indicator.*` (the first match), `threat.enrichments` (every match) and the
    /// tag `ioc_match`; returns the number of matches.
    @discardableResult
    public static func enrich(_ fields: inout JSONObject, with set: IndicatorSet) -> Int {
        guard set.count > 0 else { return 0 }
        // One pass over the top level finds the paths' roots (21 paths looked up one by one
        // scanned it 21 times).
        let values = fields.values(at: paths)
        var matches: [(Indicator, String, String)] = []
        var missedIPs: [String] = []
        for (index, (_, path, kind)) in split.enumerated() {
            guard let value = values[index] else { continue }
            let texts: [String]
            switch value {
            case .array(let items): texts = items.compactMap(\.stringValue)
            case .string(let text): texts = [text]
            default: continue
            }
            for text in texts {
                if let hit = match(text, kind, in: set, missedIPs: &missedIPs) { matches.append((hit, path, text)) }
            }
        }
        guard !matches.isEmpty else { return 0 }
        func indicatorObject(_ indicator: Indicator) -> JSONObject {
            var object = JSONObject()
            object["type"] = .string(ecsType(indicator.kind))
            switch indicator.kind {
            case .ip, .cidr: object["ip"] = .string(indicator.value)
            case .domain: object["domain"] = .string(indicator.value)
            case .url: object["url"] = .object(JSONObject([("original", .string(indicator.value))]))
            case .md5, .sha1, .sha256: object["file"] = .object(JSONObject([("hash", .object(JSONObject([(indicator.kind.rawValue, .string(indicator.value))])))]))
            }
            object["provider"] = .string(indicator.provider)
            if let confidence = indicator.confidence { object["confidence"] = .string(confidence) }
            return object
        }
        var first = indicatorObject(matches[0].0)
        first["matched"] = .object(JSONObject([("field", .string(matches[0].1)), ("atomic", .string(matches[0].2))]))
        var threat = fields["threat"]?.objectValue ?? JSONObject()
        threat["indicator"] = .object(first)
        threat["enrichments"] = .array(matches.map { match in
            .object(JSONObject([("indicator", .object(indicatorObject(match.0))),
                                ("matched", .object(JSONObject([("field", .string(match.1)), ("atomic", .string(match.2)), ("type", .string("indicator_match_rule"))])))]))
        })
        fields["threat"] = .object(threat)
        var tags: [JSONValue] = []
        switch fields["tags"] {
        case .array(let list)?: tags = list
        case .string(let one)?: tags = [.string(one)]
        default: break
        }
        if !tags.contains(.string("ioc_match")) { tags.append(.string("ioc_match")) }
        fields["tags"] = .array(tags)
        return matches.count
    }

    static func ecsType(_ kind: Indicator.Kind) -> String {
        switch kind {
        case .ip, .cidr: return "ipv4-addr"
        case .domain: return "domain-name"
        case .url: return "url"
        case .md5, .sha1, .sha256: return "file"
        }
    }
}

/// The configured feed files and the set built from them, rebuilt when a file changes. Readers
/// on any thread always see a whole set; a feed that fails to load keeps the previous set.
public final class IntelFeeds: Sendable {
    public let paths: [String]
    let state = Mutex<(set: IndicatorSet, stamps: [String: String], reports: [FeedReport])>((IndicatorSet(), [:], []))

    public init(paths: [String]) {
        self.paths = paths
    }

    public var current: IndicatorSet { state.withLock { $0.set } }
    public var reports: [FeedReport] { state.withLock { $0.reports } }

    /// Reloads when any file's modification time or size changed (or on the first call).
    /// Returns true when a new set was installed.
    @discardableResult
    public func reloadIfChanged() -> Bool {
        var stamps: [String: String] = [:]
        for path in paths {
            let attributes = try? FileManager.default.attributesOfItem(atPath: path)
            let modified = (attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? -1
            let size = (attributes?[.size] as? NSNumber)?.int64Value ?? -1
            stamps[path] = "\(modified)/\(size)"
        }
        guard state.withLock({ $0.stamps != stamps }) else { return false }
        var indicators: [Indicator] = []
        var reports: [FeedReport] = []
        for path in paths {
            let (loaded, report) = FeedLoader.load(path: path)
            reports.append(report)
            if report.error != nil {
                state.withLock { $0.reports = reports }
                return false  // keep the previous set
            }
            indicators += loaded
        }
        let set = IndicatorSet(indicators)
        state.withLock { $0 = (set, stamps, reports) }
        return true
    }
}
