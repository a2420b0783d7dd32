#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import VigilCore

/// What the flat syslog paths (`PANOSFlatTraffic`, `SSHDFlatLogin`, `FortiGateFlatTraffic`,
/// `ASAFlatConnection`, `F5FlatLTM`, `GenericFlatSyslog`) share: their schemas, the frame's
/// body, reading ranges of it, the header's fields, and the packs before theirs.
enum FlatSyslog {
    /// A flat path's schema (its paths are fixed: one it cannot write is a bug).
    static func schema(_ name: String, paths: [String], literals: [JSONValue]) -> FlatSchema {
        do {
            return try FlatSchema(paths: paths, literals: literals)
        } catch {
            preconditionFailure("\(name) flat schema: \(error)")
        }
    }

    /// Calls `body` with the frame's bytes and the range of its body (`message`, at the end of
    /// the frame or of it without its line ending). Nil when the frame is not ASCII (its bytes
    /// are then not the text the header was read from) or the body is not there.
    static func withBody<Result>(_ frame: [UInt8], message: String, _ body: (UnsafeBufferPointer<UInt8>, Range<Int>) -> Result?) -> Result? {
        var message = message
        return message.withUTF8 { text -> Result? in
            frame.withUnsafeBufferPointer { b -> Result? in
                guard !b.contains(where: { $0 >= 0x80 }) else { return nil }
                func endsWithBody(_ end: Int) -> Bool {
                    end >= text.count && (text.isEmpty || memcmp(b.baseAddress! + end - text.count, text.baseAddress!, text.count) == 0)
                }
                var end = b.count
                if !endsWithBody(end) {
                    while end > 0, b[end - 1] == 0x0A || b[end - 1] == 0x0D { end -= 1 }
                    guard endsWithBody(end) else { return nil }
                }
                return body(b, (end - text.count)..<end)
            }
        }
    }

    /// `ECSBuilder.isPlaceholder` on a range of the frame.
    static func isPlaceholder(_ b: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Bool {
        ECSBuilder.isPlaceholder(utf8: UnsafeBufferPointer(rebasing: b[range]))
    }

    /// `ECSBuilder.parseInt` on a range of the frame.
    static func parseInt(_ b: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Int64? {
        ECSBuilder.parseInt(utf8: UnsafeBufferPointer(rebasing: b[range]))
    }

    /// Where `marker` first occurs in `range` of the frame (its start); nil when it does not.
    static func find(_ marker: StaticString, in b: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Int? {
        let needle = UnsafeBufferPointer(start: marker.utf8Start, count: marker.utf8CodeUnitCount)
        return ByteScan.firstOffset(of: needle, in: UnsafeBufferPointer(rebasing: b[range])).map { range.lowerBound + $0 }
    }

    /// `ECSBuilder.isIP` on a range of the frame.
    static func isIP(_ b: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Bool {
        ECSBuilder.isIP(String(decoding: UnsafeBufferPointer(rebasing: b[range]), as: UTF8.self))
    }

    /// ASCII letters lower-cased, as `String.lowercased()` does to ASCII text.
    static func lowercased(_ text: some Sequence<UInt8>) -> [UInt8] {
        text.map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 }
    }

    /// Sets `path` to the texts at the ranges that are there, each text once
    /// (`ECSBuilder.append`, as `related.ip` is built); leaves it unset when there are none.
    static func setDistinct(_ fields: inout FlatFields, _ path: Int, _ ranges: [Range<Int>?]) {
        var distinct: [Range<Int>] = []
        for case let range? in ranges where !distinct.contains(where: { fields.bytes[$0].elementsEqual(fields.bytes[range]) }) {
            distinct.append(range)
        }
        if !distinct.isEmpty { fields.set(path, texts: distinct) }
    }

    /// Whether none of `packs` takes the line (a flat path stands for the first pack that does).
    static func noneTakes(_ packs: ArraySlice<any ProtocolPack>, line: String, syslog: SyslogMessage, receivedAt: EpochMillis) -> Bool {
        let input = PackInput(line: line, syslog: syslog, body: syslog.message, document: nil, receivedAt: receivedAt)
        return !packs.contains { $0.normalize(input) != nil }
    }

    static func equals(_ b: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, _ text: StaticString) -> Bool {
        range.count == text.utf8CodeUnitCount && memcmp(b.baseAddress! + range.lowerBound, text.utf8Start, range.count) == 0
    }

    /// The header's paths (`SyslogMessage.ecsFields`: priority and host) and the sender's.
    struct HeaderPaths {
        let priority, facility, severity, hostname, sourceAddress, hostHostname, hostName: Int

        init(_ s: FlatSchema) {
            func p(_ name: String) -> Int { s.path(name)! }
            (priority, facility, severity, hostname) = (p("log.syslog.priority"), p("log.syslog.facility.code"), p("log.syslog.severity.code"), p("log.syslog.hostname"))
            (sourceAddress, hostHostname, hostName) = (p("log.source.address"), p("host.hostname"), p("host.name"))
        }
    }

    /// Sets the header's priority and host fields (none for a placeholder host or no priority), and the
    /// decoder's sender address; returns the host's range, nil when none was set.
    @discardableResult
    static func setHeader(_ fields: inout FlatFields, _ at: HeaderPaths, priority: Int?, hostname: String?, peer: String) -> Range<Int>? {
        if let priority {
            fields.set(at.priority, int: Int64(priority))
            fields.set(at.facility, int: Int64(priority / 8))
            fields.set(at.severity, int: Int64(priority % 8))
        }
        fields.set(at.sourceAddress, copying: peer.utf8)
        guard let hostname, !ECSBuilder.isPlaceholder(hostname) else { return nil }
        fields.set(at.hostname, copying: hostname.utf8)
        let host = fields.textRange(at.hostname)!
        fields.set(at.hostHostname, text: host)
        fields.set(at.hostName, text: host)
        return host
    }

    /// The paths of a header with a tag (`SyslogMessage.ecsFields`) and the sender's address,
    /// in document order.
    static let taggedHeaderPaths = [
        "log.syslog.priority", "log.syslog.facility.code", "log.syslog.severity.code", "log.syslog.hostname", "log.syslog.appname",
        "log.syslog.procid", "log.source.address",
        "host.hostname", "host.name",
        "process.name", "process.pid",
    ]

    /// The header's tag paths (`SyslogMessage.ecsFields`: the app name and process id).
    struct ProcessPaths {
        let appname, procid, processName, processPID: Int

        init(_ s: FlatSchema) {
            func p(_ name: String) -> Int { s.path(name)! }
            (appname, procid, processName, processPID) = (p("log.syslog.appname"), p("log.syslog.procid"), p("process.name"), p("process.pid"))
        }
    }

    /// Sets the tag's fields as `SyslogMessage.ecsFields` does (placeholders left out).
    static func setProcess(_ fields: inout FlatFields, _ at: ProcessPaths, appName: String?, procID: String?) {
        if let appName, !ECSBuilder.isPlaceholder(appName) {
            fields.set(at.appname, copying: appName.utf8)
            fields.set(at.processName, text: fields.textRange(at.appname)!)
        }
        if let procID, !ECSBuilder.isPlaceholder(procID) { fields.set(at.procid, copying: procID.utf8) }
        if let procID, let pid = ECSBuilder.parseInt(procID) { fields.set(at.processPID, int: pid) }
    }
}
