import Testing
import VigilCore
import VigilParsing

/// Truncated and garbled variants of every sample must normalize without trapping.
struct RobustnessTests {
    @Test func everyTruncationOfEverySampleNormalizes() {
        let normalizer = Normalizer()
        var count = 0
        for sample in PackSamples.all {
            let bytes = Array(sample.line.utf8)
            for cut in 0...bytes.count {
                let line = String(decoding: bytes[0..<cut], as: UTF8.self)
                let event = normalizer.normalize(line: line, receivedAt: 0)
                #expect(event.fields["message"] == .string(line))
                _ = SyslogParser().parse(Array(bytes[0..<cut]), referenceTime: 0)
                var reader = ZeekTSVReader()
                _ = reader.normalize(line: "#fields\tts\tuid\tid.orig_h", receivedAt: 0)
                _ = reader.normalize(line: line, receivedAt: 0)
                count += 1
            }
        }
        #expect(count > 1000)
    }

    @Test func randomByteFlipsNeverTrap() {
        var rng = SplitMix64(seed: 42)
        let normalizer = Normalizer()
        let specials: [UInt8] = Array("<>[]=\"'\\|,:%/ \t{}#&;".utf8) + [0, 0xFF, 0xC3]
        for sample in PackSamples.all {
            let original = Array(sample.line.utf8)
            for _ in 0..<200 {
                var bytes = original
                let flips = Int.random(in: 1...4, using: &rng)
                for _ in 0..<flips where !bytes.isEmpty {
                    let i = Int.random(in: 0..<bytes.count, using: &rng)
                    bytes[i] = Bool.random(using: &rng) ? UInt8.random(in: 0...255, using: &rng) : specials.randomElement(using: &rng) ?? 0
                }
                let line = String(decoding: bytes, as: UTF8.self)
                _ = normalizer.normalize(line: line, receivedAt: Int64.random(in: -1_000_000_000_000...4_000_000_000_000, using: &rng))
            }
        }
    }

    @Test func extremeInputsNeverTrap() {
        let normalizer = Normalizer()
        for line in ["", "<", "<999>", "<1>1 ", "CEF:", "CEF:0|||||||=", "LEEF:2.0|a|b|c|d|x|", "%ASA-", "%ASA-9-:",
                     "<Event", "<Event><System><EventID>", "{", "{\"Event\":1}", "{\"winlog\":{}}", "1,2,3,TRAFFIC,",
                     "Jan 99 99:99:99 x", "<13>Feb 29 00:00:00 h a: b", String(repeating: "9", count: 400),
                     "ts=99999999999999999999999 a=1 b=2", "date=9999-99-99 time=99:99:99 devid=x type=traffic logid=1"] {
            _ = normalizer.normalize(line: line, receivedAt: .max)
            _ = normalizer.normalize(line: line, receivedAt: .min)
        }
    }
}
