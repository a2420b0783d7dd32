import VigilCore

/// Converts evtx_dump-style JSON (`{"Event":{"System":{...},"EventData":{...}}}`) to the
/// normalized Windows contract the parsing engine produces.
enum EVTXConverter {
    static let datasets: [String: String] = [
        "Microsoft-Windows-Sysmon/Operational": "windows.sysmon_operational",
        "Security": "windows.security",
        "System": "windows.system",
        "Application": "windows.application",
        "Microsoft-Windows-PowerShell/Operational": "windows.powershell_operational",
        "Windows PowerShell": "windows.powershell",
    ]

    /// Parses a file holding one or several concatenated JSON documents.
    static func events(fromFile bytes: [UInt8]) throws -> [JSONObject] {
        try JSONParser.parseConcatenated(bytes).compactMap { value in
            guard case .object(let root) = value, case .object(let event)? = root["Event"] else { return nil }
            return convert(event)
        }
    }

    static func text(_ value: JSONValue?) -> String? {
        switch value {
        case .object(let object)?: return object["#text"]?.scalarText
        case let value?: return value.scalarText
        case nil: return nil
        }
    }

    static func convert(_ event: JSONObject) -> JSONObject {
        let system = event["System"]?.objectValue ?? JSONObject()
        var eventData = JSONObject()
        for source in [event["EventData"], event["UserData"]] {
            guard case .object(let data)? = source else { continue }
            for (key, value) in data.members where key != "#attributes" {
                if case .object(let nested) = value, nested["#text"] == nil {
                    // UserData wraps its items in one element.
                    for (innerKey, innerValue) in nested.members where innerKey != "#attributes" {
                        if let text = text(innerValue) { eventData[innerKey] = .string(text) }
                    }
                } else if let text = text(value) {
                    eventData[key] = .string(text)
                }
            }
        }
        let eventID = text(system["EventID"]) ?? ""
        let channel = system["Channel"]?.scalarText ?? ""
        let provider = system["Provider"]?.objectValue?["#attributes"]?.objectValue?["Name"]?.scalarText ?? ""
        let computer = system["Computer"]?.scalarText ?? ""
        var out = JSONObject()
        if let time = system["TimeCreated"]?.objectValue?["#attributes"]?.objectValue?["SystemTime"]?.scalarText {
            out["@timestamp"] = .string(time)
        }
        out["event"] = .object(JSONObject([
            ("code", .string(eventID)),
            ("dataset", .string(datasets[channel] ?? "windows.\(channel.lowercased())")),
        ]))
        out["host"] = .object(JSONObject([("name", .string(computer))]))
        out["winlog"] = .object(JSONObject([
            ("event_id", .string(eventID)),
            ("channel", .string(channel)),
            ("provider_name", .string(provider)),
            ("computer_name", .string(computer)),
            ("event_data", .object(eventData)),
        ]))
        var process = JSONObject()
        if let image = eventData["Image"] ?? eventData["NewProcessName"] { process["executable"] = image }
        if let commandLine = eventData["CommandLine"] { process["command_line"] = commandLine }
        if !process.isEmpty { out["process"] = .object(process) }
        return out
    }
}
