import Foundation
import VigilCore
import VigilIntake

/// Linux authentication logs (sshd, sudo, su, PAM, useradd) to ECS, as Elastic's `system.auth`
/// maps them; vendor fields under `system.auth.*`, dataset `linux.auth`.
public enum LinuxAuthPack {
    static let programs: Set<String> = ["sshd", "sudo", "su", "useradd", "groupadd", "usermod", "userdel", "passwd", "login", "systemd-logind", "unix_chkpwd"]

    /// Fields for a message from `program`; nil when this pack does not know the program.
    /// The flag says the program is known but the line was not understood.
    public static func normalize(program: String, message: String, into fields: inout JSONObject) -> (recognised: Bool, parsed: Bool) {
        guard programs.contains(program) || message.hasPrefix("pam_unix(") else { return (false, false) }
        var parsed = false
        func set(_ value: JSONValue, _ path: String) { FieldNesting.set(value, at: path, in: &fields) }
        func strings(_ values: [String]) -> JSONValue { .array(values.map(JSONValue.string)) }
        var related: [String] = []

        if message.hasPrefix("pam_unix(") {
            parsed = pam(message, set: set, related: &related)
        } else {
            switch program {
            case "sshd": parsed = sshd(message, set: set, related: &related)
            case "sudo": parsed = sudo(message, set: set, related: &related)
            case "su": parsed = su(message, set: set, related: &related)
            case "useradd", "groupadd", "usermod", "userdel": parsed = useradd(program, message, set: set, related: &related)
            default: parsed = false
            }
        }
        if !related.isEmpty { set(strings(Array(Set(related)).sorted()), "related.user") }
        return (true, parsed)
    }

    /// The words of a message, split on spaces.
    static func words(_ text: String) -> [Substring] { text.split(separator: " ", omittingEmptySubsequences: true) }

    static func value(after key: String, in words: [Substring]) -> String? {
        guard let index = words.firstIndex(where: { $0 == key }), index + 1 < words.count else { return nil }
        return String(words[index + 1])
    }

    static func sshd(_ message: String, set: (JSONValue, String) -> Void, related: inout [String]) -> Bool {
        let w = words(message)
        func login(outcome: String, method: String?) {
            set(.string("ssh_login"), "event.action")
            set(.string(outcome), "event.outcome")
            set(.array([.string("authentication"), .string("session")]), "event.category")
            set(.array([.string(outcome == "success" ? "start" : "info")]), "event.type")
            if let method { set(.string(method), "system.auth.ssh.method") }
            set(.string(outcome == "success" ? "Accepted" : "Failed"), "system.auth.ssh.event")
        }
        func source() {
            if let ip = value(after: "from", in: w) { set(.string(ip), "source.ip") }
            if let port = value(after: "port", in: w).flatMap({ Int64($0.trimmingCharacters(in: [":"])) }) { set(.int(port), "source.port") }
        }
        // Accepted|Failed <method> for [invalid user ]<user> from <ip> port <port> ssh2
        if w.count >= 6, w[0] == "Accepted" || w[0] == "Failed", w[2] == "for" {
            login(outcome: w[0] == "Accepted" ? "success" : "failure", method: String(w[1]))
            var userIndex = 3
            if w.count > 5, w[3] == "invalid", w[4] == "user" { userIndex = 5 }
            if userIndex < w.count, w[userIndex] != "from" {
                set(.string(String(w[userIndex])), "user.name")
                related.append(String(w[userIndex]))
            }
            source()
            return true
        }
        // Invalid user <user> from <ip> [port <port>]
        if w.count >= 3, w[0] == "Invalid", w[1] == "user" {
            set(.string("invalid_user"), "event.action")
            set(.string("failure"), "event.outcome")
            set(.array([.string("authentication")]), "event.category")
            set(.array([.string("info")]), "event.type")
            if w[2] != "from" {
                set(.string(String(w[2])), "user.name")
                related.append(String(w[2]))
            }
            source()
            return true
        }
        // Disconnected from [invalid|authenticating] user <user> <ip> port <port> [preauth]
        // Received disconnect from <ip> port <port>:11: ...
        // Connection closed by [authenticating user <user>] <ip> port <port> [preauth]
        if message.hasPrefix("Disconnected from") || message.hasPrefix("Received disconnect from") || message.hasPrefix("Connection closed by") {
            set(.string("ssh_disconnect"), "event.action")
            set(.array([.string("session")]), "event.category")
            set(.array([.string("end")]), "event.type")
            if let userIndex = w.firstIndex(of: "user"), userIndex + 1 < w.count {
                set(.string(String(w[userIndex + 1])), "user.name")
                related.append(String(w[userIndex + 1]))
            }
            if let portIndex = w.firstIndex(of: "port"), portIndex >= 1 {
                set(.string(String(w[portIndex - 1])), "source.ip")
                if portIndex + 1 < w.count, let port = Int64(w[portIndex + 1].prefix { $0.isNumber }) { set(.int(port), "source.port") }
            }
            return true
        }
        return false
    }

    /// `alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id`
    static func sudo(_ message: String, set: (JSONValue, String) -> Void, related: inout [String]) -> Bool {
        guard let colon = message.range(of: " : ") else { return false }
        let user = message[..<colon.lowerBound].trimmingCharacters(in: .whitespaces)
        guard !user.isEmpty, !user.contains(" ") else { return false }
        set(.string(user), "user.name")
        related.append(user)
        set(.array([.string("process")]), "event.category")
        set(.array([.string("start")]), "event.type")
        for part in message[colon.upperBound...].components(separatedBy: " ; ") {
            guard let eq = part.firstIndex(of: "=") else {
                // "3 incorrect password attempts" and friends.
                set(.string(part.trimmingCharacters(in: .whitespaces)), "system.auth.sudo.error")
                set(.string("failure"), "event.outcome")
                continue
            }
            let key = part[..<eq].trimmingCharacters(in: .whitespaces), value = String(part[part.index(after: eq)...])
            switch key {
            case "TTY": set(.string(value), "system.auth.sudo.tty")
            case "PWD": set(.string(value), "system.auth.sudo.pwd")
            case "USER":
                set(.string(value), "system.auth.sudo.user")
                set(.string(value), "user.effective.name")
                related.append(value)
            case "COMMAND": set(.string(value), "system.auth.sudo.command")
            default: break
            }
        }
        return true
    }

    /// `Successful su for root by alice`, `FAILED su for root by alice`, `(to root) alice on pts/0`
    static func su(_ message: String, set: (JSONValue, String) -> Void, related: inout [String]) -> Bool {
        let w = words(message)
        if w.count >= 6, w[1] == "su", w[2] == "for", w[4] == "by" {
            set(.string(String(w[5])), "user.name")
            set(.string(String(w[3])), "user.effective.name")
            related += [String(w[5]), String(w[3])]
            set(.string(w[0] == "Successful" ? "success" : "failure"), "event.outcome")
            set(.string("su"), "event.action")
            set(.array([.string("authentication")]), "event.category")
            return true
        }
        if w.count >= 3, w[0] == "(to", w[1].hasSuffix(")") {
            let target = String(w[1].dropLast())
            set(.string(String(w[2])), "user.name")
            set(.string(target), "user.effective.name")
            related += [String(w[2]), target]
            set(.string("su"), "event.action")
            set(.string("success"), "event.outcome")
            return true
        }
        return false
    }

    /// `pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=1.2.3.4  user=root`
    /// `pam_unix(sudo:session): session opened for user root(uid=0) by alice(uid=1000)`
    static func pam(_ message: String, set: (JSONValue, String) -> Void, related: inout [String]) -> Bool {
        let w = words(message)
        if message.contains("authentication failure") {
            set(.string("authentication_failure"), "event.action")
            set(.string("failure"), "event.outcome")
            set(.array([.string("authentication")]), "event.category")
            for word in w {
                if word.hasPrefix("rhost="), word.count > 6 { set(.string(String(word.dropFirst(6))), "source.address") }
                if word.hasPrefix("user="), word.count > 5 {
                    set(.string(String(word.dropFirst(5))), "user.name")
                    related.append(String(word.dropFirst(5)))
                }
            }
            return true
        }
        if let index = w.firstIndex(of: "session"), index + 1 < w.count, w[index + 1] == "opened" || w[index + 1] == "closed" {
            set(.string(w[index + 1] == "opened" ? "session_opened" : "session_closed"), "event.action")
            set(.array([.string("session")]), "event.category")
            set(.array([.string(w[index + 1] == "opened" ? "start" : "end")]), "event.type")
            if let user = value(after: "user", in: w) {
                let name = String(user.prefix { $0 != "(" })
                set(.string(name), "user.name")
                related.append(name)
            }
            return true
        }
        return false
    }

    /// `new user: name=bob, UID=1001, GID=1001, home=/home/bob, shell=/bin/bash, from=/dev/pts/0`
    static func useradd(_ program: String, _ message: String, set: (JSONValue, String) -> Void, related: inout [String]) -> Bool {
        let isUser = message.hasPrefix("new user:"), isGroup = message.hasPrefix("new group:")
        guard isUser || isGroup else { return false }
        set(.array([.string("iam")]), "event.category")
        set(.array([.string("creation"), .string(isUser ? "user" : "group")]), "event.type")
        set(.string(isUser ? "user-created" : "group-created"), "event.action")
        for part in message.drop(while: { $0 != ":" }).dropFirst().split(separator: ",") {
            let pair = part.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1).map(String.init)
            guard pair.count == 2 else { continue }
            switch (pair[0], isUser) {
            case ("name", true):
                set(.string(pair[1]), "user.name")
                related.append(pair[1])
            case ("name", false): set(.string(pair[1]), "group.name")
            case ("UID", _): set(.string(pair[1]), "user.id")
            case ("GID", true): set(.string(pair[1]), "group.id")
            case ("GID", false): set(.string(pair[1]), "group.id")
            case ("home", _): set(.string(pair[1]), "system.auth.useradd.home")
            case ("shell", _): set(.string(pair[1]), "system.auth.useradd.shell")
            default: break
            }
        }
        return true
    }
}

/// The syslog decoder with the protocol packs on: the header's time, host and program, then
/// the pack that recognises the program; anything else is generic `syslog`.
public struct PackSyslogDecoder: SyslogDecoding {
    public init() {}

    public func decode(frame: [UInt8], peer: String, received: EpochMillis) -> SyslogDecoded {
        let parsed = SyslogMessage.parse(frame, reference: received)
        var fields = JSONObject()
        fields["message"] = .string(String(decoding: frame, as: UTF8.self))
        parsed.fields(into: &fields)
        FieldNesting.set(.string(peer), at: "log.source.address", in: &fields)
        var dataset = "syslog"
        var failure = false
        if let program = parsed.appName {
            let (recognised, ok) = LinuxAuthPack.normalize(program: program, message: parsed.message, into: &fields)
            if recognised {
                dataset = "linux.auth"
                failure = !ok
            }
        }
        FieldNesting.set(.string(dataset), at: "event.dataset", in: &fields)
        let timestamp: Candidate.TimestampField = parsed.timestamp.map { .millis($0) } ?? .absent
        return SyslogDecoded(item: .candidate(Candidate(object: fields, timestamp: timestamp, raw: frame)), dataset: dataset, parseFailure: failure)
    }
}
