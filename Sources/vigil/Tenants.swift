import ArgumentParser
import Foundation
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
    static let configuration = CommandConfiguration(abstract: "Search events through a running server.")

    @Argument(help: "The query, e.g. 'host.name:web-1 failed'.") var query: String = "*"
    @Option(parsing: .unconditional, help: "Start: RFC 3339, epoch ms, 'now' or relative like -1h.") var from: String = "-1h"
    @Option(parsing: .unconditional, help: "End: as --from. Default now.") var to: String = "now"
    @Option(help: "Most events to print.") var limit: Int = 100
    @Option(help: "Tenant to search (admin keys only).") var tenant: String?
    @Flag(help: "Print the raw JSON answer.") var json = false
    @OptionGroup var server: ServerOptions

    func run() async throws {
        let client = VigilHTTPClient(baseURL: server.baseURL)
        var body: [String: Any] = ["query": query, "from": from, "to": to, "limit": limit]
        if let tenant { body["tenant"] = tenant }
        let reply = try await client.json("POST", "/api/v1/search", token: server.resolvedToken, body)
        guard reply.status == 200, let object = reply.json as? [String: Any] else {
            FileHandle.standardError.write(Data("error: HTTP \(reply.status): \(reply.text)".utf8))
            throw ExitCode(1)
        }
        if json {
            print(reply.text.trimmingCharacters(in: .whitespacesAndNewlines))
            return
        }
        let events = object["events"] as? [[String: Any]] ?? []
        print("TIMESTAMP                 HOST                 MESSAGE")
        for event in events {
            let time = event["@timestamp"] as? String ?? ""
            let host = (event["host"] as? [String: Any])?["name"] as? String ?? "-"
            var message = event["message"] as? String ?? ""
            if message.count > 120 { message = String(message.prefix(117)) + "..." }
            print("\(time.padding(toLength: 25, withPad: " ", startingAt: 0)) \(host.padding(toLength: 20, withPad: " ", startingAt: 0)) \(message)")
        }
        print("\(events.count) of \(object["total"] ?? 0) events")
    }
}
