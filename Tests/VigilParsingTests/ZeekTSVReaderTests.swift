import Foundation
import Testing
import VigilCore
import VigilParsing

struct ZeekTSVReaderTests {
    static let tsv = """
    #separator \\x09
    #set_separator\t,
    #empty_field\t(empty)
    #unset_field\t-
    #path\tdns
    #fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\ttrans_id\trtt\tquery\tqtype_name\tAA\tanswers\tTTLs
    #types\ttime\tstring\taddr\tport\taddr\tport\tenum\tcount\tinterval\tstring\tstring\tbool\tvector[string]\tvector[interval]
    1521911720.865716\tCqKst53mF3det3eDV9\t10.47.1.100\t41772\t10.0.0.100\t53\tudp\t36329\t0.000870\tise.wrccdc.org\tA\tF\tise.wrccdc.cpp.edu,134.71.3.16\t2230.000000,41830.000000
    1521911720.865716\tCqKst53mF3det3eDV9\t10.47.1.100\t41772\t10.0.0.100\t53\tudp\t36329\t-\tise.wrccdc.org\tA\tF\t(empty)\t-
    """

    @Test func readsTypedFieldsAndUnsetValues() {
        var reader = ZeekTSVReader()
        let events = Self.tsv.split(separator: "\n").compactMap { reader.normalize(line: String($0), receivedAt: 0) }
        #expect(events.count == 2)
        let doc = JSONValue.object(events[0].fields)
        #expect(events[0].dataset == "zeek.dns")
        #expect(doc.value(atPath: "source.ip") == .string("10.47.1.100"))
        #expect(doc.value(atPath: "destination.port") == .int(53))
        #expect(doc.value(atPath: "dns.question.name") == .string("ise.wrccdc.org"))
        #expect(doc.value(atPath: "zeek.dns.answers") == .array([.string("ise.wrccdc.cpp.edu"), .string("134.71.3.16")]))
        #expect(events[0].timestamp == 1_521_911_720_865)
        let second = JSONValue.object(events[1].fields)
        #expect(second.value(atPath: "zeek.dns.rtt") == nil)
        #expect(second.value(atPath: "zeek.dns.answers") == .array([]))
    }

    @Test func tsvAndJSONFormsOfTheSameRecordNormalizeIdentically() {
        var reader = ZeekTSVReader()
        let tsvEvent = Self.tsv.split(separator: "\n").compactMap { reader.normalize(line: String($0), receivedAt: 0) }.first
        let json = #"{"_path":"dns","_write_ts":"2018-03-24T17:15:20.866586Z","ts":"2018-03-24T17:15:20.865716Z","uid":"CqKst53mF3det3eDV9","id.orig_h":"10.47.1.100","id.orig_p":41772,"id.resp_h":"10.0.0.100","id.resp_p":53,"proto":"udp","trans_id":36329,"rtt":0.0008699893951416016,"query":"ise.wrccdc.org","qtype_name":"A","AA":false,"answers":["ise.wrccdc.cpp.edu","134.71.3.16"],"TTLs":[2230.0,41830.0]}"#
        let jsonEvent = Normalizer().normalize(line: json, receivedAt: 0)
        var a = tsvEvent?.fields ?? JSONObject(), b = jsonEvent.fields
        a["message"] = nil
        b["message"] = nil
        #expect(a == b)
        #expect(tsvEvent?.timestamp == jsonEvent.timestamp)
    }

    /// zed-sample-data: record N of the TSV file equals record N of the NDJSON file.
    @Test(arguments: ["dns", "weird", "notice", "ssh"])
    func zedSampleDataTSVMatchesJSONInSharedTestdata(_ log: String) throws {
        guard let root = TestData.root else {
            print("SKIP zedSampleData: ../shared/testdata not found")
            return
        }
        let base = root.appendingPathComponent("vendors/zeek/zed-sample-data")
        guard let tsv = TestData.gunzip(base.appendingPathComponent("zeek-default/\(log).log.gz")),
              let json = TestData.gunzip(base.appendingPathComponent("zeek-json/\(log).json.gz")) else {
            print("SKIP zedSampleData: gzip not available")
            return
        }
        var reader = ZeekTSVReader()
        let limit = 300
        var tsvEvents: [NormalizedEvent] = []
        for line in tsv.split(separator: "\n") {
            if let e = reader.normalize(line: String(line), receivedAt: 0) { tsvEvents.append(e) }
            if tsvEvents.count == limit { break }
        }
        let normalizer = Normalizer()
        let jsonEvents = json.split(separator: "\n").prefix(tsvEvents.count).map { normalizer.normalize(line: String($0), receivedAt: 0) }
        #expect(tsvEvents.count == jsonEvents.count && !tsvEvents.isEmpty)
        var mismatches = 0
        for (t, j) in zip(tsvEvents, jsonEvents) {
            var a = t.fields, b = j.fields
            a["message"] = nil
            b["message"] = nil
            if a != b || t.timestamp != j.timestamp {
                mismatches += 1
                if mismatches <= 3 { print("  \(log) TSV: \(JSONWriter.string(.object(a)))\n  \(log) JSON: \(JSONWriter.string(.object(b)))") }
            }
        }
        #expect(mismatches == 0)
    }

    @Test func btestBaselinesParseInSharedTestdata() throws {
        guard let root = TestData.root else { print("SKIP btest: no testdata"); return }
        let base = root.appendingPathComponent("vendors/zeek/zeek-btest-baseline")
        let dirs = (try? FileManager.default.contentsOfDirectory(atPath: base.path)) ?? []
        var count = 0
        for dir in dirs {
            for file in (try? FileManager.default.contentsOfDirectory(atPath: base.appendingPathComponent(dir).path)) ?? [] {
                var reader = ZeekTSVReader()
                for line in TestData.lines(base.appendingPathComponent("\(dir)/\(file)")) {
                    if let e = reader.normalize(line: line, receivedAt: 0) {
                        count += 1
                        #expect(e.dataset == "zeek.\(file.replacingOccurrences(of: ".log", with: ""))")
                        #expect(JSONValue.object(e.fields).value(atPath: "source.ip") != nil)
                    }
                }
            }
        }
        #expect(count > 0)
    }
}
