import Foundation
public import VigilCore

/// Compares a normalized event with an expected ECS document (Elastic's pipeline test
/// output), field by field, for the fields a SIEM's detections depend on.
///
/// Only fields present in the expected document are compared. A one-element array equals
/// its scalar; numbers compare by value whatever their JSON spelling. `@timestamp` agrees when
/// the instants are equal, or — for input without a year or a zone, where Elastic's result
/// depends on its test configuration — when month, day and wall-clock time agree.
public enum ConformanceCheck {
    public static let fields = [
        "source.ip", "source.port", "destination.ip", "destination.port", "network.transport",
        "event.action", "event.outcome", "event.category", "event.type", "user.name",
        "observer.vendor", "observer.product", "observer.type", "url.original", "url.domain", "url.path",
        "dns.question.name", "dns.question.type", "process.name", "process.pid", "process.executable",
        "process.command_line", "host.name", "@timestamp",
    ]

    public struct Difference: Sendable, Equatable, CustomStringConvertible {
        public var field: String
        public var expected: String
        public var actual: String
        public var description: String { "\(field): expected \(expected), got \(actual)" }
    }

    public struct Outcome: Sendable, Equatable {
        public var compared = 0
        public var agreeing = 0
        public var differences: [Difference] = []
    }

    /// Compares `actual` against `expected` on `ConformanceCheck.fields`.
    public static func compare(expected: JSONObject, actual: NormalizedEvent) -> Outcome {
        var outcome = Outcome()
        let expectedDoc = JSONValue.object(expected)
        let actualDoc = JSONValue.object(actual.document)
        for field in fields {
            guard let want = expectedDoc.value(atPath: field), want != .null else { continue }
            outcome.compared += 1
            let got = actualDoc.value(atPath: field)
            let agree: Bool
            if field == "@timestamp" {
                agree = timestampsAgree(want.stringValue, actual)
            } else {
                agree = got.map { valuesAgree(want, $0) } ?? false
            }
            if agree {
                outcome.agreeing += 1
            } else {
                outcome.differences.append(Difference(
                    field: field, expected: JSONWriter.string(want), actual: got.map(JSONWriter.string) ?? "(missing)"))
            }
        }
        return outcome
    }

    static func normalized(_ v: JSONValue) -> JSONValue {
        switch v {
        case .array(let a) where a.count == 1: return normalized(a[0])
        case .array(let a): return .array(a.map(normalized))
        case .double(let d) where d == d.rounded() && abs(d) < 1e15: return .int(Int64(d))
        case .string(let s) where ECSBuilder.parseInt(s) != nil && !s.hasPrefix("0") && !s.hasPrefix("+"):
            return .int(ECSBuilder.parseInt(s) ?? 0)
        default: return v
        }
    }

    static func valuesAgree(_ a: JSONValue, _ b: JSONValue) -> Bool {
        normalized(a) == normalized(b)
    }

    static func timestampsAgree(_ expected: String?, _ actual: NormalizedEvent) -> Bool {
        guard let expected, let want = Timestamp.parseRFC3339(expected), let got = actual.timestamp else { return false }
        if want == got { return true }
        guard !actual.timestampHasYear || !actual.timestampHasZone else { return false }
        // Wall clock as written in the expected string vs ours (UTC).
        let wall = String(expected.prefix(19))
        guard let wallMillis = Timestamp.parseRFC3339(wall + "Z") else { return false }
        let ours = Timestamp.formatRFC3339(got)
        let theirs = Timestamp.formatRFC3339(wallMillis)
        if actual.timestampHasYear { return ours.prefix(19) == theirs.prefix(19) }
        return ours.dropFirst(5).prefix(14) == theirs.dropFirst(5).prefix(14)
    }
}
