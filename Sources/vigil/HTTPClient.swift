import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A small HTTP client for the CLI, gates and benchmarks (URLSession, keep-alive).
struct VigilHTTPClient: Sendable {
    struct Reply: Sendable {
        var status: Int
        var body: Data
        var headers: [String: String]

        var json: Any? { try? JSONSerialization.jsonObject(with: body) }
        var text: String { String(decoding: body, as: UTF8.self) }
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    let baseURL: URL
    let session: URLSession

    init(baseURL: URL, connections: Int = 16) {
        self.baseURL = baseURL
        let configuration = URLSessionConfiguration.ephemeral
        configuration.httpMaximumConnectionsPerHost = connections
        configuration.timeoutIntervalForRequest = 120
        session = URLSession(configuration: configuration)
    }

    func send(_ method: String, _ path: String, headers: [String: String] = [:], body: Data? = nil) async throws -> Reply {
        guard let url = URL(string: path, relativeTo: baseURL) else { throw Failure(description: "bad path \(path)") }
        var request = URLRequest(url: url)
        request.httpMethod = method
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        request.httpBody = body
        let (data, response) = try await session.data(for: request)
        guard let http = response as? HTTPURLResponse else { throw Failure(description: "not an HTTP response") }
        var fields: [String: String] = [:]
        for (name, value) in http.allHeaderFields {
            if let name = name as? String, let value = value as? String { fields[name.lowercased()] = value }
        }
        return Reply(status: http.statusCode, body: data, headers: fields)
    }

    func json(_ method: String, _ path: String, token: String?, _ object: Any) async throws -> Reply {
        var headers = ["Content-Type": "application/json"]
        if let token { headers["Authorization"] = "Bearer \(token)" }
        return try await send(method, path, headers: headers, body: try JSONSerialization.data(withJSONObject: object))
    }
}

/// Shared `--url` / `--token` options of commands that talk to a running server.
struct ServerOptions: ParsableArguments {
    @Option(help: "Server URL. Env SIEM_BASE_URL. Default http://127.0.0.1:8080") var url: String?
    @Option(help: "API key. Env VIGIL_TOKEN, else VIGIL_ADMIN_TOKEN.") var token: String?

    var baseURL: URL {
        URL(string: url ?? ProcessInfo.processInfo.environment["SIEM_BASE_URL"] ?? "http://127.0.0.1:8080")!
    }

    var resolvedToken: String? {
        let env = ProcessInfo.processInfo.environment
        return token ?? env["VIGIL_TOKEN"] ?? env["VIGIL_ADMIN_TOKEN"]
    }
}

import ArgumentParser
