import Foundation

/// A `vigil serve` child process on port 0 with a temporary data directory, for gates and
/// benchmarks that are not pointed at a running server.
final class ServerProcess: @unchecked Sendable {  // driven from one task at a time
    private(set) var process = Process()
    let arguments: [String]
    let environment: [String: String]
    let dataDirectory: URL
    let adminToken: String
    private(set) var baseURL: URL?

    init(extraEnvironment: [String: String] = [:]) throws {
        dataDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-\(UUID().uuidString.prefix(8))", isDirectory: true)
        try FileManager.default.createDirectory(at: dataDirectory, withIntermediateDirectories: true)
        adminToken = "vgl_admin_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let executableURL = URL(fileURLWithPath: executable)
        process.executableURL = executableURL
        arguments = ["serve", "--data-dir", dataDirectory.path, "--http-address", "127.0.0.1:0",
                             "--syslog-tcp-address", "127.0.0.1:0", "--syslog-udp-address", "127.0.0.1:0", "--log-level", "warning"]
        var environment = ProcessInfo.processInfo.environment
        environment["VIGIL_ADMIN_TOKEN"] = adminToken
        for (key, value) in extraEnvironment { environment[key] = value }
        self.environment = environment
        process.arguments = arguments
        process.environment = environment
        process.standardOutput = FileHandle.nullDevice
    }

    var pid: Int32 { process.processIdentifier }

    /// The bound addresses the server wrote (`http`, `syslog_tcp`, `syslog_udp`, ...).
    func addresses() -> [String: String] {
        guard let data = FileManager.default.contents(atPath: dataDirectory.appendingPathComponent("run/addresses.json").path),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: String] else { return [:] }
        return object
    }

    /// Starts the server and polls for `run/addresses.json`, then for `/readyz`.
    func start(timeoutSeconds: Double = 60) async throws -> URL {
        try process.run()
        let addresses = dataDirectory.appendingPathComponent("run/addresses.json")
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        while Date() < deadline {
            guard process.isRunning else { throw VigilHTTPClient.Failure(description: "vigil serve exited with status \(process.terminationStatus)") }
            if let data = FileManager.default.contents(atPath: addresses.path),
               let object = try? JSONSerialization.jsonObject(with: data) as? [String: String], let http = object["http"],
               let url = URL(string: "http://\(http)") {
                let client = VigilHTTPClient(baseURL: url, connections: 1)
                if let reply = try? await client.send("GET", "/readyz"), reply.status == 200 {
                    baseURL = url
                    return url
                }
            }
            try await Task.sleep(for: .milliseconds(50))  // readiness polling, not a timed wait
        }
        throw VigilHTTPClient.Failure(description: "vigil serve did not become ready in \(Int(timeoutSeconds)) s")
    }

    /// Peak resident memory of the server, from /proc.
    func peakRSSBytes() -> Int64? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let digits = line.split(separator: " ").compactMap { Int64($0) }.first
            return digits.map { $0 * 1024 }
        }
        return nil
    }

    /// CPU time the server has used so far (user + system), from /proc.
    func cpuSeconds() -> Double? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        // Fields after the command name: state is field 3, utime 14, stime 15.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// Stops the server with SIGTERM and starts it again on the same data directory.
    func restart() async throws {
        let executable = process.executableURL
        process.terminate()
        process.waitUntilExit()
        try? FileManager.default.removeItem(at: dataDirectory.appendingPathComponent("run/addresses.json"))
        process = Process()
        process.executableURL = executable
        // Same port as before, so clients keep their URL.
        var again = arguments
        if let port = baseURL?.port, let index = again.firstIndex(of: "--http-address") {
            again[index + 1] = "127.0.0.1:\(port)"
        }
        process.arguments = again
        process.environment = environment
        process.standardOutput = FileHandle.nullDevice
        _ = try await start()
    }

    /// Sends SIGTERM and waits for a clean exit.
    func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: dataDirectory)
    }
}
