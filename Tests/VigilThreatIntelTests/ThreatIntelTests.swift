import Foundation
import Testing
import VigilCore
@testable import VigilThreatIntel

/// Feeds in three formats, matching by kind, the enrichment's shape, and reload on change.
struct ThreatIntelTests {
    func write(_ text: String, _ name: String) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("intel-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let url = dir.appendingPathComponent(name)
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    /// A set of addresses only (no CIDR) looks IPv4 up by its number; it must find what the
    /// 16-byte form finds, IPv4-mapped IPv6 and zones included.
    @Test func addressesWithoutNetworksMatchAsTheirSixteenByteForm() throws {
        let values = ["10.1.2.3", "::ffff:10.9.9.9", "2001:db8::1", "0.0.0.0"]
        let set = IndicatorSet(values.compactMap { Indicator.make(type: "ip", value: $0, provider: "t", confidence: nil) })
        #expect(set.networks.isEmpty && set.ips.count == 4)
        for (text, expected) in [("10.1.2.3", "10.1.2.3"), ("10.9.9.9", "::ffff:10.9.9.9"), ("::ffff:10.1.2.3", "10.1.2.3"),
                                 ("2001:db8::1", "2001:db8::1"), ("10.1.2.3%eth0", "10.1.2.3"), ("0.0.0.0", "0.0.0.0")] {
            #expect(set.match(ip: text)?.value == Indicator.make(type: "ip", value: expected, provider: "t", confidence: nil)?.value, "\(text)")
        }
        for text in ["10.1.2.4", "10.1.2", "10.1.2.3.4", "::1", "", "010.001.002.003x"] {
            #expect(set.match(ip: text) == nil, "\(text)")
        }
    }

    @Test func csvFeedsLoadAndReportWhatTheySkip() throws {
        let path = try write("""
        type,value,source,confidence
        ip,203.0.113.9,abuse.ch,80
        cidr,198.51.100.0/24,spamhaus,90
        domain,Evil.Example.,osint,
        url,HTTP://Bad.Example:80/x?y=1#frag,osint,50
        sha256,E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855,vt,
        ip,not-an-ip,x,1
        registry,HKLM\\x,x,1
        onlyonecolumn
        """, "feed.csv")
        let (indicators, report) = FeedLoader.load(path: path)
        #expect(indicators.count == 5)
        #expect(report.skipped == ["invalid_value": 1, "unknown_type": 1, "csv_too_few_columns": 1])
        let set = IndicatorSet(indicators)
        #expect(set.match(ip: "203.0.113.9")?.provider == "abuse.ch")
        #expect(set.match(ip: "198.51.100.77")?.kind == .cidr)
        #expect(set.match(ip: "198.51.101.1") == nil)
        #expect(set.match(domain: "a.b.EVIL.example")?.value == "evil.example")
        #expect(set.match(domain: "notevil.example") == nil)
        #expect(set.match(url: "http://bad.example/x?y=1") != nil)
        #expect(set.match(hash: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") != nil)
    }

    @Test func ipv6AndCidrPrefixesOfAnyLength() {
        let set = IndicatorSet([
            Indicator.make(type: "ip", value: "2001:db8::1", provider: "p", confidence: nil)!,
            Indicator.make(type: "cidr", value: "2001:db8:ff00::/40", provider: "p", confidence: nil)!,
            Indicator.make(type: "cidr", value: "10.0.0.0/13", provider: "p", confidence: nil)!,
        ])
        #expect(set.match(ip: "2001:0db8:0000::0001") != nil)
        #expect(set.match(ip: "2001:db8:ff12::9") != nil)
        #expect(set.match(ip: "2001:db8:fe00::9") == nil)
        #expect(set.match(ip: "10.7.255.255") != nil)
        #expect(set.match(ip: "10.8.0.0") == nil)
    }

    @Test func stixBundlesWithSimplePatterns() throws {
        let path = try write("""
        {"type":"bundle","id":"bundle--1","objects":[
          {"type":"indicator","pattern_type":"stix","pattern":"[ipv4-addr:value = '192.0.2.66']","confidence":70},
          {"type":"indicator","pattern_type":"stix","pattern":"[domain-name:value = 'c2.example' OR url:value = 'https://c2.example/gate']"},
          {"type":"indicator","pattern_type":"stix","pattern":"[file:hashes.'SHA-256' = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa']"},
          {"type":"indicator","pattern_type":"stix","pattern":"[ipv4-addr:value = '1.1.1.1'] AND [domain-name:value = 'x.example']"},
          {"type":"indicator","pattern_type":"sigma","pattern":"title: x"},
          {"type":"malware","name":"not an indicator"}
        ]}
        """, "bundle.json")
        let (indicators, report) = FeedLoader.load(path: path)
        #expect(indicators.map(\.value).sorted() == ["192.0.2.66", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "c2.example", "https://c2.example/gate"])
        #expect(report.skipped == ["stix_complex_pattern": 1, "stix_pattern_type": 1])
        #expect(indicators.first?.confidence == "70")
    }

    @Test func mispEventsWithAttributesAndObjects() throws {
        let path = try write("""
        {"response":[{"Event":{"info":"campaign","Orgc":{"name":"CIRCL"},
          "Attribute":[{"type":"ip-dst","value":"198.18.0.1","to_ids":true},{"type":"domain","value":"phish.example"},
                       {"type":"comment","value":"x"},{"type":"ip-src","value":"198.18.0.2","to_ids":false}],
          "Object":[{"Attribute":[{"type":"filename|md5","value":"a.exe|d41d8cd98f00b204e9800998ecf8427e"},{"type":"ip-dst|port","value":"198.18.0.3|443"}]}]}}]}
        """, "misp.json")
        let (indicators, report) = FeedLoader.load(path: path)
        #expect(Set(indicators.map(\.value)) == ["198.18.0.1", "phish.example", "d41d8cd98f00b204e9800998ecf8427e", "198.18.0.3"])
        #expect(indicators.allSatisfy { $0.provider == "CIRCL" })
        #expect(report.skipped == ["unknown_type": 1, "misp_not_to_ids": 1])
    }

    @Test func enrichmentAddsTheIndicatorTheEnrichmentsAndTheTag() {
        let set = IndicatorSet([
            Indicator.make(type: "ip", value: "203.0.113.9", provider: "abuse.ch", confidence: "80")!,
            Indicator.make(type: "domain", value: "evil.example", provider: "osint", confidence: nil)!,
        ])
        var fields = JSONObject()
        FieldNesting.set(.string("10.0.0.1"), at: "source.ip", in: &fields)
        FieldNesting.set(.string("203.0.113.9"), at: "destination.ip", in: &fields)
        FieldNesting.set(.string("www.evil.example"), at: "dns.question.name", in: &fields)
        fields["tags"] = .array([.string("vpn")])
        #expect(Enrichment.enrich(&fields, with: set) == 2)
        let doc = JSONValue.object(fields)
        #expect(doc.value(atPath: "threat.indicator.ip")?.stringValue == "203.0.113.9")
        #expect(doc.value(atPath: "threat.indicator.provider")?.stringValue == "abuse.ch")
        #expect(doc.value(atPath: "threat.indicator.matched.field")?.stringValue == "destination.ip")
        if case .array(let enrichments)? = doc.value(atPath: "threat.enrichments") { #expect(enrichments.count == 2) } else { Issue.record("no enrichments") }
        #expect(fields["tags"] == .array([.string("vpn"), .string("ioc_match")]))
        // Enriching again adds no second tag.
        Enrichment.enrich(&fields, with: set)
        #expect(fields["tags"] == .array([.string("vpn"), .string("ioc_match")]))
        var clean = JSONObject()
        FieldNesting.set(.string("10.9.9.9"), at: "source.ip", in: &clean)
        #expect(Enrichment.enrich(&clean, with: set) == 0)
        #expect(clean["threat"] == nil && clean["tags"] == nil)
    }

    /// Fields are found as `value(atKeys:)` finds them: the first top-level member of a key
    /// (a later duplicate is not read), only through objects, and matches listed in the order
    /// of the paths, not of the document.
    @Test func enrichmentReadsTheFirstMemberOfEachKeyInPathOrder() throws {
        let set = IndicatorSet(["203.0.113.9", "198.51.100.7", "192.0.2.1"].map { Indicator.make(type: "ip", value: $0, provider: "t", confidence: nil)! })
        func enriched(_ json: String) throws -> (Int, JSONValue) {
            guard case .object(var fields) = try JSONParser.parse(json) else { throw ThreatIntelTestError.notAnObject }
            let count = Enrichment.enrich(&fields, with: set)
            return (count, .object(fields))
        }
        // A duplicate `source` after the first: only the first is read.
        var (count, doc) = try enriched(#"{"source":{"port":1},"source":{"ip":"203.0.113.9"}}"#)
        #expect(count == 0)
        // The first is read even when a later one would match, and a scalar root matches nothing.
        (count, doc) = try enriched(#"{"destination":"198.51.100.7","source":{"ip":"192.0.2.1"},"source":{"ip":"203.0.113.9"}}"#)
        #expect(count == 1)
        #expect(doc.value(atPath: "threat.indicator.ip")?.stringValue == "192.0.2.1")
        // Path order: source.ip comes before destination.ip whatever the document's order.
        (count, doc) = try enriched(#"{"destination":{"ip":"198.51.100.7"},"related":{"ip":["203.0.113.9"]},"source":{"ip":"192.0.2.1"}}"#)
        #expect(count == 3)
        #expect(doc.value(atPath: "threat.indicator.matched.field")?.stringValue == "source.ip")
        if case .array(let all)? = doc.value(atPath: "threat.enrichments") {
            #expect(all.compactMap { $0.value(atPath: "matched.field")?.stringValue } == ["source.ip", "destination.ip", "related.ip"])
        } else {
            Issue.record("no enrichments")
        }
        // A key that only looks like a root (longer, shorter, other case) is not one.
        (count, doc) = try enriched(#"{"sources":{"ip":"192.0.2.1"},"Source":{"ip":"192.0.2.1"},"sourc":{"ip":"192.0.2.1"}}"#)
        #expect(count == 0)
    }

    @Test func reloadsWhenAFileChangesAndKeepsTheSetWhenItBreaks() throws {
        let path = try write("ip,192.0.2.1,a,1\n", "feed.csv")
        let feeds = IntelFeeds(paths: [path])
        #expect(feeds.reloadIfChanged())
        #expect(feeds.current.match(ip: "192.0.2.1") != nil)
        #expect(!feeds.reloadIfChanged())  // unchanged
        try "ip,192.0.2.2,a,1\nip,192.0.2.3,a,1\n".write(toFile: path, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(10)], ofItemAtPath: path)
        #expect(feeds.reloadIfChanged())
        #expect(feeds.current.match(ip: "192.0.2.1") == nil && feeds.current.match(ip: "192.0.2.3") != nil)
        try FileManager.default.removeItem(atPath: path)
        #expect(!feeds.reloadIfChanged())
        #expect(feeds.current.match(ip: "192.0.2.3") != nil)  // the previous set stays
        #expect(feeds.reports.first?.error != nil)
    }
}

extension ThreatIntelTests {
    /// The byte-level trims agree with Foundation's on texts with Unicode spaces, tabs,
    /// quotes and multi-byte characters at either end.
    @Test func trimsAgreeWithFoundation() {
        let pieces = [" ", "\t", "\"", "\u{00A0}", "\u{2003}", "\u{3000}", "a", "é", "\u{301}", "x y", "\n", "1.2.3.4", "#"]
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<5_000 {
            let text = (0..<Int.random(in: 0...6, using: &generator)).map { _ in pieces.randomElement(using: &generator)! }.joined()
            #expect(text.trimmedWhitespace == text.trimmingCharacters(in: .whitespaces), "\(text.unicodeScalars.map(\.value))")
            #expect(text.trimmedSpacesAndQuotes == text.trimmingCharacters(in: CharacterSet(charactersIn: " \"")), "\(text.unicodeScalars.map(\.value))")
        }
    }
}

enum ThreatIntelTestError: Error { case notAnObject }
