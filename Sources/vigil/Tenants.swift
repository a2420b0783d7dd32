import ArgumentParser
import Foundation
import VigilQuery
import VigilCore
import VigilStorage
import VigilStorageSQLite

struct Tenants: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Manage tenants and their API keys.", subcommands: [Create.self, List.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a tenant and print its API key (shown once).",
            discussion: "With --url (or SIEM_BASE_URL) and an admin key, goes through the API; otherwise writes the data directory directly.")

        @Argument(help: "Tenant name: lower-case letters, digits, '-' and '_'.") var name: String
        @Option(help: "Data directory, when not going through the API. Default ./data (env VIGIL_DATA_DIR).") var dataDir: String?
        @OptionGroup var server: ServerOptions

        func run() async throws {
            guard let tenant = TenantName(name) else {
                throw ValidationError("'\(name)' is not a valid tenant name: use 1-64 lower-case letters, digits, '-' or '_'")
            }
            if server.url != nil || ProcessInfo.processInfo.environment["SIEM_BASE_URL"] != nil {
                let client = VigilHTTPClient(baseURL: server.baseURL)
                let reply = try await client.json("POST", "/api/v1/tenants", token: server.resolvedToken, ["name": tenant.rawValue])
                guard reply.status == 201 else {
                    FileHandle.standardError.write(Data("error: HTTP \(reply.status): \(reply.text)".utf8))
                    throw ExitCode(1)
                }
                print(reply.text.trimmingCharacters(in: .whitespacesAndNewlines))
                return
            }
            let dir = dataDir ?? ProcessInfo.processInfo.environment["VIGIL_DATA_DIR"] ?? "./data"
            let directory = try SQLiteTenantDirectory(dataDirectory: URL(fileURLWithPath: dir, isDirectory: true))
            do {
                let key = try await directory.createTenant(tenant)
                let json = try JSONSerialization.data(withJSONObject: ["tenant": tenant.rawValue, "api_key": key], options: [.sortedKeys])
                print(String(decoding: json, as: UTF8.self))
            } catch let error as StoreError {
                FileHandle.standardError.write(Data("error: \(error.message)\n".utf8))
                throw ExitCode(1)
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List tenants.")
        @Option(help: "Data directory. Default ./data (env VIGIL_DATA_DIR).") var dataDir: String?

        func run() async throws {
            let dir = dataDir ?? ProcessInfo.processInfo.environment["VIGIL_DATA_DIR"] ?? "./data"
            let directory = try SQLiteTenantDirectory(dataDirectory: URL(fileURLWithPath: dir, isDirectory: true))
            for tenant in try await directory.listTenants() { print(tenant) }
        }
    }
}

struct Search: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Search events through a running server.",
        discussion: "Prints a table by default: events newest first, or the columns of | stats and | timechart. See docs/search.md.")

    @Argument(help: "The query, e.g. 'host.name:web-1 failed' or 'sshd | stats count() by user.name'.") var query: String = "*"
    @Option(parsing: .unconditional, help: "Start: RFC 3339, epoch ms, 'now' or relative like -1h.") var from: String = "-1h"
    @Option(parsing: .unconditional, help: "End: as --from. Default now.") var to: String = "now"
    @Option(help: "Most events to print.") var limit: Int = 100
    @Option(help: "Continue after a previous page (its next_cursor).") var cursor: String?
    @Option(help: "Tenant to search (admin keys only).") var tenant: String?
    @Flag(help: "Print the raw JSON answer.") var json = false
    @OptionGroup var server: ServerOptions

    func run() async throws {
        let client = VigilHTTPClient(baseURL: server.baseURL)
        var body: [String: Any] = ["query": query, "from": from, "to": to, "limit": limit]
        if let tenant { body["tenant"] = tenant }
        if let cursor { body["cursor"] = cursor }
        let reply = try await client.json("POST", "/api/v1/search", token: server.resolvedToken, body)
        guard reply.status == 200, let object = reply.json as? [String: Any] else {
            let error = (reply.json as? [String: Any])?["error"] as? [String: Any]
            FileHandle.standardError.write(Data("error: \(error?["message"] as? String ?? "HTTP \(reply.status): \(reply.text)")\n".utf8))
            throw ExitCode(1)
        }
        if json {
            print(reply.text.trimmingCharacters(in: .whitespacesAndNewlines))
            return
        }
        if let columns = object["columns"] as? [String], let rows = object["rows"] as? [[Any]] {
            print(Self.table(header: columns, rows: rows.map { $0.map(Self.cell) }))
            print("\(rows.count) rows")
            return
        }
        let events = object["events"] as? [[String: Any]] ?? []
        var columns = ["@timestamp", "host.name", "message"]
        if let parsed = try? QueryParser().parse(query) {
            for case .fields(let fields) in parsed.stages { columns = ["@timestamp"] + fields.filter { $0 != "@timestamp" } }
        }
        let rows = events.map { event in columns.map { Self.cell(Self.value(event, path: $0)) } }
        print(Self.table(header: columns.map { $0.uppercased() }, rows: rows))
        let exact = object["total_exact"] as? Bool ?? true
        print("\(events.count) of \(exact ? "" : "at least ")\(object["total"] ?? 0) events")
        if let next = object["next_cursor"] as? String { print("next page: --cursor \(next)") }
    }

    static func value(_ object: [String: Any], path: String) -> Any? {
        var current: Any? = object
        for part in path.split(separator: ".") { current = (current as? [String: Any])?[String(part)] }
        return current ?? object[path]
    }

    static func cell(_ value: Any?) -> String {
        var text: String
        switch value {
        case nil, is NSNull: text = "-"
        case let string as String: text = string
        case let number as NSNumber: text = number.stringValue
        case let other?: text = (try? JSONSerialization.data(withJSONObject: other)).map { String(decoding: $0, as: UTF8.self) } ?? "\(other)"
        }
        text = text.replacingOccurrences(of: "\n", with: " ")
        return text.count > 120 ? String(text.prefix(117)) + "..." : text
    }

    /// Left-aligned columns as wide as their widest cell; the last column is not padded.
    static func table(header: [String], rows: [[String]]) -> String {
        let all = [header] + rows
        let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
        return all.map { row in
            row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }
}
