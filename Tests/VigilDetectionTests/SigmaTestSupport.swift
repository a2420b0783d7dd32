import VigilCore
@testable import VigilDetection

/// Builds small Sigma rules and normalized events for unit tests.
enum SigmaFixture {
    static func rule(
        _ detection: String, logsource: String = "product: windows\n    category: process_creation",
        configuration: SigmaMappingConfiguration = .default
    ) throws(RuleImportError) -> CompiledRule {
        let text = """
            title: test rule
            id: 11111111-2222-3333-4444-555555555555
            level: high
            logsource:
                \(logsource)
            detection:
            \(detection.split(separator: "\n", omittingEmptySubsequences: false).map { "    " + $0 }.joined(separator: "\n"))
            """
        let rules = try RuleImporter(configuration: configuration).importRules(yaml: text)
        return rules[0]
    }

    /// A Sysmon process creation event with the given EventData.
    static func processCreation(_ data: [String: String], eventID: String = "1", channel: String = "Microsoft-Windows-Sysmon/Operational") -> JSONObject {
        var eventData = JSONObject()
        for key in data.keys.sorted() { eventData[key] = .string(data[key]!) }
        return JSONObject([
            ("winlog", .object(JSONObject([
                ("event_id", .string(eventID)), ("channel", .string(channel)), ("event_data", .object(eventData)),
            ]))),
        ])
    }

    static func event(_ json: String) -> JSONObject {
        guard case .object(let object)? = try? JSONParser.parse(json) else { preconditionFailure("bad fixture JSON") }
        return object
    }
}
