import Foundation
import VigilCore

/// Linux authentication logs (auth.log / secure): sshd, sudo, su, PAM, useradd/groupadd.
/// Dataset `system.auth` (Elastic's name); vendor fields under `system.auth.*`.
public struct LinuxAuthPack: ProtocolPack {
    public let name = "linux.auth"
    public init() {}

    static let programs: Set<String> = ["sshd", "sudo", "su", "useradd", "groupadd", "userdel", "usermod", "passwd", "login", "systemd-logind", "CRON", "cron", "sshd-session"]

    public func normalize(_ input: PackInput) -> PackResult? {
        guard input.document == nil, let app = input.syslog.appName else { return nil }
        let isPAM = input.body.hasPrefix("pam_unix(")
        guard Self.programs.contains(app) || isPAM else { return nil }
        let m = input.body
        var b = ECSBuilder()
        b.set("event.kind", string: "event")
        // By byte: the markers and stops are ASCII, and `prefix(while:)` over Characters and
        // `split` on a Character walked grapheme clusters (over half of this pack's time).
        func after(_ marker: String, until stop: UInt8 = UInt8(ascii: " ")) -> String? {
            guard let r = m.byteRange(of: marker) else { return nil }
            let rest = m[r.upperBound...]
            let v = rest[..<(rest.firstIndex(ofByte: stop) ?? rest.endIndex)]
            return v.isEmpty ? nil : String(v)
        }
        var recognised = true
        if app == "sshd" || app == "sshd-session", !isPAM {
            b.set("event.category", strings: ["authentication"])
            // The first two words, and the rest unsplit (only the disconnect lines look further).
            let words = m.splitBytes(UInt8(ascii: " "), maxSplits: 2)
            if m.hasPrefix("Accepted ") || m.hasPrefix("Failed ") {
                let ok = m.hasPrefix("Accepted")
                b.set("event.action", string: ok ? "ssh_login" : "ssh_login")
                b.set("event.outcome", string: ok ? "success" : "failure")
                b.set("event.type", strings: ok ? ["info", "start"] : ["info"])
                b.set("system.auth.ssh.event", string: words.first.map(String.init))
                b.set("system.auth.ssh.method", string: words.count > 1 ? String(words[1]) : nil)
                let invalid = m.containsBytes(" for invalid user ")
                b.set("user.name", string: invalid ? after("for invalid user ") : after(" for "))
                b.set("source.ip", ip: after(" from "))
                b.set("source.port", int: after(" port "))
                b.set("system.auth.ssh.signature", string: after(": ", until: UInt8(ascii: "\n")).flatMap { m.containsBytes("ssh2: ") ? $0 : nil })
            } else if m.hasPrefix("Invalid user ") {
                b.set("event.action", string: "ssh_login")
                b.set("event.outcome", string: "failure")
                b.set("event.type", strings: ["info"])
                b.set("system.auth.ssh.event", string: "Invalid")
                b.set("user.name", string: after("Invalid user "))
                b.set("source.ip", ip: after(" from "))
                b.set("source.port", int: after(" port "))
            } else if m.hasPrefix("Disconnected from") || m.hasPrefix("Received disconnect from") || m.hasPrefix("Connection closed by") || m.hasPrefix("Disconnecting") {
                b.set("event.action", string: "ssh_disconnect")
                b.set("event.type", strings: ["end"])
                b.set("event.category", strings: ["authentication", "session"])
                b.set("system.auth.ssh.event", string: "Disconnect")
                if let u = after("user ") { b.set("user.name", string: u) }
                // "Disconnected from authenticating user root 10.1.1.1 port 22": the address is
                // the first word that is one, wherever it stands.
                let ip = [after(" from "), after("Connection closed by ")].compactMap { $0 }.first(where: { ECSBuilder.isIP(Substring($0)) })
                b.set("source.ip", ip: ip ?? m.splitBytes(UInt8(ascii: " ")).first(where: { ECSBuilder.isIP($0) }).map(String.init))
                b.set("source.port", int: after(" port "))
            } else {
                b.set("event.type", strings: ["info"])
                b.set("source.ip", ip: after(" from "))
                recognised = !m.isEmpty
            }
        } else if app == "sudo", !isPAM {
            b.set("event.category", strings: ["process"])
            b.set("event.type", strings: ["start"])
            b.set("event.action", string: "sudo")
            let parts = m.split(separator: ":", maxSplits: 1)
            if parts.count == 2 {
                b.set("user.name", string: parts[0].trimmingCharacters(in: " "))
                for item in parts[1].split(separator: ";") {
                    let kv = item.split(separator: "=", maxSplits: 1)
                    guard kv.count == 2 else {
                        let reason = item.trimmingCharacters(in: " ")
                        if !reason.isEmpty { b.set("system.auth.sudo.error", string: reason); b.set("event.outcome", string: "failure") }
                        continue
                    }
                    let key = kv[0].trimmingCharacters(in: " ").lowercased()
                    let value = kv[1].trimmingCharacters(in: " ")
                    b.set("system.auth.sudo.\(key)", string: value)
                    if key == "user" { b.set("user.effective.name", string: value) }
                    if key == "command" { b.set("process.command_line", string: value) }
                }
            } else {
                recognised = false
            }
        } else if app == "su", !isPAM {
            b.set("event.category", strings: ["authentication"])
            b.set("event.type", strings: ["info"])
            b.set("event.action", string: "su")
            let failed = m.containsBytes("FAILED") || m.lowercased().containsBytes("failed")
            b.set("event.outcome", string: failed ? "failure" : "success")
            if let to = after("to ") ?? after("su for ") { b.set("user.effective.name", string: to) }
            if let by = after(" by ") { b.set("user.name", string: by) }
        } else if app == "useradd" || app == "groupadd" || app == "userdel" || app == "usermod" {
            b.set("event.category", strings: ["iam"])
            let isGroup = m.hasPrefix("new group") || app == "groupadd"
            b.set("event.type", strings: [isGroup ? "group" : "user", app == "userdel" ? "deletion" : app == "usermod" ? "change" : "creation"])
            b.set("event.action", string: app)
            b.set("event.outcome", string: "success")
            if let n = after("name=", until: UInt8(ascii: ",")) { b.set(isGroup ? "group.name" : "user.name", string: n) }
            if let uid = after("UID=", until: UInt8(ascii: ",")) { b.set("user.id", string: uid) }
            if let gid = after("GID=", until: UInt8(ascii: ",")) { b.set("group.id", string: gid) }
            b.set("system.auth.useradd.home", string: after("home=", until: UInt8(ascii: ",")))
            b.set("system.auth.useradd.shell", string: after("shell=", until: UInt8(ascii: ",")))
        } else {
            // PAM: `pam_unix(sshd:session): session opened for user root(uid=0) by (uid=0)`
            b.set("event.category", strings: ["authentication"])
            if m.containsBytes("session opened") {
                b.set("event.category", strings: ["session"])
                b.set("event.type", strings: ["start"])
                b.set("event.action", string: "session_opened")
            } else if m.containsBytes("session closed") {
                b.set("event.category", strings: ["session"])
                b.set("event.type", strings: ["end"])
                b.set("event.action", string: "session_closed")
            } else if m.containsBytes("authentication failure") {
                b.set("event.type", strings: ["info"])
                b.set("event.action", string: "authentication_failure")
                b.set("event.outcome", string: "failure")
                b.set("source.ip", ip: after("rhost=", until: UInt8(ascii: " ")))
            } else {
                b.set("event.type", strings: ["info"])
            }
            if let u = after("for user ") { b.set("user.name", string: u.prefix(while: { $0 != "(" }).trimmingQuotes) }
            if b.get("user.name") == nil, let u = after(" user=") { b.set("user.name", string: u) }
            if let module = m.split(separator: "(").first { b.set("system.auth.pam.module", string: String(module)) }
        }
        for path in ["source.ip"] { b.append("related.ip", b.string(path)) }
        if let u = b.string("user.name") { b.append("related.user", u) }
        return PackResult(dataset: "linux.auth", fields: b.object, parseFailure: !recognised)
    }
}

private extension Substring {
    var trimmingQuotes: String { String(self).trimmingQuotes }
}
