import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Metrics
import NIOCore
import Prometheus
import CZlib
import CZstd

/// Why a compressed body could not be read.
struct DecompressionError: Error {
    enum Code { case corrupt, tooLarge, unsupported }
    var code: Code
}

/// Inflates `Content-Encoding: gzip`/`deflate` and `zstd` bodies, never past `limit` bytes
/// of output (a compression bomb is refused, not expanded).
enum Decompression {
    static func decode(_ input: [UInt8], encoding: String?, limit: Int) throws(DecompressionError) -> [UInt8] {
        guard let encoding = encoding?.lowercased().trimmingCharacters(in: .whitespaces), !encoding.isEmpty, encoding != "identity" else {
            return input
        }
        switch encoding {
        case "gzip", "x-gzip", "deflate": return try inflate(input, limit: limit)
        case "zstd": return try zstd(input, limit: limit)
        default: throw DecompressionError(code: .unsupported)
        }
    }

    static func inflate(_ input: [UInt8], limit: Int) throws(DecompressionError) -> [UInt8] {
        var stream = z_stream()
        // 15 + 32: detect gzip or zlib headers automatically.
        guard inflateInit2_(&stream, 15 + 32, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw DecompressionError(code: .corrupt)
        }
        defer { inflateEnd(&stream) }
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        var input = input
        var status: Int32 = Z_OK
        let result: DecompressionError.Code? = input.withUnsafeMutableBufferPointer { inBuffer in
            stream.next_in = inBuffer.baseAddress
            stream.avail_in = uInt(inBuffer.count)
            repeat {
                let produced: Int = chunk.withUnsafeMutableBufferPointer { outBuffer in
                    stream.next_out = outBuffer.baseAddress
                    stream.avail_out = uInt(outBuffer.count)
                    status = CZlib.inflate(&stream, Z_NO_FLUSH)
                    return outBuffer.count - Int(stream.avail_out)
                }
                if status != Z_OK && status != Z_STREAM_END && !(status == Z_BUF_ERROR && produced > 0) {
                    return .corrupt
                }
                if output.count + produced > limit { return .tooLarge }
                output.append(contentsOf: chunk[0..<produced])
                if status == Z_STREAM_END {
                    // Concatenated gzip members (allowed by RFC 1952) continue the body.
                    if stream.avail_in > 0 { if inflateReset(&stream) != Z_OK { return .corrupt }; status = Z_OK; continue }
                    return nil
                }
                if produced == 0 && stream.avail_in == 0 { return .corrupt }  // truncated stream
            } while true
        }
        if let result { throw DecompressionError(code: result) }
        return output
    }

    static func zstd(_ input: [UInt8], limit: Int) throws(DecompressionError) -> [UInt8] {
        guard let context = ZSTD_createDStream() else { throw DecompressionError(code: .corrupt) }
        defer { ZSTD_freeDStream(context) }
        ZSTD_initDStream(context)
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 128 * 1024)
        let result: DecompressionError.Code? = input.withUnsafeBytes { inRaw in
            var inBuffer = ZSTD_inBuffer(src: inRaw.baseAddress, size: inRaw.count, pos: 0)
            var lastReturn = 1
            while true {
                let (produced, ret): (Int, Int) = chunk.withUnsafeMutableBytes { outRaw in
                    var outBuffer = ZSTD_outBuffer(dst: outRaw.baseAddress, size: outRaw.count, pos: 0)
                    let ret = ZSTD_decompressStream(context, &outBuffer, &inBuffer)
                    return (outBuffer.pos, ret)
                }
                if ZSTD_isError(ret) != 0 { return .corrupt }
                if output.count + produced > limit { return .tooLarge }
                output.append(contentsOf: chunk[0..<produced])
                lastReturn = ret
                if inBuffer.pos == inBuffer.size && produced < chunk.count { break }
            }
            // A non-zero hint at the end means the last frame is incomplete.
            return lastReturn == 0 ? nil : .corrupt
        }
        if let result { throw DecompressionError(code: result) }
        return output
    }
}
