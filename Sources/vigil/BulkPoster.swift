import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The load generator of the ingest benchmarks: each client is a thread with one keep-alive
/// HTTP/1.1 connection on a blocking socket, posting pre-built bodies, as a shipper written
/// in C or Rust would. URLSession (libcurl driven through dispatch) spent about a fifth of
/// these two cores on its own event loop; the benchmarks measure the server, not the client.
struct BulkPoster: Sendable {
    struct Reply: Sendable {
        var status: Int
        var body: [UInt8]
        var text: String { String(decoding: body, as: UTF8.self) }
    }

    let host: String
    let port: Int
    let hostHeader: String

    init(baseURL: URL) throws {
        guard let host = baseURL.host, let port = baseURL.port ?? (baseURL.scheme == "http" ? 80 : nil), baseURL.scheme == "http" else {
            throw GateFailure("the bulk poster speaks plain http with a host and port, not \(baseURL)")
        }
        self.host = host
        self.port = port
        hostHeader = "\(host):\(port)"
    }

    /// Runs `clients` threads; thread `worker` posts bodies `worker`, `worker + clients`, ...
    /// A 503 (the server asking senders to back off) is retried after 100 ms.
    /// - Returns: the latency of every request in milliseconds, in no particular order.
    func post(path: String, headers: [(String, String)], bodies: [[UInt8]], clients: Int) async throws -> [Double] {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<[Double], any Error>) in
            let results = ResultBox(count: clients)
            let group = DispatchGroup()
            for worker in 0..<clients {
                group.enter()
                let thread = Thread {
                    defer { group.leave() }
                    results.set(worker, Result { try self.run(worker: worker, clients: clients, path: path, headers: headers, bodies: bodies) })
                }
                thread.stackSize = 1 << 20
                thread.start()
            }
            group.notify(queue: .global()) {
                do {
                    continuation.resume(returning: try results.all().flatMap { $0 })
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        }
    }

    private func run(worker: Int, clients: Int, path: String, headers: [(String, String)], bodies: [[UInt8]]) throws -> [Double] {
        let connection = try TCPSender(host: host, port: port)
        defer { connection.close() }
        var reader = ResponseReader(fd: connection.fd)
        var latencies: [Double] = []
        var index = worker
        while index < bodies.count {
            let started = DispatchTime.now().uptimeNanoseconds
            while true {
                var head = "POST \(path) HTTP/1.1\r\nHost: \(hostHeader)\r\nContent-Length: \(bodies[index].count)\r\n"
                for (name, value) in headers { head += "\(name): \(value)\r\n" }
                head += "\r\n"
                try connection.send(Array(head.utf8))
                try connection.send(bodies[index])
                let reply = try reader.next()
                if reply.status == 503 {
                    Thread.sleep(forTimeInterval: 0.1)  // the server asked senders to back off
                    continue
                }
                guard (200..<300).contains(reply.status) else {
                    throw GateFailure("POST \(path) answered HTTP \(reply.status): \(reply.text.prefix(300))")
                }
                break
            }
            latencies.append(Double(DispatchTime.now().uptimeNanoseconds - started) / 1_000_000)
            index += clients
        }
        return latencies
    }

    /// Reads HTTP/1.1 responses with a Content-Length (what Vigil sends) off a socket.
    struct ResponseReader {
        let fd: Int32
        var buffer: [UInt8] = []

        mutating func next() throws -> Reply {
            var headEnd: Int?
            while true {
                if let end = Self.headEnd(buffer) { headEnd = end; break }
                try fill()
            }
            guard let headEnd else { throw GateFailure("no response head") }
            let head = String(decoding: buffer[..<headEnd], as: UTF8.self)
            let lines = head.split(separator: "\r\n")
            guard let statusLine = lines.first, statusLine.hasPrefix("HTTP/1.1 "),
                  let status = Int(statusLine.dropFirst(9).prefix(3)) else {
                throw GateFailure("bad response head: \(head.prefix(200))")
            }
            var length = 0
            for line in lines.dropFirst() {
                let parts = line.split(separator: ":", maxSplits: 1)
                if parts.count == 2, parts[0].lowercased() == "content-length" {
                    length = Int(parts[1].trimmingCharacters(in: .whitespaces)) ?? 0
                }
                if parts.count == 2, parts[0].lowercased() == "transfer-encoding" {
                    throw GateFailure("chunked responses are not read by the bulk poster")
                }
            }
            let bodyStart = headEnd + 4
            while buffer.count < bodyStart + length { try fill() }
            let body = Array(buffer[bodyStart..<(bodyStart + length)])
            buffer.removeFirst(bodyStart + length)
            return Reply(status: status, body: body)
        }

        static func headEnd(_ bytes: [UInt8]) -> Int? {
            guard bytes.count >= 4 else { return nil }
            for i in 0...(bytes.count - 4) where bytes[i] == 13 && bytes[i + 1] == 10 && bytes[i + 2] == 13 && bytes[i + 3] == 10 {
                return i
            }
            return nil
        }

        mutating func fill() throws {
            var chunk = [UInt8](repeating: 0, count: 65_536)
            while true {
                let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if count < 0, errno == EINTR { continue }
                guard count > 0 else { throw GateFailure(count == 0 ? "the server closed the connection" : "recv failed: errno \(errno)") }
                buffer.append(contentsOf: chunk[..<count])
                return
            }
        }
    }

    /// Each thread's outcome, collected under a lock.
    final class ResultBox: @unchecked Sendable {
        let lock = NSLock()
        var results: [Result<[Double], any Error>?]

        init(count: Int) { results = Array(repeating: nil, count: count) }

        func set(_ index: Int, _ result: Result<[Double], any Error>) {
            lock.lock()
            results[index] = result
            lock.unlock()
        }

        func all() throws -> [[Double]] {
            lock.lock()
            defer { lock.unlock() }
            return try results.map { try ($0 ?? .failure(GateFailure("a client thread did not finish"))).get() }
        }
    }
}
