import Foundation
import Testing
import VigilCore
import VigilParsing
@testable import VigilSigma

/// The rule index must only skip rules that cannot match: its verdicts equal trying every rule.
struct SigmaRuleSetTests {
    @Test func automatonFindsEveryOccurrenceOfOverlappingLiterals() {
        let literals: [[UInt8]] = ["he", "she", "his", "hers", "e", "rundll32", "ll3", "\\cmd.exe"].map { Array($0.utf8) }
        let automaton = LiteralAutomaton(literals)
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("hesir \\cmd.exerundll32".utf8)
        for _ in 0..<500 {
            let text = (0..<Int.random(in: 0...40, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! }
            var found = Set<Int>()
            text.withUnsafeBufferPointer { bytes in automaton.scan(bytes) { found.insert($0) } }
            let expected = Set(literals.indices.filter { i in
                let l = literals[i]
                return text.count >= l.count && (0...(text.count - l.count)).contains { text[$0..<$0 + l.count].elementsEqual(l) }
            })
            #expect(found == expected, "\(String(decoding: text, as: UTF8.self))")
        }
    }

    /// The byte matcher of a pattern without `?` (parts between `*`, anchored ends) against
    /// the scalar glob that patterns with `?` use, on random patterns and texts, lower-cased
    /// and `|cased`.
    @Test func bytePatternsMatchLikeTheScalarGlob() {
        var generator = SystemRandomNumberGenerator()
        // Parts must not overlap, nor overlap the anchored ends.
        for (pattern, text, expected) in [("*ab*ba*", "aba", false), ("*ab*ba*", "abba", true), ("a*a", "a", false), ("ab*ba", "aba", false),
                                          ("*aa*a", "aaa", true), ("*aa*a", "aa", false), ("", "", true), ("", "a", false), ("*", "", true)] {
            #expect(TextPattern(Array(pattern.unicodeScalars), cased: false).matches(Text(text)) == expected, "\(pattern) on \(text)")
        }
        // Mostly `a` and `b`, so that parts overlap and repeat.
        let alphabet: [Unicode.Scalar] = ["a", "b", "a", "b", "a", "b", "A", "\\", "é", ValueMatcher.literalStar]
        for round in 0..<10_000 {
            let cased = round % 3 == 0
            var pattern = (0..<Int.random(in: 0...8, using: &generator)).map { _ in Int.random(in: 0..<3, using: &generator) == 0 ? "*" : alphabet.randomElement(using: &generator)! }
            if !cased { pattern = Array(String(String.UnicodeScalarView(pattern)).lowercased().unicodeScalars) }
            let text = String(String.UnicodeScalarView((0..<Int.random(in: 0...12, using: &generator)).map { _ in
                [Unicode.Scalar("*"), "a", "b", "a", "b", "a", "b", "A", "\\", "é"].randomElement(using: &generator)!
            }))
            let compiled = TextPattern(pattern, cased: cased)
            #expect(compiled.scalars == nil)
            let expected = ValueMatcher.wildcard(pattern, Array((cased ? text : text.lowercased()).unicodeScalars))
            #expect(compiled.matches(Text(text)) == expected, "\(String(String.UnicodeScalarView(pattern))) on \(text), cased: \(cased)")
        }
    }

    @Test func triggersComeFromTheSelectiveParts() throws {
        // `selection and not filter`: the filter gives nothing, each condition of the selection
        // a clause (the longest literal first).
        let rule = try SigmaTests.rule("sel:\n    Image|endswith: '\\\\whoami.exe'\n    CommandLine|contains: '/all'\nfilter:\n    User: SYSTEM\ncondition: sel and not filter")
        #expect(rule.trigger() == [[Atom(field: "Image", literal: Array("\\whoami.exe".utf8))], [Atom(field: "CommandLine", literal: Array("/all".utf8))]])
        // `or` needs every branch to name a literal; a regex without one leaves the rule unindexed.
        let either = try SigmaTests.rule("a:\n    Image|endswith: '\\\\x.exe'\nb:\n    CommandLine|re: '^\\d+$'\ncondition: a or b")
        #expect(either.trigger() == nil)
        // Cased literals are matched lower-cased (ASCII only); keywords look at every text.
        let keywords = try SigmaTests.rule("kw:\n    - 'Mimikatz'\n    - 'sekurlsa::'\ncondition: kw")
        #expect(keywords.trigger() == [[Atom(field: "", literal: Array("mimikatz".utf8)), Atom(field: "", literal: Array("sekurlsa::".utf8))]])
        let set = SigmaRuleSet([rule, either, keywords])
        #expect(set.indexedCount == 2)
        let prepared = { (data: [String: String]) in SigmaEvent(SigmaTests.sysmon(1, data)) }
        #expect(set.matches(prepared(["Image": "C:\\Windows\\System32\\WHOAMI.EXE", "CommandLine": "whoami /all", "User": "bob"])) == [0])
        #expect(set.matches(prepared(["Image": "C:\\Windows\\System32\\whoami.exe", "CommandLine": "whoami /all", "User": "SYSTEM"])) == [])
        #expect(set.matches(prepared(["Image": "c:\\y.exe", "CommandLine": "1234"])) == [1])
        #expect(set.matches(prepared(["Image": "c:\\y.exe", "CommandLine": "run MIMIKATZ now"])) == [2])
        // Both clauses must be hit before the rule is even tried.
        let lone = SigmaEvent(SigmaTests.sysmon(1, ["Image": "C:\\whoami.exe", "CommandLine": "whoami"]))
        #expect(set.matches(lone) == [])
    }

    /// Every rule of the corpus that imports, against the regression events of INDEX.tsv and
    /// generated Sysmon events: the indexed set and rule-by-rule matching agree on each event.
    @Test func indexedVerdictsEqualTryingEveryRule() throws {
        guard let root = SigmaTests.testdata?.appendingPathComponent("sigma") else {
            print("SKIP rule index equivalence: ../shared/testdata is absent (bare clone)")
            return
        }
        var rules: [SigmaRule] = []
        for folder in ["rules", "rules-emerging-threats", "rules-threat-hunting"] {
            guard let enumerator = FileManager.default.enumerator(at: root.appendingPathComponent(folder), includingPropertiesForKeys: nil) else { continue }
            for case let url as URL in enumerator where url.pathExtension == "yml" {
                if let text = try? String(contentsOf: url, encoding: .utf8), let rule = try? SigmaRule.parse(text) { rules.append(rule) }
            }
        }
        var events: [JSONObject] = []
        let index = try String(contentsOf: root.appendingPathComponent("INDEX.tsv"), encoding: .utf8)
        for line in index.unicodeScalars.split(whereSeparator: { $0 == "\n" || $0 == "\r" }).map({ String(String.UnicodeScalarView($0)) }).dropFirst() {
            let columns = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard columns.count >= 7, let bytes = try? Data(contentsOf: root.appendingPathComponent(columns[5])) else { continue }
            for case .object(let object) in (try? JSONParser.parseConcatenated(Array(bytes))) ?? [] {
                events.append(SigmaTests.normalizer.normalize(document: object, receivedAt: 0)?.fields ?? object)
            }
        }
        let set = SigmaRuleSet(rules)
        print("rule index: \(set.indexedCount) of \(rules.count) rules indexed; \(events.count) events")
        #expect(rules.count > 1_000)
        #expect(set.indexedCount * 10 > rules.count * 8)
        var totalMatches = 0
        for event in events {
            let expected = rules.indices.filter { rules[$0].matches(SigmaEvent(event)) }
            let found = set.matches(SigmaEvent(event))
            #expect(found == expected)
            // An event the set prepared resolves fields by number: the same verdicts.
            #expect(set.matches(event) == expected)
            totalMatches += found.count
        }
        #expect(totalMatches >= 90)  // the regression events do match their rules
    }
}

extension SigmaRuleSetTests {
    /// A set's numbered fields resolve exactly as names do: EventData first (a null item
    /// too), then the mapped paths, then the name as a path, with literal dotted keys,
    /// leading dots and keys that only share a prefix with a path.
    @Test func plannedFieldsResolveLikeNames() throws {
        let names = ["Image", "CommandLine", "User", "process.command_line", "a.b.c", ".a.b", "a..b", "host.name", "x", "Absent", "DestinationPort",
                     "n\u{E9}e.b.c", "n\u{E9}e.d", "e\u{301}.f.g"]
        let rules = try names.map { name in try SigmaTests.rule("sel:\n    '\(name)|exists': true\ncondition: sel") }
        let set = SigmaRuleSet(rules)
        let documents: [String] = [
            #"{"winlog":{"event_data":{"Image":"C:\\a.exe","User":null,"Image ":"no"}},"process":{"executable":"C:\\b.exe","command_line":"b /c"}}"#,
            #"{"process.command_line":"dotted","process":{"pid":4},"a":{"b.c":1},"a.b":{"c":2},"host.name":"h1","host":{"name":"h2"}}"#,
            #"{"a":{"b":{"c":[1,"two",null]}},"x":{"y":1},"destination":{"port":443},"user":{"name":"root"}}"#,
            #"{"a.b.c":true,"abc":1,"process.command":"not it","winlog":{"channel":"Security"}}"#,
            #"{"host":"plain","a":5,"x":null}"#,
            // Non-ASCII parts before a level with a dotted key, and a decomposed é.
            #"{"n\u00e9e":{"b.c":1,"d":2},"\u00e9":{"f":{"g":3}}}"#,
            #"{"n\u00e9e":{"b":{"c":4}},"\u00e9":{"f.g":5}}"#,
            #"{"ne\u0301e":{"b.c":6},"e\u0301":{"f.g":7},"\u00e9.f":{"g":8}}"#,
        ]
        for text in documents {
            guard case .object(let fields) = try JSONParser.parse(Array(text.utf8)) else { Issue.record("not an object: \(text)"); continue }
            let planned = set.event(fields), named = SigmaEvent(fields)
            for name in names {
                #expect(planned.value(name) == named.value(name), "\(name) in \(text)")
                #expect(planned.texts(name).map(\.string) == named.texts(name).map(\.string), "\(name) in \(text)")
            }
        }
    }

    @Test(arguments: [
        ("\\\\rundll32\\.exe\\s+\\S+,#?\\d+", false, "\\rundll32.exe"),
        ("powershell(\\.exe)?\\s+-e[ncodema]*\\s", false, "powershell"),
        ("(?i)invoke-mimikatz", true, "invoke-mimikatz"),
        ("ab+c", false, "ab"),
        ("abc?d", false, "ab"),
        ("x{2,3}yz\\.", false, "yz."),
        ("[a|b]cde", false, "cde"),
        ("^\\w+$", false, nil),
        ("cmd|powershell", false, nil),
        ("(?x) a b", false, nil),
        ("(?<name>abc)", false, nil),
        ("[[a-z]]abc", false, nil),
        ("\\x41bcdef", false, nil),
        ("\\cAbcdef", false, nil),
        ("[^\\]]x\\sabcd", false, "abcd"),
    ] as [(String, Bool, String?)])
    func regexLiterals(_ regex: String, _ folds: Bool, _ expected: String?) {
        let found = ValueMatcher.requiredLiteral(regex: regex)
        #expect(found.map { String(decoding: $0.literal, as: UTF8.self) } == expected, "\(regex)")
        if expected != nil { #expect(found?.foldsCase == folds) }
    }

    /// A case-insensitive regex matches `ſ` for `s` and `ﬁ` for `fi` (full case folding),
    /// which lower-cased text does not contain: such texts still reach the rule.
    @Test func caseFoldingRegexesStillSeeNonASCIIText() throws {
        let rule = try SigmaTests.rule("sel:\n    CommandLine|re|i: 'fisherman'\ncondition: sel")
        let set = SigmaRuleSet([rule])
        #expect(set.indexedCount == 1)
        for text in ["the FISHERMAN", "the \u{FB01}sherman", "the fi\u{17F}herman"] {
            let event = SigmaTests.sysmon(1, ["CommandLine": text])
            #expect(set.matches(SigmaEvent(event)) == (rule.matches(event, mapping: .standard) ? [0] : []), "\(text)")
        }
        #expect(set.matches(SigmaEvent(SigmaTests.sysmon(1, ["CommandLine": "the fisher"]))) == [])
    }
}
