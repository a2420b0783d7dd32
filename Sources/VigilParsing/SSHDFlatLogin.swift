import VigilCore

/// sshd's `Accepted …` and `Failed …` lines behind an RFC 3164 header, normalized into flat
/// fields: the document `LinuxAuthPack` (through `Normalizer` and the syslog decoder) makes
/// for them, without a `String` or a nested object per field.
///
/// It takes only lines whose document it makes exactly (`nil` for any other): ASCII, a plain
/// `<PRI>Mmm dd hh:mm:ss host sshd[pid]: ` header, a body starting `Accepted ` or `Failed `, and
/// no pack before the Linux one taking the line.
struct SSHDFlatLogin: Sendable {
    static let schema = FlatSyslog.schema("sshd", paths: paths, literals: literals)

    static let paths = FlatSyslog.taggedHeaderPaths + [
        "event.kind", "event.category", "event.action", "event.outcome", "event.type", "event.dataset",
        "system.auth.ssh.event", "system.auth.ssh.method", "system.auth.ssh.signature",
        "user.name",
        "source.ip", "source.port",
        "related.ip", "related.user",
        "message",
    ]

    enum Literal: Int {
        case event, authentication, sshLogin, success, failure, infoStart, info, dataset
    }

    static let literals: [JSONValue] = [
        .string("event"), .array([.string("authentication")]), .string("ssh_login"), .string("success"), .string("failure"),
        .array([.string("info"), .string("start")]), .array([.string("info")]), .string("linux.auth"),
    ]

    struct Paths {
        let header: FlatSyslog.HeaderPaths
        let process: FlatSyslog.ProcessPaths
        let kind, category, action, outcome, type, dataset, sshEvent, sshMethod, sshSignature, userName, sourceIP, sourcePort: Int
        let relatedIP, relatedUser, message: Int

        init(_ s: FlatSchema) {
            func p(_ name: String) -> Int { s.path(name)! }
            header = FlatSyslog.HeaderPaths(s)
            process = FlatSyslog.ProcessPaths(s)
            (kind, category, action, outcome, type, dataset) = (p("event.kind"), p("event.category"), p("event.action"), p("event.outcome"), p("event.type"), p("event.dataset"))
            (sshEvent, sshMethod, sshSignature, userName, sourceIP, sourcePort) = (p("system.auth.ssh.event"), p("system.auth.ssh.method"), p("system.auth.ssh.signature"), p("user.name"), p("source.ip"), p("source.port"))
            (relatedIP, relatedUser, message) = (p("related.ip"), p("related.user"), p("message"))
        }
    }

    static let at = Paths(schema)

    /// - Parameters:
    ///   - frame: the syslog frame as received; `syslog`, its header as `SyslogParser` read it.
    ///   - earlierPacks: the packs a line meets before the Linux one: none may take it.
    static func normalize(frame: [UInt8], line: String, syslog: SyslogMessage, peer: String, receivedAt: EpochMillis,
                          earlierPacks: ArraySlice<any ProtocolPack>) -> FlatNormalizedEvent? {
        guard syslog.format == .rfc3164, let priority = syslog.priority, let hostname = syslog.hostname, syslog.appName == "sshd",
              let procID = syslog.procID, syslog.msgID == nil, syslog.structuredData == nil,
              !ECSBuilder.isPlaceholder(hostname), !ECSBuilder.isPlaceholder(procID),
              syslog.message.hasPrefix("Accepted ") || syslog.message.hasPrefix("Failed ")
        else { return nil }
        guard FlatSyslog.noneTakes(earlierPacks, line: line, syslog: syslog, receivedAt: receivedAt) else { return nil }
        return FlatSyslog.withBody(frame, message: syslog.message) { b, body -> FlatNormalizedEvent? in
            var mapping = Mapping(frame: frame, b: b, body: body)
            mapping.map(priority: priority, hostname: hostname, procID: procID, peer: peer)
            return FlatNormalizedEvent(fields: mapping.fields, timestamp: syslog.timestamp, dataset: "linux.auth", parseFailure: false)
        }
    }

    struct Mapping {
        var fields: FlatFields
        let b: UnsafeBufferPointer<UInt8>
        let body: Range<Int>

        init(frame: [UInt8], b: UnsafeBufferPointer<UInt8>, body: Range<Int>) {
            fields = FlatFields(schema: SSHDFlatLogin.schema, bytes: frame)
            self.b = b
            self.body = body
        }

        /// Where `marker` first occurs in the body (its end); nil when it does not.
        func end(of marker: StaticString) -> Int? {
            FlatSyslog.find(marker, in: b, body).map { $0 + marker.utf8CodeUnitCount }
        }

        /// `LinuxAuthPack`'s `after`: the text after the marker's first occurrence, up to `stop`; nil when empty.
        func after(_ marker: StaticString, until stop: UInt8 = UInt8(ascii: " ")) -> Range<Int>? {
            guard let start = end(of: marker) else { return nil }
            var i = start
            while i < body.upperBound, b[i] != stop { i += 1 }
            return i > start ? start..<i : nil
        }

        func isPlaceholder(_ range: Range<Int>) -> Bool { FlatSyslog.isPlaceholder(b, range) }

        mutating func text(_ path: Int, _ range: Range<Int>?) {
            if let range, !isPlaceholder(range) { fields.set(path, text: range) }
        }

        mutating func map(priority: Int, hostname: String, procID: String, peer: String) {
            let at = SSHDFlatLogin.at
            // `SyslogMessage.ecsFields` and the decoder's sender address.
            _ = FlatSyslog.setHeader(&fields, at.header, priority: priority, hostname: hostname, peer: peer)
            FlatSyslog.setProcess(&fields, at.process, appName: "sshd", procID: procID)
            // `LinuxAuthPack` for `Accepted …` and `Failed …`.
            let accepted = b[body.lowerBound] == UInt8(ascii: "A")
            fields.set(at.kind, literal: Literal.event.rawValue)
            fields.set(at.category, literal: Literal.authentication.rawValue)
            fields.set(at.action, literal: Literal.sshLogin.rawValue)
            fields.set(at.outcome, literal: (accepted ? Literal.success : .failure).rawValue)
            fields.set(at.type, literal: (accepted ? Literal.infoStart : .info).rawValue)
            // The first two words (`splitBytes(" ", maxSplits: 2)`).
            var i = body.lowerBound
            var words: [Range<Int>] = []
            while words.count < 2 {
                while i < body.upperBound, b[i] == 0x20 { i += 1 }
                guard i < body.upperBound else { break }
                let start = i
                while i < body.upperBound, b[i] != 0x20 { i += 1 }
                words.append(start..<i)
            }
            text(at.sshEvent, words.first)
            text(at.sshMethod, words.count > 1 ? words[1] : nil)
            let user = end(of: " for invalid user ") != nil ? after("for invalid user ") : after(" for ")
            text(at.userName, user)
            if let ip = after(" from "), FlatSyslog.isIP(b, ip) { fields.set(at.sourceIP, text: ip) }
            if let port = after(" port "), let value = FlatSyslog.parseInt(b, port) { fields.set(at.sourcePort, int: value) }
            if end(of: "ssh2: ") != nil { text(at.sshSignature, after(": ", until: UInt8(ascii: "\n"))) }
            FlatSyslog.setDistinct(&fields, at.relatedIP, [fields.textRange(at.sourceIP)])
            FlatSyslog.setDistinct(&fields, at.relatedUser, [fields.textRange(at.userName)])
            fields.set(at.message, text: 0..<b.count)
            fields.set(at.dataset, literal: Literal.dataset.rawValue)
        }
    }
}
