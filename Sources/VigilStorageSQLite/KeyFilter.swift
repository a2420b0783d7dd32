import Synchronization
import VigilCore

/// A Bloom filter over a tenant's idempotency keys, so ingest looks up in the key table only
/// the keys the filter cannot prove new (a retry, a replay, one false positive in a couple
/// of thousand) instead of every key of every request.
///
/// It never forgets a key: a key deleted by retention stays a (harmless) false positive. It
/// grows by layers: when the newest layer holds its capacity a layer twice as large is added,
/// so the false-positive rate stays bounded without rebuilding. Keys are SHA-256 bytes, but
/// content keys start with their second (`EventKey(second:digest:)`): the probes start at
/// the low half (digest bytes only) and step by a mix of both halves (double hashing,
/// Kirsch–Mitzenmacher).
///
/// Until `markLoaded` it answers "maybe" for every key: keys stored before the filter
/// existed are loaded from the table after it started receiving new claims, so no key can
/// fall between the two.
final class KeyFilter: Sendable {
    static let bitsPerKey = 16
    static let probes = 8
    /// Small to start (128 KiB), so a server with many quiet tenants does not pay megabytes
    /// for each; a busy tenant doubles its way up (ten million keys: eight layers, 32 MiB,
    /// a tenth of the key table it stands for).
    static let firstCapacity = 1 << 16

    struct Layer {
        var words: [UInt64]
        var capacity: Int
        var count = 0

        init(capacity: Int) {
            var bits = 64
            while bits < capacity * KeyFilter.bitsPerKey { bits <<= 1 }
            words = [UInt64](repeating: 0, count: bits / 64)
            self.capacity = capacity
        }

        var mask: UInt64 { UInt64(words.count * 64 - 1) }

        mutating func insert(_ key: EventKey) {
            for bit in Probes(key, mask: mask) { words[Int(bit >> 6)] |= 1 << (bit & 63) }
            count += 1
        }

        func contains(_ key: EventKey) -> Bool {
            Probes(key, mask: mask).allSatisfy { words[Int($0 >> 6)] & (1 << ($0 & 63)) != 0 }
        }
    }

    /// The bits a key sets in a layer of `mask + 1` bits, for inserting and looking up alike.
    struct Probes: Sequence, IteratorProtocol {
        var position: UInt64
        let step: UInt64
        let mask: UInt64
        var left = KeyFilter.probes

        init(_ key: EventKey, mask: UInt64) {
            position = key.low
            step = KeyFilter.step(key)
            self.mask = mask
        }

        mutating func next() -> UInt64? {
            guard left > 0 else { return nil }
            left -= 1
            defer { position &+= step }
            return position & mask
        }
    }

    /// The probe step: odd, from the digest bits of the high half (its low bytes) mixed
    /// with the low half.
    static func step(_ key: EventKey) -> UInt64 {
        ((key.high &* 0x9E37_79B9_7F4A_7C15) ^ (key.low >> 29)) | 1
    }

    struct State {
        var layers: [Layer]
        var loaded = false
    }

    private let state: Mutex<State>

    init(firstCapacity: Int = KeyFilter.firstCapacity) {
        state = Mutex(State(layers: [Layer(capacity: firstCapacity)]))
    }

    var layerCount: Int { state.withLock { $0.layers.count } }

    /// Adds claimed keys (before their claim commits: a key may be known early, never late).
    func insert(_ keys: some Sequence<EventKey>) {
        state.withLock { state in
            for key in keys {
                if state.layers[state.layers.count - 1].count >= state.layers[state.layers.count - 1].capacity {
                    state.layers.append(Layer(capacity: state.layers[state.layers.count - 1].capacity * 2))
                }
                state.layers[state.layers.count - 1].insert(key)
            }
        }
    }

    /// The keys that may be in the table; every key while the filter is still loading.
    func possiblyStored(_ keys: [EventKey]) -> [EventKey] {
        state.withLock { state in
            guard state.loaded else { return keys }
            return keys.filter { key in state.layers.contains { $0.contains(key) } }
        }
    }

    func markLoaded() {
        state.withLock { $0.loaded = true }
    }

    var isLoaded: Bool { state.withLock { $0.loaded } }
}
