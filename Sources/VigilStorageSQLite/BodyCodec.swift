import CZstd
import Foundation
import GRDB
import Synchronization
import VigilStorage

/// The stored form of an event's text: `message` and the document (without the fields the
/// columns hold) in one blob, compressed with zstd and, once a partition has seen enough
/// events, with a dictionary trained on that partition's own events. Small JSON documents
/// share most of their bytes (keys, vendors, datasets), which a dictionary holds once:
/// about 190 bytes of message and document become about 35.
///
/// Blob: `u8 format` then, for format 1 (zstd), `varint dictionary id (0: none)`,
/// `varint size`, a magicless zstd frame; format 0 is the body stored as it is.
/// Body: `varint (message length + 1)` (0: no message), the message, the document.
enum EventBody {
    static func encode(message: String?, document: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(document.count + (message?.utf8.count ?? 0) + 4)
        if let message {
            writeVarint(UInt64(message.utf8.count) + 1, into: &out)
            out.append(contentsOf: message.utf8)
        } else {
            out.append(0)
        }
        out.append(contentsOf: document)
        return out
    }

    /// Message and document of a body; nil when it is damaged.
    static func decode(_ body: UnsafeRawBufferPointer) -> (message: String?, document: UnsafeRawBufferPointer)? {
        var index = 0
        guard let length = readVarint(body, &index) else { return nil }
        guard length > 0 else { return (nil, UnsafeRawBufferPointer(rebasing: body[index...])) }
        let count = Int(length - 1)
        guard count <= body.count - index else { return nil }
        let message = String(decoding: UnsafeRawBufferPointer(rebasing: body[index..<(index + count)]), as: UTF8.self)
        return (message, UnsafeRawBufferPointer(rebasing: body[(index + count)...]))
    }

    static func writeVarint(_ value: UInt64, into out: inout [UInt8]) {
        var v = value
        while v >= 0x80 {
            out.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
    }

    static func readVarint(_ bytes: UnsafeRawBufferPointer, _ index: inout Int) -> UInt64? {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while index < bytes.count, shift < 64 {
            let byte = bytes[index]
            index += 1
            value |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return value }
            shift += 7
        }
        return nil
    }
}

/// A zstd dictionary, ready for both directions.
final class ZstdDictionary: @unchecked Sendable {
    let id: Int64
    let bytes: [UInt8]
    private let compression: OpaquePointer
    private let decompression: OpaquePointer

    static let level: Int32 = 3

    init?(id: Int64, bytes: [UInt8]) {
        guard id > 0, !bytes.isEmpty,
              let c = bytes.withUnsafeBytes({ ZSTD_createCDict($0.baseAddress, $0.count, Self.level) })
        else { return nil }
        guard let d = bytes.withUnsafeBytes({ ZSTD_createDDict($0.baseAddress, $0.count) }) else {
            ZSTD_freeCDict(c)
            return nil
        }
        self.id = id
        self.bytes = bytes
        compression = c
        decompression = d
    }

    deinit {
        ZSTD_freeCDict(compression)
        ZSTD_freeDDict(decompression)
    }

    func withCompression<T>(_ body: (OpaquePointer) -> T) -> T { withExtendedLifetime(self) { body(compression) } }
    func withDecompression<T>(_ body: (OpaquePointer) -> T) -> T { withExtendedLifetime(self) { body(decompression) } }

    /// Trains a dictionary on sample bodies; nil when zstd finds nothing worth keeping
    /// (too few or too uniform samples).
    static func train(id: Int64, samples: [[UInt8]], capacity: Int = 32 * 1024) -> ZstdDictionary? {
        var joined: [UInt8] = []
        var sizes: [Int] = []
        for sample in samples where !sample.isEmpty {
            joined.append(contentsOf: sample)
            sizes.append(sample.count)
        }
        guard sizes.count >= 8 else { return nil }
        var dictionary = [UInt8](repeating: 0, count: capacity)
        let size = dictionary.withUnsafeMutableBytes { out in
            joined.withUnsafeBytes { input in
                sizes.withUnsafeBufferPointer { sizes in
                    ZDICT_trainFromBuffer(out.baseAddress, out.count, input.baseAddress, sizes.baseAddress, UInt32(sizes.count))
                }
            }
        }
        guard ZDICT_isError(size) == 0, size > 0 else { return nil }
        return ZstdDictionary(id: id, bytes: Array(dictionary.prefix(size)))
    }
}

/// Compression and decompression contexts, reused across calls (creating one costs more
/// than compressing a small event).
final class ZstdContexts: @unchecked Sendable {
    static let shared = ZstdContexts()

    // Kept as address bits: pointers are not Sendable, and each context is used by one
    // caller at a time.
    private let compressors = Mutex<[Int]>([])
    private let decompressors = Mutex<[Int]>([])

    /// zstd's magicless frame format (`ZSTD_f_zstd1_magicless`): the blob's own header says
    /// it is zstd, so the 4-byte magic number is not stored with every event.
    static let magicless: Int32 = 1

    func compressor<T>(_ body: (OpaquePointer) -> T) -> T {
        let context = compressors.withLock { $0.popLast() }.flatMap { OpaquePointer(bitPattern: $0) } ?? {
            let c = ZSTD_createCCtx()!
            ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, ZstdDictionary.level)
            ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 0)
            ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 0)
            ZSTD_CCtx_setParameter(c, ZSTD_c_dictIDFlag, 0)
            ZSTD_CCtx_setParameter(c, ZSTD_c_experimentalParam2, Self.magicless)
            return c
        }()
        defer { compressors.withLock { $0.append(Int(bitPattern: context)) } }
        return body(context)
    }

    func decompressor<T>(_ body: (OpaquePointer) -> T) -> T {
        let context = decompressors.withLock { $0.popLast() }.flatMap { OpaquePointer(bitPattern: $0) } ?? {
            let d = ZSTD_createDCtx()!
            ZSTD_DCtx_setParameter(d, ZSTD_d_experimentalParam1, Self.magicless)
            return d
        }()
        defer { decompressors.withLock { $0.append(Int(bitPattern: context)) } }
        return body(context)
    }
}

/// The dictionaries of one partition (by id, as its `zdict` table holds them) and the blob
/// format in both directions.
final class BodyCodec: Sendable {
    private let dictionaries = Mutex<[Int64: ZstdDictionary]>([:])

    /// Bodies above this size are refused when read back: a damaged header must not make a
    /// reader allocate gigabytes.
    static let maxBodyBytes = 64 << 20

    init() {}

    func add(_ dictionary: ZstdDictionary) { dictionaries.withLock { $0[dictionary.id] = dictionary } }
    func remove(id: Int64) { _ = dictionaries.withLock { $0.removeValue(forKey: id) } }
    func dictionary(_ id: Int64) -> ZstdDictionary? { dictionaries.withLock { $0[id] } }
    var newest: ZstdDictionary? { dictionaries.withLock { $0.max(by: { $0.key < $1.key })?.value } }

    /// The stored blob of a body.
    static func compress(_ body: [UInt8], dictionary: ZstdDictionary?) -> [UInt8] {
        var out: [UInt8] = [1]
        EventBody.writeVarint(UInt64(dictionary?.id ?? 0), into: &out)
        EventBody.writeVarint(UInt64(body.count), into: &out)
        let header = out.count
        let bound = ZSTD_compressBound(body.count)
        out.append(contentsOf: repeatElement(0, count: bound))
        let written: Int = ZstdContexts.shared.compressor { context in
            out.withUnsafeMutableBytes { buffer in
                body.withUnsafeBytes { input in
                    let destination = buffer.baseAddress! + header
                    // The advanced API, so the frame parameters set on the context (magicless,
                    // no size, no checksum, no dictionary id) apply with or without a dictionary.
                    if let dictionary {
                        return dictionary.withCompression { cdict in
                            ZSTD_CCtx_refCDict(context, cdict)
                            defer { ZSTD_CCtx_refCDict(context, nil) }
                            return ZSTD_compress2(context, destination, bound, input.baseAddress, input.count)
                        }
                    }
                    return ZSTD_compress2(context, destination, bound, input.baseAddress, input.count)
                }
            }
        }
        // Stored as it is when zstd fails or does not make it smaller.
        guard ZSTD_isError(written) == 0, header + written < body.count + 1 else { return [0] + body }
        out.removeLast(bound - written)
        return out
    }

    /// The body of a stored blob; nil when it is damaged or names a dictionary this
    /// partition does not have.
    func decompress(_ blob: UnsafeRawBufferPointer) -> [UInt8]? {
        guard let format = blob.first else { return nil }
        if format == 0 { return Array(blob[1...]) }
        guard format == 1 else { return nil }
        var index = 1
        guard let id = EventBody.readVarint(blob, &index), let size = EventBody.readVarint(blob, &index), size <= Self.maxBodyBytes else { return nil }
        let dictionary = id == 0 ? nil : self.dictionary(Int64(id))
        if id != 0, dictionary == nil { return nil }
        var out = [UInt8](repeating: 0, count: Int(size))
        let frame = UnsafeRawBufferPointer(rebasing: blob[index...])
        let produced: Int = ZstdContexts.shared.decompressor { context in
            out.withUnsafeMutableBytes { buffer in
                if let dictionary {
                    return dictionary.withDecompression { ddict in
                        ZSTD_DCtx_refDDict(context, ddict)
                        defer { ZSTD_DCtx_refDDict(context, nil) }
                        return ZSTD_decompressDCtx(context, buffer.baseAddress, buffer.count, frame.baseAddress, frame.count)
                    }
                }
                return ZSTD_decompressDCtx(context, buffer.baseAddress, buffer.count, frame.baseAddress, frame.count)
            }
        }
        guard ZSTD_isError(produced) == 0, produced == Int(size) else { return nil }
        return out
    }
}

/// The SQL side of event bodies, for one connection of one partition: `vigil_message(body)`,
/// `vigil_doc(body)` (the document JSON the dialect's `json_extract` reads) and
/// `vigil_pack(message, doc)` (migrations). A connection runs one statement at a time on one
/// thread, so the last decoded body is kept without a lock: the functions of one row share it.
final class BodyReader: @unchecked Sendable {
    let codec: BodyCodec
    private var lastBlob: [UInt8] = []
    private var lastMessage: String?
    private var lastDocument: String?
    private var lastValid = false

    init(codec: BodyCodec) { self.codec = codec }

    private func decode(_ value: DatabaseValue) -> Bool {
        guard case .blob(let data) = value.storage else { return false }
        let same = data.count == lastBlob.count && data.withUnsafeBytes { raw in lastBlob.withUnsafeBytes { $0.elementsEqual(raw) } }
        if same { return lastValid }
        lastBlob = Array(data)
        lastValid = false
        lastMessage = nil
        lastDocument = nil
        guard let body = lastBlob.withUnsafeBytes({ codec.decompress($0) }) else { return false }
        body.withUnsafeBytes { raw in
            if let (message, document) = EventBody.decode(raw) {
                lastMessage = message
                lastDocument = String(decoding: document, as: UTF8.self)
                lastValid = true
            }
        }
        return lastValid
    }

    var functions: [DatabaseFunction] {
        [
            DatabaseFunction("vigil_message", argumentCount: 1, pure: true) { [self] values in
                decode(values[0]) ? lastMessage : nil
            },
            DatabaseFunction("vigil_doc", argumentCount: 1, pure: true) { [self] values in
                decode(values[0]) ? lastDocument : nil
            },
            DatabaseFunction("vigil_pack", argumentCount: 2, pure: true) { values in
                let message = String.fromDatabaseValue(values[0])
                let document = String.fromDatabaseValue(values[1]) ?? "{}"
                return Data(BodyCodec.compress(EventBody.encode(message: message, document: Array(document.utf8)), dictionary: nil))
            },
        ]
    }
}

/// The values of a partition's low-cardinality columns (dataset, host, transport, action,
/// outcome, vendor), each stored once in its `term` table and referred to by a small integer
/// in the rows and indexes. Past `capacity` values a partition stores further ones as text
/// (the columns have no type affinity, so a row holds either), so a flood of unique values
/// cannot grow memory without bound.
final class TermTable: Sendable {
    private let state = Mutex<(ids: [String: Int64], values: [Int64: String])>(([:], [:]))
    let capacity: Int

    init(capacity: Int = 65_536) { self.capacity = capacity }

    func value(_ id: Int64) -> String? { state.withLock { $0.values[id] } }
    func id(_ value: String) -> Int64? { state.withLock { $0.ids[value] } }

    func add(id: Int64, value: String) {
        state.withLock { s in
            s.ids[value] = id
            s.values[id] = value
        }
    }

    /// The id of each value, giving new ones the next ids; nil past capacity.
    func intern(_ values: [String]) -> [String: Int64] {
        state.withLock { s in
            var out: [String: Int64] = [:]
            for value in values {
                if let id = s.ids[value] { out[value] = id; continue }
                guard s.ids.count < capacity else { continue }
                let id = Int64(s.ids.count + 1)
                s.ids[value] = id
                s.values[id] = value
                out[value] = id
            }
            return out
        }
    }

    /// `vigil_term(column)`: the text of an id, or the column as it is (text past capacity).
    /// `vigil_term_id(text)`: the id of a text, or NULL.
    var functions: [DatabaseFunction] {
        [
            DatabaseFunction("vigil_term", argumentCount: 1, pure: true) { [self] values in
                switch values[0].storage {
                case .int64(let id): return value(id)
                case .string(let text): return text
                default: return nil
                }
            },
            DatabaseFunction("vigil_term_id", argumentCount: 1, pure: true) { [self] values in
                String.fromDatabaseValue(values[0]).flatMap(id)
            },
        ]
    }
}
