import VigilCore

/// One syslog message's header and body (RFC 5424 and RFC 3164 with their common variants).
///
/// Parsing never fails: what is not a header stays in `message`, and a frame with no header at
/// all is all body.
public struct SyslogMessage: Sendable, Equatable {
    public var priority: Int?
    public var timestamp: EpochMillis?
    public var hostname: String?
    public var appName: String?
    public var procID: String?
    public var msgID: String?
    /// RFC 5424 structured data: `[id param="value"]` elements by id.
    public var structuredData: [(id: String, params: [(String, String)])] = []
    /// The text after the header.
    public var message: String
    public var rfc5424 = false

    public var facility: Int? { priority.map { $0 >> 3 } }
    public var severity: Int? { priority.map { $0 & 7 } }

    public static func == (lhs: SyslogMessage, rhs: SyslogMessage) -> Bool {
        lhs.priority == rhs.priority && lhs.timestamp == rhs.timestamp && lhs.hostname == rhs.hostname && lhs.appName == rhs.appName
            && lhs.procID == rhs.procID && lhs.msgID == rhs.msgID && lhs.message == rhs.message && lhs.rfc5424 == rhs.rfc5424
            && lhs.structuredData.map(\.id) == rhs.structuredData.map(\.id)
            && lhs.structuredData.map { $0.params.map { "\($0.0)=\($0.1)" } } == rhs.structuredData.map { $0.params.map { "\($0.0)=\($0.1)" } }
    }

    static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// Parses a frame. `reference` (the receive time) gives RFC 3164 timestamps their year:
    /// the year that puts the time nearest to, and not more than a day after, the reference.
    public static func parse(_ bytes: [UInt8], reference: EpochMillis) -> SyslogMessage {
        var text = String(decoding: bytes, as: UTF8.self)
        var result = SyslogMessage(message: text)
        var rest = Substring(text)
        // PRI
        if rest.hasPrefix("<"), let close = rest.prefix(5).firstIndex(of: ">") {
            let digits = rest[rest.index(after: rest.startIndex)..<close]
            if let value = Int(digits), value >= 0, value <= 191, digits.count <= 3 {
                result.priority = value
                rest = rest[rest.index(after: close)...]
            }
        }
        // RFC 5424: VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP SD [SP MSG]
        if rest.hasPrefix("1 ") {
            var fields = rest.dropFirst(2)
            func next() -> Substring? {
                guard let space = fields.firstIndex(of: " ") else {
                    defer { fields = fields[fields.endIndex...] }
                    return fields.isEmpty ? nil : fields
                }
                defer { fields = fields[fields.index(after: space)...] }
                return fields[..<space]
            }
            if let stamp = next(), let host = next(), let app = next(), let proc = next(), let msgID = next() {
                result.rfc5424 = true
                result.timestamp = stamp == "-" ? nil : Timestamp.parseRFC3339(String(stamp))
                result.hostname = host == "-" ? nil : String(host)
                result.appName = app == "-" ? nil : String(app)
                result.procID = proc == "-" ? nil : String(proc)
                result.msgID = msgID == "-" ? nil : String(msgID)
                var body = fields
                if body.hasPrefix("-") {
                    body = body.dropFirst()
                } else if body.hasPrefix("[") {
                    let (elements, after) = parseStructuredData(body)
                    result.structuredData = elements
                    body = after
                }
                if body.hasPrefix(" ") { body = body.dropFirst() }
                if body.hasPrefix("\u{FEFF}") { body = body.dropFirst() }
                result.message = String(body)
                return result
            }
        }
        // RFC 3164: TIMESTAMP HOSTNAME TAG[PID]: MSG; the timestamp may be "Mmm dd hh:mm:ss"
        // (with an optional year or milliseconds) or RFC 3339.
        rest = rest.drop { $0 == " " }
        if let (stamp, after) = bsdTimestamp(rest, reference: reference) {
            result.timestamp = stamp
            rest = after.drop { $0 == " " }
            // Hostname: a word not ending in ':' (Cisco ASA often sends ": %ASA-..." with no host).
            if let space = rest.firstIndex(of: " "), !rest[..<space].hasSuffix(":"), !rest[..<space].hasPrefix("%") {
                result.hostname = String(rest[..<space])
                rest = rest[rest.index(after: space)...]
            }
            if rest.hasPrefix(": ") { rest = rest.dropFirst(2) }
        }
        // TAG[PID]: (at most 48 characters of tag, no spaces).
        if let colon = rest.prefix(64).firstIndex(of: ":"), rest.index(after: colon) == rest.endIndex || rest[rest.index(after: colon)] == " " {
            let tag = rest[..<colon]
            if !tag.isEmpty, !tag.contains(" "), !tag.hasPrefix("%") {
                if let open = tag.firstIndex(of: "["), tag.hasSuffix("]") {
                    result.appName = String(tag[..<open])
                    result.procID = String(tag[tag.index(after: open)..<tag.index(before: tag.endIndex)])
                } else {
                    result.appName = String(tag)
                }
                rest = rest[rest.index(after: colon)...].drop { $0 == " " }
            }
        }
        text = String(rest)
        result.message = text
        return result
    }

    /// `Mmm dd hh:mm:ss[.fff] [yyyy]`, `yyyy Mmm dd hh:mm:ss` or an RFC 3339 time at the start.
    static func bsdTimestamp(_ text: Substring, reference: EpochMillis) -> (EpochMillis, Substring)? {
        if let first = text.first, first.isNumber {
            // RFC 3339 (rsyslog's high-precision format) or an ISO date without zone.
            let token = text.prefix { $0 != " " }
            if let millis = Timestamp.parseRFC3339(String(token)) { return (millis, text[token.endIndex...]) }
            return nil
        }
        var chars = Array(text.prefix(40).utf8)
        guard chars.count >= 15, let month = months.firstIndex(of: String(decoding: chars[0..<3], as: UTF8.self)), chars[3] == 0x20 else { return nil }
        // "Mmm dd yyyy hh:mm:ss" (Cisco): move the year behind the time.
        var yearFirst = false
        if chars.count >= 20, chars[11] == 0x20, chars[7...10].allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), chars[14] == 0x3A {
            let year = Array(chars[7...10])
            chars.removeSubrange(7...11)
            var end = 15
            if chars.count > 15, chars[15] == 0x2E {
                end = 16
                while end < chars.count, chars[end] >= 0x30, chars[end] <= 0x39 { end += 1 }
            }
            chars.insert(contentsOf: [0x20] + year, at: end)
            yearFirst = true
        }
        func number(_ range: Range<Int>) -> Int? {
            var value = 0
            for i in range {
                let c = chars[i]
                if c == 0x20 && i == range.lowerBound { continue }
                guard c >= 0x30 && c <= 0x39 else { return nil }
                value = value * 10 + Int(c - 0x30)
            }
            return value
        }
        guard let day = number(4..<6), (1...31).contains(day), chars[6] == 0x20, let hour = number(7..<9), chars[9] == 0x3A,
              let minute = number(10..<12), chars[12] == 0x3A, let second = number(13..<15), hour < 24, minute < 60, second < 61 else { return nil }
        var consumed = 15
        var millis = 0
        if chars.count > 16, chars[15] == 0x2E {
            var digits = 0
            var i = 16
            while i < chars.count, chars[i] >= 0x30, chars[i] <= 0x39 {
                if digits < 3 { millis = millis * 10 + Int(chars[i] - 0x30) }
                digits += 1
                i += 1
            }
            while digits < 3 { millis *= 10; digits += 1 }
            consumed = i
        }
        var explicitYear: Int?
        if chars.count >= consumed + 5, chars[consumed] == 0x20, let year = number((consumed + 1)..<(consumed + 5)), year > 1970,
           chars.count == consumed + 5 || chars[consumed + 5] == 0x20 {
            explicitYear = year
            consumed += 5
        }
        _ = yearFirst  // the consumed length is the same either way
        let dayMillis = Int64(((hour * 60 + minute) * 60 + second) * 1000 + millis)
        func stamp(_ year: Int) -> EpochMillis? {
            guard let days = Timestamp.dayNumber(year: year, month: month + 1, day: day) else { return nil }
            return days * 86_400_000 + dayMillis
        }
        let resolved: EpochMillis?
        if let explicitYear {
            resolved = stamp(explicitYear)
        } else {
            let referenceYear = Timestamp.year(of: reference)
            // Nearest of last, this and next year, not more than a day ahead of the reference.
            resolved = [referenceYear - 1, referenceYear, referenceYear + 1].compactMap(stamp)
                .filter { $0 <= reference + 86_400_000 }
                .min { abs($0 - reference) < abs($1 - reference) }
        }
        guard let resolved else { return nil }
        let index = text.utf8.index(text.startIndex, offsetBy: consumed)
        return (resolved, text[index...])
    }

    /// `[id k="v" k2="v\"2"][id2 ...]` and what follows it.
    static func parseStructuredData(_ text: Substring) -> ([(id: String, params: [(String, String)])], Substring) {
        var elements: [(id: String, params: [(String, String)])] = []
        var scalars = text.unicodeScalars[...]
        while scalars.first == "[" {
            scalars = scalars.dropFirst()
            let id = String(String.UnicodeScalarView(scalars.prefix { $0 != " " && $0 != "]" }))
            scalars = scalars.drop { $0 != " " && $0 != "]" }
            var params: [(String, String)] = []
            while let first = scalars.first, first == " " {
                scalars = scalars.dropFirst()
                let name = String(String.UnicodeScalarView(scalars.prefix { $0 != "=" && $0 != "]" }))
                scalars = scalars.drop { $0 != "=" && $0 != "]" }
                guard scalars.first == "=" else { break }
                scalars = scalars.dropFirst()
                guard scalars.first == "\"" else { break }
                scalars = scalars.dropFirst()
                var value = String.UnicodeScalarView()
                var escaped = false
                while let c = scalars.first {
                    scalars = scalars.dropFirst()
                    if escaped {
                        value.append(c)
                        escaped = false
                    } else if c == "\\" {
                        escaped = true
                    } else if c == "\"" {
                        break
                    } else {
                        value.append(c)
                    }
                }
                params.append((name, String(value)))
            }
            // Skip to the end of the element.
            scalars = scalars.drop { $0 != "]" }
            guard scalars.first == "]" else { break }
            scalars = scalars.dropFirst()
            elements.append((id, params))
        }
        return (elements, Substring(String(String.UnicodeScalarView(scalars))))
    }

    /// ECS fields of the header (`log.syslog.*`, `host.hostname`, `process.name`/`pid`).
    public func fields(into object: inout JSONObject) {
        if let priority {
            FieldNesting.set(.int(Int64(priority)), at: "log.syslog.priority", in: &object)
            FieldNesting.set(.int(Int64(priority >> 3)), at: "log.syslog.facility.code", in: &object)
            FieldNesting.set(.int(Int64(priority & 7)), at: "log.syslog.severity.code", in: &object)
        }
        if let hostname {
            FieldNesting.set(.string(hostname), at: "host.hostname", in: &object)
            FieldNesting.set(.string(hostname), at: "host.name", in: &object)
        }
        if let appName {
            FieldNesting.set(.string(appName), at: "log.syslog.appname", in: &object)
            FieldNesting.set(.string(appName), at: "process.name", in: &object)
        }
        if let procID {
            FieldNesting.set(.string(procID), at: "log.syslog.procid", in: &object)
            if let pid = Int64(procID) { FieldNesting.set(.int(pid), at: "process.pid", in: &object) }
        }
        if let msgID { FieldNesting.set(.string(msgID), at: "log.syslog.msgid", in: &object) }
        if !structuredData.isEmpty {
            var sd = JSONObject()
            for element in structuredData {
                var params = JSONObject()
                for (name, value) in element.params { params[name] = .string(value) }
                sd[element.id] = .object(params)
            }
            FieldNesting.set(.object(sd), at: "log.syslog.structured_data", in: &object)
        }
    }
}
