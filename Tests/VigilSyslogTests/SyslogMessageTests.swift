import Foundation
import Testing
import VigilCore
import VigilIntake
import VigilParsing
@testable import VigilSyslog

/// Syslog headers (RFC 5424, RFC 3164 and the variants devices send) and the Linux auth pack.
struct SyslogMessageTests {
    static let reference: EpochMillis = 1_795_564_800_000  // 2026-11-25T00:00:00Z

    func parse(_ text: String, reference: EpochMillis = Self.reference) -> VigilParsing.SyslogMessage {
        SyslogParser().parse(Array(text.utf8), referenceTime: reference)
    }

    @Test func rfc5424WithStructuredDataAndBOM() {
        let m = parse("<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog 42 ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Appli\\\"cation\"][x@1 a=\"b\"] \u{FEFF}An application event")
        #expect(m.format == .rfc5424)
        #expect(m.priority == 165 && m.facility == 20 && m.severity == 5)
        #expect(m.timestamp == Timestamp.parseRFC3339("2003-10-11T22:14:15.003Z"))
        #expect(m.hostname == "mymachine.example.com")
        #expect(m.appName == "evntslog" && m.procID == "42" && m.msgID == "ID47")
        #expect(m.structuredData?.members.map(\.key) == ["exampleSDID@32473", "x@1"])
        #expect(m.structuredData?["exampleSDID@32473"]?.objectValue?["eventSource"]?.stringValue == "Appli\"cation")
        #expect(m.message == "An application event")
    }

    @Test func rfc5424WithNilValues() {
        let m = parse("<13>1 - - - - - - just text")
        #expect(m.format == .rfc5424 && m.timestamp == nil && m.hostname == nil && m.appName == nil)
        #expect(m.message == "just text")
    }

    @Test func rfc3164TakesTheYearNearestTheReference() {
        let m = parse("<38>Nov 24 23:59:58 web-1 sshd[4242]: Failed password for root from 10.0.0.1 port 22 ssh2")
        #expect(m.timestamp == Timestamp.parseRFC3339("2026-11-24T23:59:58Z"))
        #expect(m.hostname == "web-1" && m.appName == "sshd" && m.procID == "4242")
        #expect(m.message == "Failed password for root from 10.0.0.1 port 22 ssh2")
        // A December line received on January 1st belongs to last year.
        let newYear = Timestamp.parseRFC3339("2027-01-01T00:00:05Z")!
        #expect(parse("<38>Dec 31 23:59:59 h app: x", reference: newYear).timestamp == Timestamp.parseRFC3339("2026-12-31T23:59:59Z"))
        // Single-digit days are space padded.
        #expect(parse("<38>Aug  6 19:42:10 server01 sudo[18432]: alice : USER=root").timestamp == Timestamp.parseRFC3339("2026-08-06T19:42:10Z"))
    }

    @Test func rfc3164VariantsDevicesSend() {
        // Milliseconds and a year (Cisco with "service timestamps log datetime msec year").
        let cisco = parse("<166>Nov 24 2026 10:00:00.123 asa-1 : %ASA-6-302013: Built outbound TCP connection")
        #expect(cisco.timestamp == Timestamp.parseRFC3339("2026-11-24T10:00:00.123Z"))
        // No hostname, ASA's own tag.
        let asa = parse("<166>Nov 24 10:00:00 : %ASA-6-302013: Built outbound")
        #expect(asa.hostname == nil && asa.message.hasPrefix("%ASA-6-302013"))
        // RFC 3339 timestamp (rsyslog's high-precision template).
        let iso = parse("<13>2026-11-24T10:00:00.5+01:00 host app: text")
        #expect(iso.timestamp == Timestamp.parseRFC3339("2026-11-24T09:00:00.500Z"))
        #expect(iso.hostname == "host" && iso.appName == "app" && iso.message == "text")
        // No PRI, no header: all body.
        let bare = parse("just a line: with a colon")
        #expect(bare.priority == nil && bare.timestamp == nil)
    }

    @Test func neverTrapsOnAnyPrefixOrGarbage() {
        let samples = [
            "<165>1 2003-10-11T22:14:15.003Z host app 1 ID [a b=\"c\\\"d\"] msg",
            "<38>Nov 24 23:59:58 web-1 sshd[4242]: Failed password for invalid user x from 10.0.0.1 port 22 ssh2",
            "<86>Nov 24 10:00:00 h sudo: alice : TTY=pts/0 ; PWD=/ ; USER=root ; COMMAND=/bin/sh",
        ]
        for sample in samples {
            let bytes = Array(sample.utf8)
            for cut in 0...bytes.count {
                let decoded = NormalizingSyslogDecoder().decode(frame: Array(bytes[..<cut]), peer: "10.0.0.9", received: Self.reference)
                if case .rejected = decoded.item { Issue.record("a frame is never rejected") }
            }
        }
        var generator = SplitMix64(seed: 9)
        for _ in 0..<2000 {
            let bytes = (0..<Int(generator.next() % 120)).map { _ in UInt8(truncatingIfNeeded: generator.next() % 4 == 0 ? 0x3C : generator.next()) }
            _ = NormalizingSyslogDecoder().decode(frame: bytes, peer: "x", received: Self.reference)
        }
    }

    func decode(_ line: String) -> JSONObject {
        guard case .candidate(let candidate) = NormalizingSyslogDecoder().decode(frame: Array(line.utf8), peer: "10.0.0.9", received: Self.reference).item else { return JSONObject() }
        return candidate.document
    }

    func field(_ object: JSONObject, _ path: String) -> String? { JSONValue.object(object).value(atPath: path)?.scalarText }

    @Test(arguments: [
        ("<38>Nov 24 10:00:00 web-1 sshd[1]: Failed password for invalid user admin from 203.0.113.9 port 4242 ssh2",
         ["event.action": "ssh_login", "event.outcome": "failure", "user.name": "admin", "source.ip": "203.0.113.9", "source.port": "4242", "system.auth.ssh.method": "password"]),
        ("<38>Nov 24 10:00:00 web-1 sshd[1]: Accepted publickey for alice from 2001:db8::1 port 50000 ssh2: RSA SHA256:abc",
         ["event.action": "ssh_login", "event.outcome": "success", "user.name": "alice", "source.ip": "2001:db8::1", "source.port": "50000"]),
        ("<38>Nov 24 10:00:00 web-1 sshd[1]: Invalid user webmaster from 173.234.31.186 port 40000",
         ["event.action": "ssh_login", "event.outcome": "failure", "user.name": "webmaster", "source.ip": "173.234.31.186", "system.auth.ssh.event": "Invalid"]),
        ("<38>Nov 24 10:00:00 web-1 sshd[1]: Disconnected from authenticating user root 10.1.1.1 port 22 [preauth]",
         ["event.action": "ssh_disconnect", "user.name": "root", "source.ip": "10.1.1.1", "source.port": "22"]),
        ("<86>Aug  6 19:42:10 server01 sudo[18432]: alice : PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id",
         ["user.name": "alice", "user.effective.name": "root", "system.auth.sudo.command": "/usr/bin/id", "host.hostname": "server01", "process.pid": "18432"]),
        ("<86>Nov 24 10:00:00 h su[9]: FAILED su for root by mallory",
         ["event.outcome": "failure", "user.name": "mallory", "user.effective.name": "root"]),
        ("<86>Nov 24 10:00:00 h sshd[9]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=198.51.100.7  user=root",
         ["event.outcome": "failure", "user.name": "root"]),
        ("<86>Nov 24 10:00:00 h useradd[9]: new user: name=bob, UID=1001, GID=1001, home=/home/bob, shell=/bin/bash",
         ["user.name": "bob", "user.id": "1001"]),
    ])
    func linuxAuthPack(_ line: String, _ expected: [String: String]) {
        let object = decode(line)
        #expect(field(object, "event.dataset") == "linux.auth")
        for (path, value) in expected {
            #expect(field(object, path) == value, "\(path) in \(line)")
        }
        #expect(field(object, "message") == line)
    }

    @Test func unknownProgramsAreGenericSyslog() {
        let object = decode("<13>Nov 24 10:00:00 h backupd[1]: nightly run finished in 42 s")
        #expect(field(object, "event.dataset") == "syslog")
        #expect(field(object, "process.name") == "backupd")
    }

    /// Elastic's expected document for its sudo sample (testdata; skipped when absent).
    @Test func elasticIntegrationsSudoSampleAgreesFieldByField() throws {
        let root = URL(fileURLWithPath: ProcessInfo.processInfo.environment["VIGIL_TESTDATA"]
            ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("shared/testdata").path)
        let log = root.appendingPathComponent("vendors/linux-auth/elastic-integrations/test-sudo-no-tty.log")
        guard let text = try? String(contentsOf: log, encoding: .utf8) else {
            print("SKIP elasticIntegrationsSudoSample: \(log.path) is absent (bare clone)")
            return
        }
        let expectedData = try Data(contentsOf: URL(fileURLWithPath: log.path + "-expected.json"))
        guard case .object(let top) = try JSONParser.parse(Array(expectedData)), case .array(let docs)? = top["expected"], case .object(let expected)? = docs.first else {
            Issue.record("unexpected expected.json shape")
            return
        }
        let line = text.split(separator: "\n").first.map(String.init) ?? ""
        let object = decode("<86>" + line)
        for path in ["user.name", "user.effective.name", "process.name", "process.pid", "host.hostname", "system.auth.sudo.command", "system.auth.sudo.pwd", "system.auth.sudo.user"] {
            #expect(field(object, path) == JSONValue.object(expected).value(atPath: path)?.scalarText, "\(path)")
        }
        // Month, day and time agree (the expected year is when the fixture was regenerated).
        guard case .candidate(let candidate) = NormalizingSyslogDecoder().decode(frame: Array(("<86>" + line).utf8), peer: "x", received: Self.reference).item,
              case .millis(let millis) = candidate.timestamp, let expectedTime = expected["@timestamp"]?.stringValue else {
            Issue.record("no timestamp")
            return
        }
        #expect(Timestamp.formatRFC3339(millis).dropFirst(4) == expectedTime.dropFirst(4))
    }
}
