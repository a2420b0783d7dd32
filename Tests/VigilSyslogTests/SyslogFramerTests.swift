import Testing
import VigilCore
@testable import VigilSyslog

/// The framer on byte streams cut at every possible place: the frames never depend on how
/// TCP happened to split the stream.
struct SyslogFramerTests {
    static let lf1 = "<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8"
    static let octet1 = "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\"] An application event with\nan embedded newline"
    static let lf2 = "<13>Nov 24 10:00:00 host app[12]: ünïcödé line with 12 digits"

    static func octet(_ text: String) -> String { "\(text.utf8.count) \(text)" }

    /// LF frame, octet frame (with an LF inside), CRLF frame, an empty line, octet frame.
    static let stream = lf1 + "\n" + octet(octet1) + lf2 + "\r\n\n" + octet(lf1)
    static let expected: [SyslogFramer.Output] = [.frame(Array(lf1.utf8)), .frame(Array(octet1.utf8)), .frame(Array(lf2.utf8)), .frame(Array(lf1.utf8))]

    static func run(_ chunks: [ArraySlice<UInt8>], max: Int = 4096) -> [SyslogFramer.Output] {
        var framer = SyslogFramer(maxFrameBytes: max)
        var out: [SyslogFramer.Output] = []
        for chunk in chunks { out += framer.feed(chunk) }
        return out + framer.finish()
    }

    @Test func wholeStreamGivesEveryFrameInOrder() {
        #expect(Self.run([Array(Self.stream.utf8)[...]]) == Self.expected)
    }

    @Test func everyTwoWaySplitGivesTheSameFrames() {
        let bytes = Array(Self.stream.utf8)
        for cut in 0...bytes.count {
            let frames = Self.run([bytes[..<cut], bytes[cut...]])
            #expect(frames == Self.expected, "split at \(cut)")
            if frames != Self.expected { return }
        }
    }

    @Test func everyThreeWaySplitGivesTheSameFrames() {
        let bytes = Array(Self.stream.utf8)
        for first in stride(from: 0, through: bytes.count, by: 3) {
            for second in first...bytes.count {
                let frames = Self.run([bytes[..<first], bytes[first..<second], bytes[second...]])
                if frames != Self.expected {
                    Issue.record("split at \(first), \(second): \(frames.count) outputs")
                    return
                }
            }
        }
    }

    @Test func byteByByteGivesTheSameFrames() {
        let bytes = Array(Self.stream.utf8)
        #expect(Self.run(bytes.indices.map { bytes[$0...$0] }) == Self.expected)
    }

    @Test func anUnterminatedLastLineIsAFrameAtClose() {
        #expect(Self.run([Array("<13>one\n<13>two".utf8)[...]]) == [.frame(Array("<13>one".utf8)), .frame(Array("<13>two".utf8))])
    }

    @Test func aConnectionCutInsideAnOctetFrameReportsTruncation() {
        let out = Self.run([Array("10 <13>abc".utf8)[...]])
        #expect(out == [.dropped(.truncated, bytes: 10)])
    }

    @Test func oversizeLFFramesAreSkippedToTheNextLineInEverySplit() {
        let long = "<13>" + String(repeating: "x", count: 100)
        let text = "<13>short\n" + long + "\n<13>after\n"
        let bytes = Array(text.utf8)
        let expected: [SyslogFramer.Output] = [.frame(Array("<13>short".utf8)), .dropped(.oversize, bytes: long.utf8.count), .frame(Array("<13>after".utf8))]
        for cut in 0...bytes.count {
            let out = Self.run([bytes[..<cut], bytes[cut...]], max: 50)
            #expect(out == expected, "split at \(cut)")
            if out != expected { return }
        }
    }

    @Test func oversizeOctetFramesAreSkippedByTheirLengthInEverySplit() {
        let long = String(repeating: "y", count: 80)
        let text = Self.octet("<13>a") + Self.octet(long) + Self.octet("<13>b")
        let bytes = Array(text.utf8)
        let expected: [SyslogFramer.Output] = [.frame(Array("<13>a".utf8)), .dropped(.oversize, bytes: 80), .frame(Array("<13>b".utf8))]
        for cut in 0...bytes.count {
            let out = Self.run([bytes[..<cut], bytes[cut...]], max: 50)
            #expect(out == expected, "split at \(cut)")
            if out != expected { return }
        }
    }

    @Test func digitsNotFollowedByASpaceAreText() {
        #expect(Self.run([Array("2026-11-24 plain line\n12345\n".utf8)[...]]) ==
            [.frame(Array("2026-11-24 plain line".utf8)), .frame(Array("12345".utf8))])
    }

    @Test func bufferIsReleasedAfterCompleteFrames() {
        var framer = SyslogFramer(maxFrameBytes: 1000)
        for _ in 0..<1000 { _ = framer.feed(Array("<13>a line\n".utf8)) }
        #expect(framer.bufferedBytes == 0)
        _ = framer.feed(Array("<13>part".utf8))
        #expect(framer.bufferedBytes == 8)
    }

    @Test func garbageNeverTrapsAndNeverGrowsBeyondTheLimit() {
        var generator = SplitMix64(seed: 42)
        for _ in 0..<200 {
            var framer = SyslogFramer(maxFrameBytes: 64)
            for _ in 0..<20 {
                let chunk = (0..<Int(generator.next() % 50)).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
                for output in framer.feed(chunk) {
                    if case .frame(let bytes) = output { #expect(bytes.count <= 64) }
                }
                #expect(framer.bufferedBytes <= 64 + 50)
            }
            _ = framer.finish()
        }
    }
}

