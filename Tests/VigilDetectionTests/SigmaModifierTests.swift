import Testing
import VigilCore
@testable import VigilDetection

struct SigmaModifierTests {
    typealias F = SigmaFixture

    func matches(_ detection: String, _ data: [String: String]) throws -> Bool {
        try F.rule(detection).matches(F.processCreation(data))
    }

    @Test func plainValueIsCaseInsensitiveExactMatch() throws {
        let d = "sel:\n    Image: 'C:\\Windows\\System32\\cmd.exe'\ncondition: sel"
        #expect(try matches(d, ["Image": "c:\\windows\\system32\\CMD.exe"]))
        #expect(try !matches(d, ["Image": "c:\\windows\\system32\\cmd.exe2"]))
    }

    @Test func wildcardsAndEscapes() throws {
        #expect(try matches("sel:\n    Image: '*\\cm?.exe'\ncondition: sel", ["Image": "C:\\x\\cmd.exe"]))
        #expect(try !matches("sel:\n    Image: '*\\cm?.exe'\ncondition: sel", ["Image": "C:\\x\\cmdd.exe"]))
        // `\*` is a literal star.
        #expect(try matches("sel:\n    CommandLine: 'a\\*b'\ncondition: sel", ["CommandLine": "a*b"]))
        #expect(try !matches("sel:\n    CommandLine: 'a\\*b'\ncondition: sel", ["CommandLine": "axxb"]))
    }

    @Test func containsStartsWithEndsWith() throws {
        #expect(try matches("sel:\n    CommandLine|contains: 'WHOAMI'\ncondition: sel", ["CommandLine": "cmd /c whoami /all"]))
        #expect(try !matches("sel:\n    CommandLine|contains: 'whoami'\ncondition: sel", ["CommandLine": "cmd /c who"]))
        #expect(try matches("sel:\n    CommandLine|startswith: 'cmd'\ncondition: sel", ["CommandLine": "cmd /c"]))
        #expect(try !matches("sel:\n    CommandLine|startswith: 'cmd'\ncondition: sel", ["CommandLine": "x cmd"]))
        #expect(try matches("sel:\n    Image|endswith: '\\cmd.exe'\ncondition: sel", ["Image": "C:\\cmd.exe"]))
        #expect(try !matches("sel:\n    Image|endswith: '\\cmd.exe'\ncondition: sel", ["Image": "C:\\cmd.exe.bak"]))
    }

    @Test func valueListIsOrAndAllMakesItAnd() throws {
        let any = "sel:\n    CommandLine|contains:\n        - 'alpha'\n        - 'beta'\ncondition: sel"
        #expect(try matches(any, ["CommandLine": "x beta"]))
        #expect(try !matches(any, ["CommandLine": "gamma"]))
        let all = "sel:\n    CommandLine|contains|all:\n        - 'alpha'\n        - 'beta'\ncondition: sel"
        #expect(try matches(all, ["CommandLine": "alpha beta"]))
        #expect(try !matches(all, ["CommandLine": "beta"]))
    }

    @Test func casedMakesMatchingCaseSensitive() throws {
        let d = "sel:\n    CommandLine|contains|cased: 'Secret'\ncondition: sel"
        #expect(try matches(d, ["CommandLine": "a Secret b"]))
        #expect(try !matches(d, ["CommandLine": "a secret b"]))
    }

    @Test func regexWithFlags() throws {
        #expect(try matches("sel:\n    CommandLine|re: '^cmd\\s+/c'\ncondition: sel", ["CommandLine": "cmd  /c x"]))
        #expect(try !matches("sel:\n    CommandLine|re: '^cmd\\s+/c'\ncondition: sel", ["CommandLine": "CMD /c x"]))
        #expect(try matches("sel:\n    CommandLine|re|i: '^cmd\\s+/c'\ncondition: sel", ["CommandLine": "CMD /c x"]))
        #expect(try matches("sel:\n    CommandLine|re|m: '^second$'\ncondition: sel", ["CommandLine": "first\nsecond"]))
        #expect(try !matches("sel:\n    CommandLine|re: '^second$'\ncondition: sel", ["CommandLine": "first\nsecond"]))
        #expect(try matches("sel:\n    CommandLine|re|s: 'a.b'\ncondition: sel", ["CommandLine": "a\nb"]))
        #expect(try !matches("sel:\n    CommandLine|re: 'a.b'\ncondition: sel", ["CommandLine": "a\nb"]))
    }

    @Test func base64AndBase64Offset() throws {
        // "whoami" base64 is d2hvYW1p.
        #expect(try matches("sel:\n    CommandLine|base64|contains: 'whoami'\ncondition: sel", ["CommandLine": "-e d2hvYW1p"]))
        #expect(try !matches("sel:\n    CommandLine|base64|contains: 'whoami'\ncondition: sel", ["CommandLine": "whoami"]))
        let offset = "sel:\n    CommandLine|base64offset|contains: 'http://'\ncondition: sel"
        for prefix in ["", "a", "ab"] {
            let encoded = Data((prefix + "http://evil").utf8).base64EncodedString()
            #expect(try matches(offset, ["CommandLine": "powershell -enc \(encoded)"]), "offset \(prefix.count)")
        }
        #expect(try !matches(offset, ["CommandLine": "powershell -enc aGVsbG8gd29ybGQ="]))
    }

    @Test func wideBase64OffsetEncodesUTF16LittleEndian() throws {
        let d = "sel:\n    CommandLine|wide|base64offset|contains: 'iex'\ncondition: sel"
        var utf16: [UInt8] = []
        for unit in "x = iex(1)".utf16 { utf16 += [UInt8(unit & 0xFF), UInt8(unit >> 8)] }
        #expect(try matches(d, ["CommandLine": "powershell -enc \(Data(utf16).base64EncodedString())"]))
        #expect(try !matches(d, ["CommandLine": "powershell -enc \(Data("x = iex(1)".utf8).base64EncodedString())"]))
    }

    @Test func windashTriesEveryDash() throws {
        let d = "sel:\n    CommandLine|windash|contains: ' -enc '\ncondition: sel"
        for dash in ["-", "/", "\u{2013}", "\u{2014}", "\u{2015}"] {
            #expect(try matches(d, ["CommandLine": "powershell \(dash)enc AAA"]))
        }
        #expect(try !matches(d, ["CommandLine": "powershell +enc AAA"]))
    }

    @Test func cidrMatchesAddressesInNetwork() throws {
        let d = "sel:\n    DestinationIp|cidr:\n        - '10.0.0.0/8'\n        - 'fe80::/10'\ncondition: sel"
        let rule = try F.rule(d, logsource: "product: windows\n    category: network_connection")
        #expect(rule.matches(F.processCreation(["DestinationIp": "10.1.2.3"], eventID: "3")))
        #expect(rule.matches(F.processCreation(["DestinationIp": "fe80::1"], eventID: "3")))
        #expect(!rule.matches(F.processCreation(["DestinationIp": "11.1.2.3"], eventID: "3")))
    }

    @Test func existsChecksPresence() throws {
        #expect(try matches("sel:\n    ParentImage|exists: true\ncondition: sel", ["ParentImage": "x"]))
        #expect(try !matches("sel:\n    ParentImage|exists: true\ncondition: sel", ["Image": "x"]))
        #expect(try matches("sel:\n    ParentImage|exists: false\ncondition: sel", ["Image": "x"]))
    }

    @Test func numericComparisons() throws {
        let rule = { (op: String) throws -> CompiledRule in
            try F.rule("sel:\n    DestinationPort|\(op): 1024\ncondition: sel", logsource: "product: windows\n    category: network_connection")
        }
        let port = { (p: String) in F.processCreation(["DestinationPort": p], eventID: "3") }
        #expect(try rule("lt").matches(port("80")))
        #expect(try !rule("lt").matches(port("1024")))
        #expect(try rule("lte").matches(port("1024")))
        #expect(try rule("gt").matches(port("8080")))
        #expect(try !rule("gt").matches(port("1024")))
        #expect(try rule("gte").matches(port("1024")))
        #expect(try !rule("gte").matches(port("abc")))
    }

    @Test func expandUsesConfiguredPlaceholdersAndRefusesOthers() throws {
        var configuration = SigmaMappingConfiguration.default
        configuration.placeholders["admins"] = ["root", "admin*"]
        let d = "sel:\n    User|expand: '%admins%'\ncondition: sel"
        let rule = try F.rule(d, configuration: configuration)
        #expect(rule.matches(F.processCreation(["User": "administrator"])))
        #expect(!rule.matches(F.processCreation(["User": "guest"])))
        #expect(throws: RuleImportError(.unconfiguredPlaceholder, "admins")) { try F.rule(d) }
    }

    @Test func fieldrefComparesTwoFields() throws {
        let d = "sel:\n    ParentImage|fieldref: Image\ncondition: sel"
        #expect(try matches(d, ["Image": "C:\\a.exe", "ParentImage": "c:\\A.exe"]))
        #expect(try !matches(d, ["Image": "C:\\a.exe", "ParentImage": "C:\\b.exe"]))
    }

    @Test func nullMeansMissingOrNull() throws {
        let d = "sel:\n    OriginalFileName: null\ncondition: sel"
        #expect(try matches(d, ["Image": "x"]))
        #expect(try !matches(d, ["OriginalFileName": "x.exe"]))
        #expect(try matches("sel:\n    OriginalFileName: ''\ncondition: sel", ["OriginalFileName": ""]))
    }

    @Test func keywordsSearchEveryStringField() throws {
        let d = "keywords:\n    - 'mimikatz'\n    - 'sekurlsa'\ncondition: keywords"
        let rule = try F.rule(d, logsource: "product: linux")
        #expect(rule.matches(F.event(#"{"event":{"dataset":"linux.auth"},"message":"ran Mimikatz today"}"#)))
        #expect(rule.matches(F.event(#"{"event":{"dataset":"linux.auth"},"process":{"args":["x","sekurlsa::logonpasswords"]}}"#)))
        #expect(!rule.matches(F.event(#"{"event":{"dataset":"linux.auth"},"message":"nothing"}"#)))
        // Logsource still applies.
        #expect(!rule.matches(F.event(#"{"event":{"dataset":"panos.traffic"},"message":"mimikatz"}"#)))
    }

    @Test func numbersCompareThroughScalarText() throws {
        let rule = try F.rule("sel:\n    EventID: 4688\ncondition: sel", logsource: "product: windows\n    service: security")
        #expect(rule.matches(F.event(#"{"winlog":{"channel":"Security","event_id":4688}}"#)))
        #expect(rule.matches(F.event(#"{"winlog":{"channel":"Security","event_id":"4688"}}"#)))
        #expect(!rule.matches(F.event(#"{"winlog":{"channel":"Security","event_id":"4624"}}"#)))
    }

    @Test func windowsFieldsFallBackToECS() throws {
        let rule = try F.rule("sel:\n    Image|endswith: '\\cmd.exe'\ncondition: sel")
        #expect(rule.matches(F.event(#"{"winlog":{"channel":"Security","event_id":"4688"},"process":{"executable":"C:\\cmd.exe"}}"#)))
        #expect(rule.matches(F.event(#"{"winlog":{"channel":"Security","event_id":"4688","event_data":{"NewProcessName":"C:\\cmd.exe"}}}"#)))
        // Logsource: Sysmon 3 is not process creation.
        #expect(!rule.matches(F.processCreation(["Image": "C:\\cmd.exe"], eventID: "3")))
    }
}

import Foundation
