import Foundation
import VigilCore

/// Windows event logs (Sysmon, Security, PowerShell, ...) as shipped by Winlogbeat / Elastic
/// Agent (`winlog.*`) or as evtx-style JSON (`{"Event":{"System":{...},"EventData":{...}}}`),
/// normalized to one shape: every EventData item verbatim (as a string) under
/// `winlog.event_data.<Name>`, `winlog.channel`, `winlog.event_id` (string),
/// `winlog.provider_name`, `winlog.computer_name`, `winlog.record_id`, `event.code`,
/// `host.name`, `event.dataset` (`windows.sysmon_operational`, `windows.security`, ...) and the
/// ECS fields Elastic derives for Sysmon (process, parent, file, registry, dns, network, hashes).
public enum WindowsEventPack {
    public static let sysmonChannel = "Microsoft-Windows-Sysmon/Operational"

    /// Normalizes a document in place when it is a Windows event; returns its timestamp
    /// (`System.TimeCreated`) when it had one, and whether it was recognised.
    public static func normalize(_ fields: inout JSONObject) -> (recognised: Bool, timestamp: EpochMillis?) {
        if case .object(let event)? = fields["Event"], case .object(let system)? = event["System"] {
            return (true, fromEvtx(event: event, system: system, into: &fields))
        }
        if case .object(let winlog)? = fields["winlog"], winlog["event_data"] != nil || winlog["channel"] != nil {
            derive(&fields)
            return (true, nil)
        }
        return (false, nil)
    }

    /// `#text` of an XML-derived value, or the value itself.
    static func text(_ value: JSONValue?) -> String? {
        guard let value else { return nil }
        if case .object(let object) = value { return text(object["#text"]) }
        return value.scalarText
    }

    static func attribute(_ value: JSONValue?, _ name: String) -> String? {
        guard case .object(let object)? = value, case .object(let attributes)? = object["#attributes"] else { return nil }
        return attributes[name]?.scalarText
    }

    static func fromEvtx(event: JSONObject, system: JSONObject, into fields: inout JSONObject) -> EpochMillis? {
        var winlog = JSONObject()
        var eventData = JSONObject()
        switch event["EventData"] ?? event["UserData"] {
        case .object(let data)?:
            // `{"Data":[{"#attributes":{"Name":"x"},"#text":"y"}]}` or `{"Name": value}`.
            if case .array(let items)? = data["Data"] {
                for item in items {
                    if let name = attribute(item, "Name") { eventData[name] = .string(text(item) ?? "") }
                }
            } else {
                for (key, value) in data.members where key != "#attributes" {
                    if case .object(let nested) = value, nested["#attributes"] == nil, nested["#text"] == nil {
                        for (k, v) in nested.members { eventData[k] = .string(text(v) ?? "") }
                    } else {
                        eventData[key] = .string(text(value) ?? "")
                    }
                }
            }
        default:
            break
        }
        let channel = text(system["Channel"]) ?? ""
        let eventID = text(system["EventID"]) ?? ""
        winlog["channel"] = .string(channel)
        winlog["event_id"] = .string(eventID)
        if let provider = attribute(system["Provider"], "Name") { winlog["provider_name"] = .string(provider) }
        if let guid = attribute(system["Provider"], "Guid") { winlog["provider_guid"] = .string(guid) }
        if let computer = text(system["Computer"]) { winlog["computer_name"] = .string(computer) }
        if let record = text(system["EventRecordID"]) { winlog["record_id"] = .string(record) }
        if let pid = attribute(system["Execution"], "ProcessID").flatMap({ Int64($0) }) { FieldNesting.set(.int(pid), at: "winlog.process.pid", in: &winlog) }
        if let sid = attribute(system["Security"], "UserID") { FieldNesting.set(.string(sid), at: "user.identifier", in: &winlog) }
        winlog["event_data"] = .object(eventData)
        let timestamp = attribute(system["TimeCreated"], "SystemTime").flatMap(Timestamp.parseRFC3339)
        fields.removeValue(forKey: "Event")
        fields["winlog"] = .object(winlog)
        derive(&fields)
        return timestamp
    }

    /// ECS fields from `winlog.*` (kept when the shipper already set them).
    static func derive(_ fields: inout JSONObject) {
        let doc = JSONValue.object(fields)
        func data(_ name: String) -> String? {
            guard let value = doc.value(atKeys: ["winlog", "event_data", name])?.scalarText, !value.isEmpty, value != "-" else { return nil }
            return value
        }
        func setIfMissing(_ value: JSONValue, _ path: String) {
            if JSONValue.object(fields).value(atPath: path) == nil { FieldNesting.set(value, at: path, in: &fields) }
        }
        let channel = doc.value(atKeys: ["winlog", "channel"])?.scalarText ?? ""
        let eventID = doc.value(atKeys: ["winlog", "event_id"])?.scalarText ?? ""
        // Winlogbeat ships event_id as a number in older versions: keep the contract (string).
        if !eventID.isEmpty { FieldNesting.set(.string(eventID), at: "winlog.event_id", in: &fields) }
        setIfMissing(.string(eventID), "event.code")
        if let computer = doc.value(atKeys: ["winlog", "computer_name"])?.scalarText { setIfMissing(.string(computer), "host.name") }
        let dataset: String
        switch channel {
        case sysmonChannel: dataset = "windows.sysmon_operational"
        case "Security": dataset = "windows.security"
        case "System": dataset = "windows.system"
        case "Application": dataset = "windows.application"
        case "Microsoft-Windows-PowerShell/Operational": dataset = "windows.powershell_operational"
        case "Windows PowerShell": dataset = "windows.powershell"
        default: dataset = "windows." + (channel.split(separator: "/").first.map { $0.lowercased().replacingOccurrences(of: " ", with: "_").replacingOccurrences(of: "microsoft-windows-", with: "") } ?? "event")
        }
        FieldNesting.set(.string(dataset), at: "event.dataset", in: &fields)
        setIfMissing(.string("windows"), "event.module")
        setIfMissing(.string("windows"), "host.os.type")

        let map: [(String, String)] = [
            ("Image", "process.executable"), ("CommandLine", "process.command_line"), ("CurrentDirectory", "process.working_directory"),
            ("ParentImage", "process.parent.executable"), ("ParentCommandLine", "process.parent.command_line"),
            ("TargetFilename", "file.path"), ("ImageLoaded", "dll.path"), ("TargetObject", "registry.path"),
            ("QueryName", "dns.question.name"), ("SourceIp", "source.ip"), ("DestinationIp", "destination.ip"),
            ("DestinationHostname", "destination.domain"), ("PipeName", "file.name"), ("NewProcessName", "process.executable"),
            ("ParentProcessName", "process.parent.executable"), ("TargetUserName", "user.target.name"),
        ]
        for (name, path) in map { if let value = data(name) { setIfMissing(.string(value), path) } }
        for (name, path) in [("ProcessId", "process.pid"), ("ParentProcessId", "process.parent.pid"), ("SourcePort", "source.port"), ("DestinationPort", "destination.port")] {
            if let text = data(name) {
                let number = text.hasPrefix("0x") ? Int64(text.dropFirst(2), radix: 16) : Int64(text)
                if let number { setIfMissing(.int(number), path) }
            }
        }
        if let protocolName = data("Protocol") { setIfMissing(.string(protocolName.lowercased()), "network.transport") }
        if let user = data("User") ?? data("SubjectUserName") {
            let parts = user.split(separator: "\\", maxSplits: 1)
            if parts.count == 2 {
                setIfMissing(.string(String(parts[0])), "user.domain")
                setIfMissing(.string(String(parts[1])), "user.name")
            } else {
                setIfMissing(.string(user), "user.name")
            }
        }
        if let executable = data("Image") ?? data("NewProcessName") {
            let name = executable.split(whereSeparator: { $0 == "\\" || $0 == "/" }).last.map(String.init) ?? executable
            setIfMissing(.string(name), "process.name")
        }
        if let hashes = data("Hashes") ?? data("Hash") {
            let target = ["7", "6"].contains(eventID) ? "dll.hash" : (["11", "15", "23", "26"].contains(eventID) ? "file.hash" : "process.hash")
            for pair in hashes.split(separator: ",") {
                let kv = pair.split(separator: "=", maxSplits: 1)
                guard kv.count == 2 else { continue }
                setIfMissing(.string(kv[1].lowercased()), "\(target).\(kv[0].lowercased())")
            }
        }
        if channel == sysmonChannel {
            let categories: [String: ([String], [String], String)] = [
                "1": (["process"], ["start"], "Process Create"), "3": (["network"], ["connection", "start"], "Network connection detected"),
                "5": (["process"], ["end"], "Process terminated"), "6": (["driver"], ["start"], "Driver loaded"),
                "7": (["process"], ["change"], "Image loaded"), "8": (["process"], ["change"], "CreateRemoteThread detected"),
                "10": (["process"], ["access"], "Process accessed"), "11": (["file"], ["creation"], "File created"),
                "12": (["configuration", "registry"], ["change"], "Registry object added or deleted"),
                "13": (["configuration", "registry"], ["change"], "Registry value set"),
                "15": (["file"], ["access"], "File stream created"), "17": (["file"], ["creation"], "Pipe Created"),
                "18": (["file"], ["access"], "Pipe Connected"), "22": (["network"], ["protocol", "info"], "Dns query"),
                "23": (["file"], ["deletion"], "File Delete archived"),
            ]
            if let (category, type, action) = categories[eventID] {
                setIfMissing(.array(category.map(JSONValue.string)), "event.category")
                setIfMissing(.array(type.map(JSONValue.string)), "event.type")
                setIfMissing(.string(action), "event.action")
            }
        }
    }
}
