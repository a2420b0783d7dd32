/// Milliseconds since the Unix epoch, UTC. Every time Vigil stores or compares is one of these.
public typealias EpochMillis = Int64

/// Parses and formats RFC 3339 timestamps without Foundation's date formatters
/// (slow on Linux, and lenient in ways a SIEM must not be).
public enum Timestamp {
    public static let millisPerDay: Int64 = 86_400_000

    /// Parses `2026-11-24T10:00:00Z`, `2026-11-24T10:00:00.123456+02:00`, or with a space
    /// instead of `T`. Fractions beyond milliseconds are truncated. Returns nil when invalid.
    public static func parseRFC3339(_ text: String) -> EpochMillis? {
        var utf8 = Array(text.utf8)
        guard utf8.count >= 19 else { return nil }
        func digits(_ from: Int, _ count: Int) -> Int? {
            guard from + count <= utf8.count else { return nil }
            var value = 0
            for i in from..<(from + count) {
                let b = utf8[i]
                guard b >= 0x30, b <= 0x39 else { return nil }
                value = value * 10 + Int(b - 0x30)
            }
            return value
        }
        guard let year = digits(0, 4), utf8[4] == UInt8(ascii: "-"),
              let month = digits(5, 2), utf8[7] == UInt8(ascii: "-"),
              let day = digits(8, 2),
              utf8[10] == UInt8(ascii: "T") || utf8[10] == UInt8(ascii: "t") || utf8[10] == UInt8(ascii: " "),
              let hour = digits(11, 2), utf8[13] == UInt8(ascii: ":"),
              let minute = digits(14, 2), utf8[16] == UInt8(ascii: ":"),
              let second = digits(17, 2)
        else { return nil }
        guard (1...12).contains(month), (1...daysInMonth(year: year, month: month)).contains(day),
              hour < 24, minute < 60, second <= 60
        else { return nil }
        var index = 19
        var millis = 0
        if index < utf8.count, utf8[index] == UInt8(ascii: ".") {
            index += 1
            var scale = 100
            let start = index
            while index < utf8.count, utf8[index] >= 0x30, utf8[index] <= 0x39 {
                millis += Int(utf8[index] - 0x30) * scale
                scale /= 10
                index += 1
            }
            guard index > start else { return nil }
        }
        var offsetSeconds = 0
        guard index < utf8.count else { return nil }
        switch utf8[index] {
        case UInt8(ascii: "Z"), UInt8(ascii: "z"):
            index += 1
        case UInt8(ascii: "+"), UInt8(ascii: "-"):
            let sign = utf8[index] == UInt8(ascii: "-") ? -1 : 1
            // Accept +hh:mm and +hhmm.
            if utf8.count - index == 5 { utf8.insert(UInt8(ascii: ":"), at: index + 3) }
            guard let oh = digits(index + 1, 2), index + 3 < utf8.count, utf8[index + 3] == UInt8(ascii: ":"),
                  let om = digits(index + 4, 2), oh < 24, om < 60
            else { return nil }
            offsetSeconds = sign * (oh * 3600 + om * 60)
            index += 6
        default:
            return nil
        }
        guard index == utf8.count else { return nil }
        let days = daysFromCivil(year: year, month: month, day: day)
        let seconds = Int64(days) * 86_400 + Int64(hour * 3600 + minute * 60 + min(second, 59)) - Int64(offsetSeconds)
        return seconds * 1000 + Int64(millis)
    }

    /// Formats as `2026-11-24T10:00:00.123Z`.
    public static func formatRFC3339(_ millis: EpochMillis) -> String {
        let (days, msOfDay) = floorDivMod(millis, millisPerDay)
        let (y, m, d) = civilFromDays(Int(days))
        let ms = Int(msOfDay)
        let hour = ms / 3_600_000, minute = ms / 60_000 % 60, second = ms / 1000 % 60, milli = ms % 1000
        return "\(pad(y, 4))-\(pad(m, 2))-\(pad(d, 2))T\(pad(hour, 2)):\(pad(minute, 2)):\(pad(second, 2)).\(pad(milli, 3))Z"
    }

    /// The UTC day number of a calendar date; nil when the date does not exist.
    public static func dayNumber(year: Int, month: Int, day: Int) -> Int64? {
        guard (1...9999).contains(year), (1...12).contains(month), (1...daysInMonth(year: year, month: month)).contains(day) else { return nil }
        return Int64(daysFromCivil(year: year, month: month, day: day))
    }

    /// The UTC calendar year of a time.
    public static func year(of millis: EpochMillis) -> Int { civilFromDays(Int(day(of: millis))).0 }

    /// The UTC day number (days since 1970-01-01) of a time.
    public static func day(of millis: EpochMillis) -> Int64 { floorDivMod(millis, millisPerDay).0 }

    /// `20261124` for a UTC day number: used in partition file names.
    public static func dayStamp(_ day: Int64) -> String {
        let (y, m, d) = civilFromDays(Int(day))
        return "\(pad(y, 4))\(pad(m, 2))\(pad(d, 2))"
    }

    /// Parses a `20261124` stamp back into a UTC day number.
    public static func day(fromStamp stamp: String) -> Int64? {
        guard stamp.utf8.count == 8, let value = Int(stamp) else { return nil }
        let y = value / 10000, m = value / 100 % 100, d = value % 100
        guard (1...12).contains(m), (1...daysInMonth(year: y, month: m)).contains(d) else { return nil }
        return Int64(daysFromCivil(year: y, month: m, day: d))
    }

    static func pad(_ value: Int, _ width: Int) -> String {
        let s = String(value)
        return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
    }

    static func floorDivMod(_ a: Int64, _ b: Int64) -> (Int64, Int64) {
        var q = a / b, r = a % b
        if r < 0 { q -= 1; r += b }
        return (q, r)
    }

    static func isLeap(_ y: Int) -> Bool { (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 }

    static func daysInMonth(year: Int, month: Int) -> Int {
        switch month {
        case 2: return isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    // Howard Hinnant's days_from_civil / civil_from_days.
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func civilFromDays(_ z0: Int) -> (Int, Int, Int) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (m <= 2 ? y + 1 : y, m, d)
    }
}

/// The source of "now" for everything that depends on time, injected so tests never sleep.
public protocol VigilClock: Sendable {
    func now() -> EpochMillis
}

/// The wall clock.
public struct SystemClock: VigilClock {
    public init() {}
    public func now() -> EpochMillis { millis(of: CLOCK_REALTIME) }
}

/// The monotonic clock, for durations and deadlines: it never jumps when the wall clock is
/// set. Its zero is arbitrary (the system's boot).
public struct MonotonicClock: VigilClock {
    public init() {}
    public func now() -> EpochMillis { millis(of: CLOCK_MONOTONIC) }
}

/// A system clock's time in milliseconds.
private func millis(of clock: clockid_t) -> EpochMillis {
    var ts = timespec()
    clock_gettime(clock, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
