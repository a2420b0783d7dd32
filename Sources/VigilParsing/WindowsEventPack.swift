import Foundation
public import VigilCore

/// Windows event logs, Sysmon first: Winlogbeat / Elastic Agent documents (`winlog.*`),
/// evtx-style JSON (`{"Event":{"System":{...},"EventData":{...}}}`) and the XML rendering.
///
/// Contract (the Sigma engine relies on it): every EventData item is kept verbatim, as a
/// string, under `winlog.event_data.<Name>`, with `winlog.event_id` (string), `winlog.channel`,
/// `winlog.provider_name`, `winlog.computer_name`, `winlog.record_id`, `event.code`,
/// `host.name` (= Computer). Dataset `windows.sysmon_operational` for Sysmon,
/// `windows.security` for Security, `windows.<channel, lower-cased, separators as _>` otherwise.
public struct WindowsEventPack: ProtocolPack {
    public let name = "windows"
    public init() {}

    /// The parts of an event every input form yields.
    struct WinEvent {
        var eventID = ""
        var channel: String?
        var provider: String?
        var providerGUID: String?
        var computer: String?
        var recordID: String?
        var timeCreated: String?
        var userID: String?
        var processID: String?
        var threadID: String?
        var level: String?
        var task: String?
        var version: String?
        private(set) var data: [(String, String)] = []
        /// An EventData name with a byte ≥ 0x80: names then compare as `String`s (canonical
        /// equivalence), not by length and bytes.
        private var nonASCIINames = false

        /// Room for `count` more items: a Winlogbeat document's are known at once, and growing
        /// one append at a time reallocated the list four times for Sysmon's seven.
        mutating func reserveData(_ count: Int) { data.reserveCapacity(data.count + count) }

        mutating func addData(_ name: String, _ value: String) {
            if !nonASCIINames, name.utf8.contains(where: { $0 >= 0x80 }) { nonASCIINames = true }
            data.append((name, value))
        }

        /// Whether two names, one of them an item's, are the same: ASCII names are only with
        /// the same length, so most compare by length alone.
        func sameName(_ a: String, _ b: String) -> Bool {
            (nonASCIINames || a.utf8.count == b.utf8.count) && a == b
        }

        /// The first item named `key` (an ASCII literal), unless it is a placeholder.
        subscript(_ key: String) -> String? {
            guard let v = data.first(where: { sameName($0.0, key) })?.1, !ECSBuilder.isPlaceholder(v) else { return nil }
            return v
        }
    }

    public func normalize(_ input: PackInput) -> PackResult? {
        if let doc = input.document {
            if let winlog = doc["winlog"]?.objectValue { return fromWinlogbeat(doc, winlog) }
            if let event = doc["Event"]?.objectValue { return fromEvtxJSON(event) }
            return nil
        }
        guard let start = input.body.byteRange(of: "<Event") else { return nil }
        guard let xml = TinyXMLReader.parse(String(input.body[start.lowerBound...])), xml.name == "Event" else { return nil }
        return fromXML(xml)
    }

    // MARK: - Input forms

    private func fromXML(_ xml: XMLElement) -> PackResult? {
        var e = WinEvent()
        let system = xml.child("System")
        e.eventID = system?.child("EventID")?.text.trimmedASCII ?? ""
        e.provider = system?.child("Provider")?.attributes["Name"]
        e.providerGUID = system?.child("Provider")?.attributes["Guid"]
        e.channel = system?.child("Channel")?.text
        e.computer = system?.child("Computer")?.text
        e.recordID = system?.child("EventRecordID")?.text
        e.timeCreated = system?.child("TimeCreated")?.attributes["SystemTime"]
        e.userID = system?.child("Security")?.attributes["UserID"]
        e.processID = system?.child("Execution")?.attributes["ProcessID"]
        e.threadID = system?.child("Execution")?.attributes["ThreadID"]
        e.version = system?.child("Version")?.text
        for data in (xml.child("EventData") ?? xml.child("UserData"))?.children ?? [] {
            if let name = data.attributes["Name"] { e.addData(name, data.text) } else { e.addData(data.name, data.text) }
        }
        guard !e.eventID.isEmpty else { return nil }
        return map(e, base: JSONObject(), parseFailure: system == nil)
    }

    private func fromEvtxJSON(_ event: JSONObject) -> PackResult? {
        let system = event["System"]?.objectValue ?? JSONObject()
        func text(_ v: JSONValue?) -> String? {
            guard let v else { return nil }
            if let s = v.scalarText { return s }
            if case .object(let o) = v { return o["#text"]?.scalarText ?? o["Value"]?.scalarText }
            return nil
        }
        func attr(_ key: String, _ name: String) -> String? {
            guard case .object(let o)? = system[key] else { return nil }
            return (o["#attributes"]?.objectValue?[name] ?? o[name])?.scalarText
        }
        var e = WinEvent()
        guard let id = text(system["EventID"]) else { return nil }
        e.eventID = id
        e.provider = attr("Provider", "Name")
        e.providerGUID = attr("Provider", "Guid")
        e.channel = text(system["Channel"])
        e.computer = text(system["Computer"])
        e.recordID = text(system["EventRecordID"])
        e.timeCreated = attr("TimeCreated", "SystemTime")
        e.userID = attr("Security", "UserID")
        e.processID = attr("Execution", "ProcessID")
        e.threadID = attr("Execution", "ThreadID")
        e.version = text(system["Version"])
        let dataValue = event["EventData"] ?? event["UserData"]
        switch dataValue {
        case .object(let o)?:
            if case .array(let items)? = o["Data"] {
                for item in items {
                    guard case .object(let d) = item else { continue }
                    let name = (d["#attributes"]?.objectValue?["Name"] ?? d["Name"])?.scalarText
                    if let name { e.addData(name, d["#text"]?.scalarText ?? "") }
                }
            } else {
                for (k, v) in o.members where k != "#attributes" { e.addData(k, Self.verbatim(v)) }
            }
        default: break
        }
        return map(e, base: JSONObject(), parseFailure: false)
    }

    /// Values as strings (Sigma compares text): numbers in JSON spelling, arrays joined.
    static func verbatim(_ v: JSONValue) -> String {
        if let s = v.scalarText { return s }
        if case .array(let a) = v { return a.compactMap(\.scalarText).joined(separator: ",") }
        if case .null = v { return "" }
        return JSONWriter.string(v)
    }

    private func fromWinlogbeat(_ doc: JSONObject, _ winlog: JSONObject) -> PackResult? {
        var e = WinEvent()
        guard let id = winlog["event_id"]?.scalarText ?? (doc["event"]?.objectValue?["code"]?.scalarText) else { return nil }
        e.eventID = id
        e.channel = winlog["channel"]?.scalarText
        e.provider = winlog["provider_name"]?.scalarText
        e.providerGUID = winlog["provider_guid"]?.scalarText
        e.computer = winlog["computer_name"]?.scalarText
        e.recordID = winlog["record_id"]?.scalarText
        e.timeCreated = winlog["time_created"]?.scalarText
        e.userID = winlog["user"]?.objectValue?["identifier"]?.scalarText
        e.task = winlog["task"]?.scalarText
        let data = winlog["event_data"]?.objectValue
        if let data {
            e.reserveData(data.count)
            for (k, v) in data.members { e.addData(k, Self.verbatim(v)) }
        }
        // Winlogbeat's sysmon module moves some EventData into ECS; the rendered message keeps
        // them all as `Name: value` lines, so restore the missing ones from there.
        if let message = doc["message"]?.stringValue {
            for line in message.split(separator: "\n").dropFirst() {
                guard let colon = line.byteRange(of: ": ") else { continue }
                let key = String(line[..<colon.lowerBound])
                guard !key.isEmpty, !key.contains(" "), !e.data.contains(where: { $0.0 == key }) else { continue }
                e.addData(key, String(line[colon.upperBound...]).trimmingSuffix("\r"))
            }
        }
        var result = map(e, base: FieldNesting.nest(doc), parseFailure: false, eventData: data)
        result.buildsOnDocument = true
        return result
    }

    // MARK: - ECS

    static func dataset(channel: String?) -> String {
        guard let channel, !channel.isEmpty else { return "windows.unknown" }
        if channel == "Microsoft-Windows-Sysmon/Operational" { return "windows.sysmon_operational" }
        if channel == "Security" { return "windows.security" }
        var c = channel.lowercased()
        if c.hasPrefix("microsoft-windows-") { c.removeFirst("microsoft-windows-".count) }
        return "windows." + String(c.map { $0.isLetter || $0.isNumber ? $0 : "_" })
    }

    static let sysmonActions: [String: String] = [
        "1": "Process Create", "2": "File creation time changed", "3": "Network connection detected",
        "4": "Sysmon service state changed", "5": "Process terminated", "6": "Driver loaded", "7": "Image loaded",
        "8": "CreateRemoteThread detected", "9": "RawAccessRead detected", "10": "Process accessed",
        "11": "File created", "12": "Registry object added or deleted", "13": "Registry value set",
        "14": "Registry object renamed", "15": "File stream created", "16": "Sysmon config state changed",
        "17": "Pipe Created", "18": "Pipe Connected", "19": "WmiEventFilter activity detected",
        "20": "WmiEventConsumer activity detected", "21": "WmiEventConsumerToFilter activity detected",
        "22": "Dns query", "23": "File Delete archived", "24": "Clipboard changed", "25": "Process Tampering",
        "26": "File Delete logged",
    ]

    /// `original`: the EventData object the items were read from, if any.
    private func map(_ e: WinEvent, base: JSONObject, parseFailure: Bool, eventData original: JSONObject? = nil) -> PackResult {
        var b = ECSBuilder(base)
        let dataset = Self.dataset(channel: e.channel)
        // As `eventData[k] = .string(v)` for each item (a repeated name keeps its first place
        // and its last value), comparing names as the subscript does. When the items are the
        // original object's members, all strings, each name once, that is the object itself.
        var eventData: JSONObject
        if let original, Self.isItems(original, of: e) {
            eventData = original
        } else {
            eventData = JSONObject()
            eventData.members.reserveCapacity(e.data.count)
            for (k, v) in e.data {
                if let i = eventData.members.firstIndex(where: { e.sameName($0.key, k) }) {
                    eventData.members[i].value = .string(v)
                } else {
                    eventData.members.append((k, .string(v)))
                }
            }
        }
        // `winlog.*` is assembled apart and set once: the same as setting each path into the
        // builder (which starts as `base`, whose first `winlog` member a path would reach),
        // without finding `winlog` and taking its object out of the tree for every path.
        var winlog = JSONObject()
        if case .object(let existing)? = base["winlog"] { winlog = existing }
        // Copied once, with room for what is added.
        winlog.members.reserveCapacity(winlog.count + 10)
        func set(_ path: String, _ value: JSONValue?) {
            if let value { FieldNesting.set(value, at: path, in: &winlog) }
        }
        /// `set` for a key without dots: the member is replaced, or appended.
        func put(_ key: String, _ value: JSONValue) {
            if let index = winlog.members.firstIndex(where: { $0.key == key }) {
                winlog.members[index].value = value
            } else {
                winlog.members.append((key, value))
            }
        }
        func put(_ key: String, string: String?) {
            if let string, !ECSBuilder.isPlaceholder(string) { put(key, .string(string)) }
        }
        put("event_data", .object(eventData))
        put("event_id", .string(e.eventID))
        put("channel", string: e.channel)
        put("provider_name", string: e.provider)
        put("provider_guid", string: e.providerGUID)
        put("computer_name", string: e.computer)
        put("record_id", string: e.recordID)
        if let user = e.userID, !ECSBuilder.isPlaceholder(user) { set("user.identifier", .string(user)) }
        set("process.pid", e.processID.flatMap(ECSBuilder.parseInt).map { .int($0) })
        set("process.thread.id", e.threadID.flatMap(ECSBuilder.parseInt).map { .int($0) })
        b.set("winlog", .object(winlog))
        b.set("event.code", .string(e.eventID))
        b.set("event.provider", string: e.provider)
        b.set("event.kind", string: "event")
        b.set("host.name", string: e.computer)
        if let user = e["User"] { setUser(user, &b) }
        if dataset == "windows.sysmon_operational" { sysmon(e, &b) } else if e.channel == "Security" { security(e, &b) }
        var ts: EpochMillis?
        if let utc = e["UtcTime"], let t = Timestamp.parseRFC3339(utc.replacingByte(UInt8(ascii: " "), with: UInt8(ascii: "T")) + "Z") { ts = t }
        if ts == nil, let created = e.timeCreated { ts = Timestamp.parseRFC3339(created) }
        // One by one: an array literal of the two paths was an allocation per event.
        b.append("related.ip", b.string("source.ip"))
        b.append("related.ip", b.string("destination.ip"))
        if let u = b.string("user.name") { b.append("related.user", u) }
        return PackResult(dataset: dataset, fields: b.object, timestamp: ts, parseFailure: parseFailure)
    }

    /// Whether `object`'s members are the event's items exactly: as many, all strings (which
    /// `verbatim` keeps as they are), each name once.
    static func isItems(_ object: JSONObject, of e: WinEvent) -> Bool {
        guard object.count == e.data.count else { return false }
        return object.members.withUnsafeBufferPointer { members in
            for i in 0..<members.count {
                guard case .string = members[i].value else { return false }
                for j in 0..<i where e.sameName(members[j].key, members[i].key) { return false }
            }
            return true
        }
    }

    private func setUser(_ user: String, _ b: inout ECSBuilder) {
        if let slash = user.utf8.firstIndex(of: UInt8(ascii: "\\")) {
            b.set("user.domain", string: String(user[..<slash]))
            b.set("user.name", string: String(user[user.utf8.index(after: slash)...]))
        } else {
            b.set("user.name", string: user)
        }
    }

    /// `split(separator: "\\", maxSplits: 1)` when it makes two parts: leading backslashes
    /// skipped, the text up to the next backslash, and everything after that one backslash
    /// (when there is anything); by byte.
    static func registryHiveAndKey(_ path: String) -> (String, String)? {
        let utf8 = path.utf8
        let backslash = UInt8(ascii: "\\")
        guard let start = utf8.firstIndex(where: { $0 != backslash }),
              let cut = utf8[start...].firstIndex(of: backslash) else { return nil }
        let rest = utf8.index(after: cut)
        guard rest < utf8.endIndex else { return nil }
        return (String(path[start..<cut]), String(path[rest...]))
    }

    /// The last non-empty part between backslashes (`split(separator: "\\").last`), by byte.
    static func lastRegistryPart(_ path: String) -> String? {
        let utf8 = path.utf8
        let backslash = UInt8(ascii: "\\")
        guard let last = utf8.lastIndex(where: { $0 != backslash }) else { return nil }
        let end = utf8.index(after: last)
        let start = utf8[..<end].lastIndex(of: backslash).map { utf8.index(after: $0) } ?? utf8.startIndex
        return String(path[start..<end])
    }

    /// What follows the last `\\` or `/` (trailing separators ignored), found by byte in
    /// the string's bytes (walking `String.UTF8View` indices cost ten times as much).
    static func basename(_ path: String) -> String {
        var contiguous = path
        return contiguous.withUTF8 { bytes -> String in
            let backslash = UInt8(ascii: "\\"), slash = UInt8(ascii: "/")
            var end = bytes.count
            while end > 0, bytes[end - 1] == backslash || bytes[end - 1] == slash { end -= 1 }
            var start = end
            while start > 0, bytes[start - 1] != backslash, bytes[start - 1] != slash { start -= 1 }
            // Separators are ASCII: the cut falls on a character boundary.
            guard start < end, start > 0 || end < bytes.count else { return path }
            return String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self)
        }
    }

    /// The paths `setProcess` sets under a prefix, spelled out once.
    struct ProcessPaths {
        let executable, name, pid, entityID: String
        init(_ prefix: String) {
            executable = prefix + ".executable"
            name = prefix + ".name"
            pid = prefix + ".pid"
            entityID = prefix + ".entity_id"
        }
        static let process = ProcessPaths("process"), parent = ProcessPaths("process.parent"), target = ProcessPaths("process.target")
    }

    private func setProcess(_ paths: ProcessPaths, image: String?, pid: String?, guid: String?, _ b: inout ECSBuilder) {
        guard let image else { return }
        b.set(paths.executable, string: image)
        b.set(paths.name, string: Self.basename(image))
        b.set(paths.pid, int: pid)
        b.set(paths.entityID, string: guid)
    }

    private func setHashes(_ hashes: String?, prefixes: [String], _ b: inout ECSBuilder) {
        guard let hashes else { return }
        for item in hashes.split(separator: ",") {
            let kv = item.split(separator: "=", maxSplits: 1)
            guard kv.count == 2 else { continue }
            let algo = kv[0].lowercased(), value = kv[1].lowercased()
            for p in prefixes {
                if algo == "imphash" { b.set("\(p).pe.imphash", string: value) } else { b.set("\(p).hash.\(algo)", string: value) }
            }
            b.append("related.hash", value)
        }
    }

    private func setFile(_ path: String?, _ b: inout ECSBuilder) {
        guard let path else { return }
        b.set("file.path", string: path)
        let name = Self.basename(path)
        b.set("file.name", string: name)
        // By byte: separators and the dot are ASCII, so the cuts fall on character boundaries.
        if let cut = path.utf8.lastIndex(where: { $0 == UInt8(ascii: "\\") || $0 == UInt8(ascii: "/") }) { b.set("file.directory", string: String(path[..<cut])) }
        if let dot = name.utf8.lastIndex(of: UInt8(ascii: ".")), dot != name.startIndex { b.set("file.extension", string: name[name.utf8.index(after: dot)...].lowercased()) }
    }

    /// A Sysmon event id's `event.category` and `event.type`.
    static func sysmonCategoryAndType(_ id: String) -> (category: [String], type: [String]) {
        switch id {
        case "1": (["process"], ["start"])
        case "3": (["network"], ["connection", "start", "protocol"])
        case "5": (["process"], ["end"])
        case "6": (["driver"], ["change", "start"])
        case "7": (["process", "library"], ["change", "start"])
        case "8": (["process"], ["change"])
        case "10": (["process"], ["access"])
        case "2", "11", "15", "23", "26": (["file"], id == "11" ? ["creation"] : id == "23" || id == "26" ? ["deletion"] : id == "2" ? ["change"] : ["access"])
        case "12", "13", "14": (["configuration", "registry"], ["change"])
        case "17", "18": (["file"], [id == "17" ? "creation" : "access"])
        case "22": (["network"], ["connection", "protocol", "info"])
        default: (["process"], ["info"])
        }
    }

    /// Per known Sysmon event id, its `event.category`, `event.type` and `event.action`
    /// values, made once: as arrays made for every event they were a dozen allocations.
    static let sysmonShapes: [String: (category: JSONValue, type: JSONValue, action: JSONValue)] = {
        func array(_ items: [String]) -> JSONValue { .array(items.map { .string($0) }) }
        var shapes: [String: (category: JSONValue, type: JSONValue, action: JSONValue)] = [:]
        for (id, name) in sysmonActions {
            let (category, type) = sysmonCategoryAndType(id)
            shapes[id] = (array(category), array(type), array(id == "7" ? [name, "load"] : [name]))
        }
        return shapes
    }()

    private func sysmon(_ e: WinEvent, _ b: inout ECSBuilder) {
        let id = e.eventID
        setProcess(.process, image: e["Image"], pid: e["ProcessId"], guid: e["ProcessGuid"], &b)
        switch id {
        case "1":
            b.set("process.command_line", string: e["CommandLine"])
            b.set("process.working_directory", string: e["CurrentDirectory"])
            b.set("process.pe.original_file_name", string: e["OriginalFileName"])
            b.set("process.pe.company", string: e["Company"])
            b.set("process.pe.description", string: e["Description"])
            setProcess(.parent, image: e["ParentImage"], pid: e["ParentProcessId"], guid: e["ParentProcessGuid"], &b)
            b.set("process.parent.command_line", string: e["ParentCommandLine"])
            setHashes(e["Hashes"], prefixes: ["process"], &b)
        case "3":
            b.set("source.ip", ip: e["SourceIp"])
            b.set("source.port", int: e["SourcePort"])
            b.set("source.domain", string: e["SourceHostname"])
            b.set("destination.ip", ip: e["DestinationIp"])
            b.set("destination.port", int: e["DestinationPort"])
            b.set("destination.domain", string: e["DestinationHostname"])
            b.set("network.transport", string: e["Protocol"]?.lowercased())
            b.set("network.protocol", string: e["DestinationPortName"])
            if let initiated = e["Initiated"] { b.set("network.direction", string: initiated == "true" ? "egress" : "ingress") }
        case "6", "7":
            let loaded = e["ImageLoaded"]
            setFile(loaded, &b)
            b.set("dll.path", string: id == "7" ? loaded : nil)
            b.set("dll.name", string: id == "7" ? loaded.map(Self.basename) : nil)
            b.set("dll.code_signature.status", string: e["Signed"].flatMap { $0 == "true" ? nil : $0 })
            b.set("file.code_signature.signed", e["Signed"].map { .bool($0 == "true") })
            b.set("file.pe.original_file_name", string: e["OriginalFileName"])
            setHashes(e["Hashes"], prefixes: id == "7" ? ["file", "dll"] : ["file"], &b)
        case "8", "10":
            setProcess(.process, image: e["SourceImage"], pid: e["SourceProcessId"], guid: e["SourceProcessGUID"] ?? e["SourceProcessGuid"], &b)
            b.set("winlog.event_data.TargetImage", string: e["TargetImage"])
            setProcess(.target, image: e["TargetImage"], pid: e["TargetProcessId"], guid: e["TargetProcessGUID"] ?? e["TargetProcessGuid"], &b)
        case "2", "11", "15", "23", "26":
            setFile(e["TargetFilename"], &b)
            setHashes(e["Hashes"] ?? e["Hash"], prefixes: ["file"], &b)
        case "12", "13", "14":
            if let target = e["TargetObject"] {
                b.set("registry.path", string: target)
                if let (hive, key) = Self.registryHiveAndKey(target) {
                    b.set("registry.hive", string: hive)
                    b.set("registry.key", string: key)
                }
                b.set("registry.value", string: Self.lastRegistryPart(target))
            }
            if let details = e["Details"] { b.set("registry.data.strings", strings: [details]) }
        case "17", "18":
            b.set("file.name", string: e["PipeName"])
        case "22":
            b.set("dns.question.name", string: e["QueryName"])
            b.set("network.protocol", string: "dns")
            if let results = e["QueryResults"] {
                let ips = results.split(separator: ";").compactMap { r -> String? in
                    let v = r.hasPrefix("::ffff:") ? String(r.dropFirst(7)) : String(r)
                    return ECSBuilder.isIP(v) ? v : nil
                }
                if !ips.isEmpty { b.set("dns.resolved_ip", strings: ips) }
            }
        default:
            break
        }
        if let shape = Self.sysmonShapes[id] {
            b.set("event.category", shape.category)
            b.set("event.type", shape.type)
            b.set("event.action", shape.action)
        } else {
            let (category, type) = Self.sysmonCategoryAndType(id)
            b.set("event.category", strings: category)
            b.set("event.type", strings: type)
            b.set("event.action", strings: [e.task ?? "Sysmon event \(id)"])
        }
        b.set("event.module", string: "sysmon")
        b.set("rule.name", string: e["RuleName"])
    }

    private func security(_ e: WinEvent, _ b: inout ECSBuilder) {
        switch e.eventID {
        case "4688":
            b.set("event.category", strings: ["process"])
            b.set("event.type", strings: ["start"])
            b.set("event.action", string: "created-process")
            setProcess(.process, image: e["NewProcessName"], pid: e["NewProcessId"].map(Self.hexToDecimal), guid: nil, &b)
            b.set("process.command_line", string: e["CommandLine"])
            setProcess(.parent, image: e["ParentProcessName"], pid: e["ProcessId"].map(Self.hexToDecimal), guid: nil, &b)
            b.set("user.name", string: e["SubjectUserName"])
            b.set("user.domain", string: e["SubjectDomainName"])
        case "4624", "4625":
            let ok = e.eventID == "4624"
            b.set("event.category", strings: ["authentication"])
            b.set("event.type", strings: [ok ? "start" : "info"])
            b.set("event.action", string: ok ? "logged-in" : "logon-failed")
            b.set("event.outcome", string: ok ? "success" : "failure")
            b.set("user.name", string: e["TargetUserName"])
            b.set("user.domain", string: e["TargetDomainName"])
            b.set("source.ip", ip: e["IpAddress"])
            b.set("source.port", int: e["IpPort"])
            b.set("source.domain", string: e["WorkstationName"])
        default:
            b.set("user.name", string: e["TargetUserName"] ?? e["SubjectUserName"])
        }
    }

    /// Security log pids are hex (`0x1a4`).
    static func hexToDecimal(_ s: String) -> String {
        guard s.hasPrefix("0x"), let v = Int64(s.dropFirst(2), radix: 16) else { return s }
        return String(v)
    }
}
