import ArgumentParser
import Foundation
import Logging
import VigilCore
import VigilIntake
import VigilStorageSQLite

struct Retention: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Retention of events and quarantine.", subcommands: [Run.self])

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Drop expired partitions and quarantine items now.",
            discussion: "With --url (or SIEM_BASE_URL) and an admin key, asks the running server; otherwise works on a data directory whose server is stopped.")

        @Option(help: "Data directory, when not going through the API. Default ./data (env VIGIL_DATA_DIR).") var dataDir: String?
        @OptionGroup var server: ServerOptions

        func run() async throws {
            if server.url != nil || ProcessInfo.processInfo.environment["SIEM_BASE_URL"] != nil {
                let client = VigilHTTPClient(baseURL: server.baseURL)
                let reply = try await client.json("POST", "/api/v1/retention/run", token: server.resolvedToken, [String: String]())
                guard reply.status == 200 else {
                    FileHandle.standardError.write(Data("error: HTTP \(reply.status): \(reply.text)\n".utf8))
                    throw ExitCode(1)
                }
                print(reply.text.trimmingCharacters(in: .whitespacesAndNewlines))
                return
            }
            let dir = URL(fileURLWithPath: dataDir ?? ProcessInfo.processInfo.environment["VIGIL_DATA_DIR"] ?? "./data", isDirectory: true)
            let logger = Logger(label: "vigil")
            let store = try SQLiteEventStore(dataDirectory: dir, logger: logger)
            let tenants = try SQLiteTenantDirectory(dataDirectory: dir)
            let service = RetentionService(store: store, tenants: tenants, policies: RetentionPolicies(), clock: SystemClock(), logger: logger)
            let report = try await service.runOnce()
            for (tenant, day) in report.droppedPartitions { print("dropped \(tenant) \(Timestamp.dayStamp(day))") }
            print("\(report.droppedPartitions.count) partitions dropped, \(report.purgedQuarantine) quarantine items purged")
        }
    }
}
