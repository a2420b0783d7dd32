import Testing
import VigilCore
import VigilParsing

struct ProtocolPackTests {
    static let now: EpochMillis = Timestamp.parseRFC3339("2026-03-02T00:00:00Z") ?? 0

    @Test(arguments: PackSamples.all)
    func normalizesKeyFields(_ sample: PackSample) {
        let event = Normalizer().normalize(line: sample.line, receivedAt: Self.now)
        #expect(event.dataset == sample.dataset)
        #expect(event.fields["message"] == .string(sample.line))
        #expect(JSONValue.object(event.fields).value(atPath: "event.dataset") == .string(sample.dataset))
        #expect(!event.parseFailure)
        let doc = JSONValue.object(event.fields)
        for (path, want) in sample.expect {
            #expect(doc.value(atPath: path) == want, "\(path)")
        }
    }

    @Test func jsonDocumentNoPackKnowsIsLeftAlone() {
        let doc = JSONObject([("foo", .string("bar"))])
        #expect(Normalizer().normalize(document: doc, receivedAt: 0) == nil)
    }

    /// A Winlogbeat document's normalized fields take the document's place
    /// (`buildsOnDocument`): that is only right when they hold the whole document, so merging
    /// them into it, as other packs' fields are, changes nothing.
    @Test func winlogbeatFieldsAreTheDocumentWithThePacksFieldsSetIntoIt() throws {
        var documents: [String] = [
            // ECS fields the pack also sets, of other shapes: a scalar where it makes an object,
            // an object with members of its own, a number where it keeps text.
            ##"{"process":"x","event":{"code":1,"kind":"alert","created":"2026-01-01T00:00:00Z"},"related":{"user":["a"]},"tags":["t"],"winlog":{"channel":"Microsoft-Windows-Sysmon/Operational","event_id":3,"api":"wineventlog","event_data":{"Image":"C:\\a.exe","SourceIp":"10.0.0.1","DestinationIp":"10.0.0.2","DestinationPort":445,"Initiated":"true","User":"CORP\\bob"},"user":{"identifier":"S-1-5-18","name":"SYSTEM"}}}"##,
            // Dotted keys, nested by the pack as admission nests them.
            ##"{"winlog.channel":"Security","winlog":{"event_id":"4624","event_data":{"TargetUserName":"eve","IpAddress":"10.1.1.1"}},"host.name":"dc1"}"##,
            // EventData the shipper moved into ECS, restored from the message.
            ##"{"message":"Process Create:\nRuleName: -\nImage: C:\\b.exe\nCommandLine: b.exe -x\nUser: CORP\\amy","winlog":{"channel":"Microsoft-Windows-Sysmon/Operational","event_id":"1","event_data":{"ProcessId":"42"}}}"##,
        ]
        if let root = TestData.root {
            documents += TestData.lines(root.appendingPathComponent("vendors/sysmon/zircolite-winlogbeat/events.json"))
        }
        let normalizer = Normalizer()
        for text in documents {
            guard case .object(let document) = try JSONParser.parse(text) else { Issue.record("not an object: \(text)"); continue }
            let event = try #require(normalizer.normalize(document: document, receivedAt: Self.now))
            #expect(event.buildsOnDocument)
            #expect(event.dataset.hasPrefix("windows."))
            var merged = FieldNesting.nest(document)
            FieldNesting.merge(event.fields, into: &merged)
            #expect(merged == event.fields, "\(text.prefix(120))")
        }
        // Other packs' fields are merged into their document.
        let evtx = ##"{"Event":{"System":{"EventID":1,"Channel":"Microsoft-Windows-Sysmon/Operational"},"EventData":{"Image":"C:\\a.exe"}}}"##
        guard case .object(let document) = try JSONParser.parse(evtx) else { Issue.record("not an object"); return }
        #expect(normalizer.normalize(document: document, receivedAt: Self.now)?.buildsOnDocument == false)
    }

    /// Sysmon events' `event.category`, `event.type` and `event.action` by event id (made
    /// once per id and shared), and the fallbacks for ids the pack does not name; EventData
    /// given as numbers or with a repeated name is kept as text, the last value winning.
    @Test(arguments: [
        ("1", ["process"], ["start"], ["Process Create"]),
        ("3", ["network"], ["connection", "start", "protocol"], ["Network connection detected"]),
        ("5", ["process"], ["end"], ["Process terminated"]),
        ("6", ["driver"], ["change", "start"], ["Driver loaded"]),
        ("7", ["process", "library"], ["change", "start"], ["Image loaded", "load"]),
        ("10", ["process"], ["access"], ["Process accessed"]),
        ("11", ["file"], ["creation"], ["File created"]),
        ("13", ["configuration", "registry"], ["change"], ["Registry value set"]),
        ("17", ["file"], ["creation"], ["Pipe Created"]),
        ("22", ["network"], ["connection", "protocol", "info"], ["Dns query"]),
        ("23", ["file"], ["deletion"], ["File Delete archived"]),
        ("4", ["process"], ["info"], ["Sysmon service state changed"]),
        ("99", ["process"], ["info"], ["Sysmon event 99"]),
    ])
    func sysmonEventsAreCategorizedByID(_ id: String, _ category: [String], _ type: [String], _ action: [String]) throws {
        let text = ##"{"winlog":{"channel":"Microsoft-Windows-Sysmon/Operational","event_id":"ID","event_data":{"Image":"C:\\a.exe","ProcessId":42,"RuleName":"r","RuleName":"s"}}}"##
        guard case .object(let document) = try JSONParser.parse(text.replacingOccurrences(of: "ID", with: id)) else { Issue.record("not an object"); return }
        let event = try #require(Normalizer().normalize(document: document, receivedAt: Self.now))
        let fields = JSONValue.object(event.fields)
        #expect(fields.value(atPath: "event.category") == .array(category.map { .string($0) }))
        #expect(fields.value(atPath: "event.type") == .array(type.map { .string($0) }))
        #expect(fields.value(atPath: "event.action") == .array(action.map { .string($0) }))
        #expect(fields.value(atPath: "winlog.event_data.ProcessId") == .string("42"))
        #expect(fields.value(atPath: "winlog.event_data.RuleName") == .string("s"))
        #expect(fields.value(atPath: "winlog.event_data")?.objectValue?.count == 3)
        #expect(fields.value(atPath: "rule.name") == .string("r"))
    }
}
