import Foundation
public import VigilCore

/// The header of one syslog frame and its body.
public struct SyslogMessage: Sendable, Equatable {
    public enum Format: String, Sendable, Equatable {
        case rfc5424, rfc3164
        /// No recognisable header: `message` is the whole frame.
        case none
    }

    public var format: Format = .none
    public var priority: Int?
    public var timestamp: EpochMillis?
    /// False when the year was inferred from the reference time.
    public var timestampHasYear = true
    /// False when the timestamp had no offset and UTC was assumed.
    public var timestampHasZone = true
    public var hostname: String?
    public var appName: String?
    public var procID: String?
    public var msgID: String?
    /// RFC 5424 structured data: `{sd-id: {param: value}}`.
    public var structuredData: JSONObject?
    /// The body (BOM stripped for RFC 5424).
    public var message: String = ""

    public init() {}

    public var facility: Int? { priority.map { $0 / 8 } }
    public var severity: Int? { priority.map { $0 % 8 } }

    /// The header as nested ECS fields (`log.syslog.*`, `host.hostname`, `process.*`).
    ///
    /// Built member by member (every syslog line needs it): the same document as setting each
    /// path through `ECSBuilder` (`ecsFieldsByPath`), placeholders skipped alike.
    public var ecsFields: JSONObject {
        func text(_ value: String?) -> JSONValue? {
            guard let value, !ECSBuilder.isPlaceholder(value) else { return nil }
            return .string(value)
        }
        // A document's message (no syslog header) has none of them: nothing to allocate.
        guard priority != nil || hostname != nil || appName != nil || procID != nil || msgID != nil || !(structuredData?.isEmpty ?? true) else { return JSONObject() }
        var syslog = JSONObject()
        syslog.members.reserveCapacity(8)
        if let priority {
            syslog.members.append(("priority", .int(Int64(priority))))
            syslog.members.append(("facility", .object(JSONObject([("code", .int(Int64(priority / 8)))]))))
            syslog.members.append(("severity", .object(JSONObject([("code", .int(Int64(priority % 8)))]))))
        }
        if let value = text(hostname) { syslog.members.append(("hostname", value)) }
        if let value = text(appName) { syslog.members.append(("appname", value)) }
        if let value = text(procID) { syslog.members.append(("procid", value)) }
        if let value = text(msgID) { syslog.members.append(("msgid", value)) }
        if let structuredData, !structuredData.isEmpty { syslog.members.append(("structured_data", .object(structuredData))) }
        var out = JSONObject()
        out.members.reserveCapacity(3)
        if !syslog.isEmpty { out.members.append(("log", .object(JSONObject([("syslog", .object(syslog))])))) }
        if let value = text(hostname) { out.members.append(("host", .object(JSONObject([("hostname", value), ("name", value)])))) }
        var process = JSONObject()
        if let value = text(appName) { process.members.append(("name", value)) }
        if let procID, let pid = ECSBuilder.parseInt(procID) { process.members.append(("pid", .int(pid))) }
        if !process.isEmpty { out.members.append(("process", .object(process))) }
        return out
    }

    /// `ecsFields` by setting each path, as packs do (the reference the direct build follows).
    var ecsFieldsByPath: JSONObject {
        var b = ECSBuilder()
        if let priority {
            b.set("log.syslog.priority", .int(Int64(priority)))
            b.set("log.syslog.facility.code", .int(Int64(priority / 8)))
            b.set("log.syslog.severity.code", .int(Int64(priority % 8)))
        }
        b.set("log.syslog.hostname", string: hostname)
        b.set("log.syslog.appname", string: appName)
        b.set("log.syslog.procid", string: procID)
        b.set("log.syslog.msgid", string: msgID)
        if let structuredData, !structuredData.isEmpty { b.set("log.syslog.structured_data", .object(structuredData)) }
        b.set("host.hostname", string: hostname)
        b.set("host.name", string: hostname)
        b.set("process.name", string: appName)
        if let procID { b.set("process.pid", int: procID) }
        return b.object
    }
}

/// Parses one syslog frame, RFC 5424 or RFC 3164 (BSD, with the variants real devices send:
/// ISO timestamps, no PRI, Cisco's `Mmm dd yyyy hh:mm:ss` and ` : %ASA-...`).
///
/// Parsing never fails: a frame without a recognisable header comes back with
/// `format == .none` and the whole frame as `message`.
///
/// ```swift
/// let m = SyslogParser().parse("<34>Oct 11 22:14:15 mymachine su: 'su root' failed", referenceTime: now)
/// m.appName // "su"
/// ```
public struct SyslogParser: Sendable {
    public init() {}

    /// - Parameters:
    ///   - referenceTime: the receive time; RFC 3164 timestamps take the year that puts them
    ///     closest to it and not more than one day after it.
    public func parse(_ text: String, referenceTime: EpochMillis) -> SyslogMessage {
        parse(Array(text.utf8), referenceTime: referenceTime)
    }

    public func parse(_ bytes: [UInt8], referenceTime: EpochMillis) -> SyslogMessage {
        var end = bytes.count
        while end > 0, bytes[end - 1] == 0x0A || bytes[end - 1] == 0x0D || bytes[end - 1] == 0 { end -= 1 }
        var cursor = Cursor(bytes: bytes, index: 0, end: end)
        var message = SyslogMessage()
        message.priority = cursor.priority()
        if message.priority != nil, let parsed = parse5424(&cursor, message) { return parsed }
        return parse3164(&cursor, message, referenceTime: referenceTime)
    }

    // MARK: - RFC 5424

    private func parse5424(_ outer: inout Cursor, _ base: SyslogMessage) -> SyslogMessage? {
        var c = outer
        guard c.peek() == UInt8(ascii: "1"), c.peek(1) == 0x20 else { return nil }
        c.index += 2
        var m = base
        m.format = .rfc5424
        let ts = c.token()
        if ts != "-" {
            guard let millis = Timestamp.parseRFC3339(ts) else { return nil }
            m.timestamp = millis
        }
        c.skipSpace()
        m.hostname = nilDash(c.token())
        c.skipSpace()
        m.appName = nilDash(c.token())
        c.skipSpace()
        m.procID = nilDash(c.token())
        c.skipSpace()
        m.msgID = nilDash(c.token())
        c.skipSpace()
        if c.peek() == UInt8(ascii: "-") {
            c.index += 1
        } else if c.peek() == UInt8(ascii: "[") {
            var sdCursor = c
            if let sd = structuredData(&sdCursor) {
                m.structuredData = sd
                c = sdCursor
            }
        }
        if c.peek() == 0x20 { c.index += 1 }
        var rest = c.rest()
        if rest.count >= 3, rest[0] == 0xEF, rest[1] == 0xBB, rest[2] == 0xBF { rest.removeFirst(3) }
        m.message = String(decoding: rest, as: UTF8.self)
        outer = c
        return m
    }

    private func nilDash(_ s: String) -> String? { s.isEmpty || s == "-" ? nil : s }

    /// `[id p="v" ...][id2 ...]`; nil when malformed (the caller keeps it in the message).
    private func structuredData(_ c: inout Cursor) -> JSONObject? {
        var result = JSONObject()
        while c.peek() == UInt8(ascii: "[") {
            c.index += 1
            var id: [UInt8] = []
            while let b = c.peek(), b != 0x20, b != UInt8(ascii: "]") { id.append(b); c.index += 1 }
            guard !id.isEmpty else { return nil }
            var params = JSONObject()
            while true {
                while c.peek() == 0x20 { c.index += 1 }
                guard let b = c.peek() else { return nil }
                if b == UInt8(ascii: "]") { c.index += 1; break }
                var name: [UInt8] = []
                while let n = c.peek(), n != UInt8(ascii: "="), n != 0x20, n != UInt8(ascii: "]") { name.append(n); c.index += 1 }
                guard c.peek() == UInt8(ascii: "="), c.peek(1) == UInt8(ascii: "\"") else { return nil }
                c.index += 2
                var value: [UInt8] = []
                var closed = false
                while let v = c.peek() {
                    c.index += 1
                    if v == UInt8(ascii: "\\"), let next = c.peek(),
                       next == UInt8(ascii: "\"") || next == UInt8(ascii: "\\") || next == UInt8(ascii: "]") {
                        value.append(next)
                        c.index += 1
                    } else if v == UInt8(ascii: "\"") {
                        closed = true
                        break
                    } else {
                        value.append(v)
                    }
                }
                guard closed else { return nil }
                params[String(decoding: name, as: UTF8.self)] = .string(String(decoding: value, as: UTF8.self))
            }
            result[String(decoding: id, as: UTF8.self)] = .object(params)
        }
        return result
    }

    // MARK: - RFC 3164 and friends

    private func parse3164(_ c: inout Cursor, _ base: SyslogMessage, referenceTime: EpochMillis) -> SyslogMessage {
        var m = base
        let start = c.index
        if let (millis, hasYear, hasZone) = timestamp3164(&c, referenceTime: referenceTime) {
            m.timestamp = millis
            m.timestampHasYear = hasYear
            m.timestampHasZone = hasZone
            m.format = .rfc3164
        } else {
            c.index = start
            if m.priority != nil { m.format = .rfc3164 }
        }
        c.skipSpace()
        if m.format == .rfc3164, m.timestamp != nil {
            // HOSTNAME, unless the next token is already the tag or a Cisco `%FAC-SEV-ID:`.
            if let b = c.peek(), b != UInt8(ascii: "%") {
                var probe = c
                let token = probe.token()
                let looksLikeTag = token.hasSuffix(":") || token.containsBytes("[")
                if !looksLikeTag, !token.isEmpty {
                    m.hostname = token
                    c = probe
                    c.skipSpace()
                }
            }
            // Cisco ASA puts ` : ` between host and message.
            if c.peek() == UInt8(ascii: ":"), c.peek(1) == 0x20 || c.peek(1) == nil {
                c.index += 1
                c.skipSpace()
            }
        }
        if m.format != .none || m.priority != nil {
            var probe = c
            if let (app, pid) = tag(&probe) {
                m.appName = app
                m.procID = pid
                c = probe
            }
        }
        m.message = String(decoding: c.rest(), as: UTF8.self)
        return m
    }

    /// `name[pid]: ` or `name: ` (a tag never starts with `%`, Cisco's mnemonic).
    private func tag(_ c: inout Cursor) -> (String, String?)? {
        var name: [UInt8] = []
        while let b = c.peek(), name.count <= 64 {
            let ok = (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
                || b == UInt8(ascii: "_") || b == UInt8(ascii: "-") || b == UInt8(ascii: ".") || b == UInt8(ascii: "/")
                || b == UInt8(ascii: "(") || b == UInt8(ascii: ")")
            guard ok else { break }
            name.append(b)
            c.index += 1
        }
        guard !name.isEmpty, name.count <= 64 else { return nil }
        var pid: String?
        if c.peek() == UInt8(ascii: "[") {
            c.index += 1
            var digits: [UInt8] = []
            while let b = c.peek(), b != UInt8(ascii: "]"), digits.count <= 32 { digits.append(b); c.index += 1 }
            guard c.peek() == UInt8(ascii: "]") else { return nil }
            c.index += 1
            pid = String(decoding: digits, as: UTF8.self)
        }
        guard c.peek() == UInt8(ascii: ":") else { return nil }
        c.index += 1
        guard c.peek() == 0x20 || c.peek() == nil else { return nil }
        if c.peek() == 0x20 { c.index += 1 }
        return (String(decoding: name, as: UTF8.self), pid)
    }

    /// Month names, lower-case, as three ASCII bytes packed into an integer.
    private static let months: [UInt32] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"].map { name in
        name.utf8.reduce(0) { $0 << 8 | UInt32($1) }
    }

    /// `Mmm dd hh:mm:ss[.fff]`, `Mmm dd yyyy hh:mm:ss`, `Mmm dd hh:mm:ss yyyy` or an ISO 8601 token.
    private func timestamp3164(_ c: inout Cursor, referenceTime: EpochMillis) -> (EpochMillis, Bool, Bool)? {
        if let d = c.peek(), d >= 0x30, d <= 0x39 {
            var probe = c
            var token = probe.token()
            if token.hasSuffix(":") { token.removeLast() }
            if let millis = Timestamp.parseRFC3339(token) {
                c = probe
                return (millis, true, true)
            }
            if let millis = Timestamp.parseRFC3339(token + "Z") {
                c = probe
                return (millis, true, false)
            }
            return nil
        }
        guard c.end - c.index >= 15 else { return nil }
        // Any case: OR-ing 0x20 lower-cases an ASCII letter and maps nothing else onto one.
        let mon = (UInt32(c.bytes[c.index] | 0x20) << 16) | (UInt32(c.bytes[c.index + 1] | 0x20) << 8) | UInt32(c.bytes[c.index + 2] | 0x20)
        guard let monthIndex = Self.months.firstIndex(of: mon) else { return nil }
        c.index += 3
        guard c.peek() == 0x20 else { return nil }
        while c.peek() == 0x20 { c.index += 1 }
        guard let day = c.number(maxDigits: 2), (1...31).contains(day) else { return nil }
        guard c.peek() == 0x20 else { return nil }
        c.index += 1
        var year: Int?
        if let y = c.lookaheadYear() { year = y; c.index += 5 }
        guard let hour = c.number(maxDigits: 2), c.peek() == UInt8(ascii: ":") else { return nil }
        c.index += 1
        guard let minute = c.number(maxDigits: 2), c.peek() == UInt8(ascii: ":") else { return nil }
        c.index += 1
        guard let second = c.number(maxDigits: 2), hour < 24, minute < 60, second <= 60 else { return nil }
        var millis = 0
        if c.peek() == UInt8(ascii: "."), let d = c.peek(1), d >= 0x30, d <= 0x39 {
            c.index += 1
            var scale = 100
            while let d = c.peek(), d >= 0x30, d <= 0x39 {
                millis += Int(d - 0x30) * scale
                scale /= 10
                c.index += 1
            }
        }
        if year == nil, c.peek() == 0x20 {
            c.index += 1
            if let y = c.lookaheadYear() { year = y; c.index += 4 } else { c.index -= 1 }
        }
        if c.peek() == UInt8(ascii: ":") { c.index += 1 }
        let timeOfDay = Int64(hour * 3600 + minute * 60 + min(second, 59)) * 1000 + Int64(millis)
        if let year {
            guard let days = Timestamp.dayNumber(year: year, month: monthIndex + 1, day: day) else { return nil }
            return (days &* Timestamp.millisPerDay &+ timeOfDay, true, false)
        }
        // Year inference: closest to the reference, at most a day in its future.
        let refYear = Timestamp.year(of: referenceTime)
        var best: EpochMillis?
        for y in [refYear - 1, refYear, refYear + 1] {
            guard let days = Timestamp.dayNumber(year: y, month: monthIndex + 1, day: day) else { continue }
            let t = days &* Timestamp.millisPerDay &+ timeOfDay
            guard t <= referenceTime &+ Timestamp.millisPerDay else { continue }
            if let current = best, (t &- referenceTime).magnitude >= (current &- referenceTime).magnitude { continue }
            best = t
        }
        guard let best else { return nil }
        return (best, false, false)
    }
}

/// A read position in a frame; every access is bounds-checked.
struct Cursor {
    let bytes: [UInt8]
    var index: Int
    let end: Int

    func peek(_ offset: Int = 0) -> UInt8? {
        let i = index + offset
        return i >= 0 && i < end ? bytes[i] : nil
    }

    mutating func skipSpace() { while peek() == 0x20 { index += 1 } }

    /// Bytes up to the next space (not consumed).
    mutating func token() -> String {
        let start = index
        while let b = peek(), b != 0x20 { index += 1 }
        return String(decoding: bytes[start..<index], as: UTF8.self)
    }

    mutating func number(maxDigits: Int) -> Int? {
        var value = 0
        var count = 0
        while count < maxDigits, let d = peek(), d >= 0x30, d <= 0x39 {
            value = value * 10 + Int(d - 0x30)
            count += 1
            index += 1
        }
        return count > 0 ? value : nil
    }

    /// Four digits followed by a space or the end, at the cursor.
    func lookaheadYear() -> Int? {
        var value = 0
        for i in 0..<4 {
            guard let d = peek(i), d >= 0x30, d <= 0x39 else { return nil }
            value = value * 10 + Int(d - 0x30)
        }
        guard peek(4) == 0x20 || peek(4) == nil else { return nil }
        return value
    }

    /// Reads `<PRI>` (0...191) at the start; leaves the cursor alone when absent.
    mutating func priority() -> Int? {
        guard peek() == UInt8(ascii: "<") else { return nil }
        var i = 1
        var value = 0
        while i <= 3, let d = peek(i), d >= 0x30, d <= 0x39 {
            value = value * 10 + Int(d - 0x30)
            i += 1
        }
        guard i > 1, peek(i) == UInt8(ascii: ">"), value <= 191 else { return nil }
        index += i + 1
        return value
    }

    func rest() -> [UInt8] { index < end ? Array(bytes[index..<end]) : [] }
}
