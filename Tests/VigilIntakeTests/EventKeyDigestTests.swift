import Crypto
import Testing
import VigilCore
import VigilStorage
@testable import VigilIntake

/// Keys hash their parts in one buffer (`IntakeService.digest`); stored keys must not change,
/// so they are compared with the parts hashed one update at a time, as keys were first made.
struct EventKeyDigestTests {
    /// `SHA-256(part, 0, part, 0, ...)`, a part and its NUL at a time.
    static func reference(_ parts: [String]) -> [UInt8] {
        var hasher = SHA256()
        for part in parts {
            hasher.update(data: Array(part.utf8))
            hasher.update(data: [0])
        }
        return Array(hasher.finalize())
    }

    static func randomPart(_ generator: inout SplitMix64) -> String {
        let alphabet: [String] = ["a", "Z", "0", "-", " ", "é", "日", "🙂", "\u{0}", "syslog-", "acme"]
        let count = [0, 1, 5, 40, 600][Int.random(in: 0..<5, using: &generator)]
        return (0..<count).map { _ in alphabet.randomElement(using: &generator)! }.joined()
    }

    @Test func keysAreTheDigestOfTheirPartsHashedOneAtATime() {
        var generator = SplitMix64(seed: 42)  // a failure replays
        for _ in 0..<2_000 {
            let parts = (0..<Int.random(in: 0...4, using: &generator)).map { _ in Self.randomPart(&generator) }
            let expected = Self.reference(parts)
            #expect(IntakeService.digest(parts) { Array($0) } == expected, "\(parts)")
            let key = IntakeService.key(parts)
            #expect(key.high.bigEndian == expected.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) } && key.low.bigEndian == expected.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 8, as: UInt64.self) })
            if parts.count == 2 {
                let timestamp = Int64.random(in: 0...4_000_000_000_000, using: &generator)
                let server = IntakeService.serverIDKey(tenant: parts[0], id: parts[1], timestamp: timestamp)
                #expect(server == Self.reference(["e"] + parts).withUnsafeBytes { EventKey(second: timestamp / 1000, digest: $0) })
            }
        }
    }
}
