import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Testing
import VigilCore
import VigilStorage
import VigilStorageSQLite
@testable import VigilIntake
@testable import VigilServer

struct RouterTests {
    struct Fixture {
        var deps: ServerDependencies
        var spool: Spool
        var adminKey: String
        var tenantKey: String
    }

    func makeFixture(_ configure: (inout IntakeLimits) -> Void = { _ in }) async throws -> Fixture {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("router-\(UUID().uuidString)", isDirectory: true)
        let logger = Logger(label: "test")
        let store = try SQLiteEventStore(dataDirectory: dir, logger: logger)
        let tenants = try SQLiteTenantDirectory(dataDirectory: dir)
        let admin = try #require(try tenants.bootstrap(presetAdminKey: nil, now: 0))
        let key = try await tenants.createTenant(TenantName("acme")!)
        let spool = try Spool(configuration: SpoolConfiguration(directory: dir.appendingPathComponent("spool")))
        var limits = IntakeLimits()
        configure(&limits)
        let intake = IntakeService(queue: spool, store: store, clock: SystemClock(), limits: limits, logger: logger)
        let deps = ServerDependencies(intake: intake, queue: spool, store: store, tenants: tenants, clock: SystemClock(),
                                      limits: limits, metrics: nil, logger: logger)
        return Fixture(deps: deps, spool: spool, adminKey: admin, tenantKey: key)
    }

    /// Stores what the spool holds, as the pipeline service does.
    func drain(_ fixture: Fixture) async throws {
        let pipeline = PipelineService(queue: fixture.spool, store: fixture.deps.store, intake: fixture.deps.intake, logger: Logger(label: "test"))
        while let batch = try await fixture.spool.nextBatch(maxRecords: 1000, drainOnly: true) {
            try await pipeline.process(batch, stored: .init(label: "test"))
        }
    }

    func json(_ buffer: ByteBuffer) throws -> JSONObject {
        try #require(try JSONParser.parse(Array(buffer.readableBytesView)).objectValue)
    }

    @Test func ingestThenSearchReturnsTheEvents() async throws {
        let fixture = try await makeFixture()
        let app = Application(router: buildRouter(fixture.deps))
        try await app.test(.router) { client in
            let body = #"{"message":"hello world","host.name":"a"}"# + "\n" + #"{"message":"second"}"#
            try await client.execute(uri: "/api/v1/ingest", method: .post, headers: [.authorization: "Bearer \(fixture.tenantKey)"],
                                     body: ByteBuffer(string: body)) { response in
                #expect(response.status == .ok)
                let object = try json(response.body)
                #expect(object["accepted"] == .int(2))
                #expect(object["duplicates"] == .int(0))
            }
            try await drain(fixture)
            try await client.execute(uri: "/api/v1/search", method: .post, headers: [.authorization: "Bearer \(fixture.tenantKey)"],
                                     body: ByteBuffer(string: #"{"query":"hello","from":"-1h"}"#)) { response in
                #expect(response.status == .ok)
                let object = try json(response.body)
                #expect(object["total"] == .int(1))
                guard case .array(let events)? = object["events"] else { Issue.record("no events"); return }
                #expect(events.first?.value(atPath: "host.name") == .string("a"))
            }
        }
    }

    @Test(arguments: [
        ("", HTTPResponse.Status.unauthorized, "unauthorized"),
        ("Bearer wrong", .unauthorized, "unauthorized"),
        ("Token x y", .unauthorized, "unauthorized"),
    ])
    func refusesMissingAndWrongKeysWithJSON(_ authorization: String, _ status: HTTPResponse.Status, _ code: String) async throws {
        let fixture = try await makeFixture()
        let app = Application(router: buildRouter(fixture.deps))
        try await app.test(.router) { client in
            var headers: HTTPFields = [:]
            if !authorization.isEmpty { headers[.authorization] = authorization }
            try await client.execute(uri: "/api/v1/ingest", method: .post, headers: headers, body: ByteBuffer(string: "{}")) { response in
                #expect(response.status == status)
                let error = try json(response.body)["error"]
                #expect(error?.value(atPath: "code") == .string(code))
            }
        }
    }

    @Test func tenantKeysCannotSearchOtherTenantsOrCreateTenants() async throws {
        let fixture = try await makeFixture()
        let app = Application(router: buildRouter(fixture.deps))
        try await app.test(.router) { client in
            try await client.execute(uri: "/api/v1/search", method: .post, headers: [.authorization: "Bearer \(fixture.tenantKey)"],
                                     body: ByteBuffer(string: #"{"query":"*","from":"-1h","tenant":"default"}"#)) { response in
                #expect(response.status == .forbidden)
            }
            try await client.execute(uri: "/api/v1/tenants", method: .post, headers: [.authorization: "Bearer \(fixture.tenantKey)"],
                                     body: ByteBuffer(string: #"{"name":"evil"}"#)) { response in
                #expect(response.status == .forbidden)
            }
            try await client.execute(uri: "/api/v1/search", method: .post, headers: [.authorization: "Bearer \(fixture.adminKey)"],
                                     body: ByteBuffer(string: #"{"query":"*","from":"-1h"}"#)) { response in
                #expect(response.status == .badRequest)
                let error = try json(response.body)["error"]
                #expect(error?.value(atPath: "code") == .string("tenant_required"))
            }
            try await client.execute(uri: "/api/v1/search", method: .post, headers: [.authorization: "Bearer \(fixture.tenantKey)"],
                                     body: ByteBuffer(string: #"{"query":"*"}"#)) { response in
                let error = try json(response.body)["error"]
                #expect(error?.value(atPath: "code") == .string("time_range_required"))
            }
        }
    }

    @Test func decompressesGzipAndZstdAndRefusesBombs() throws {
        let text = Array(String(repeating: #"{"message":"x"}"# + "\n", count: 1000).utf8)
        let gzip = try #require(try? shell("gzip -c", input: text))
        #expect(try Decompression.decode(gzip, encoding: "gzip", limit: 1 << 20) == text)
        #expect(throws: DecompressionError.self) { try Decompression.decode(gzip, encoding: "gzip", limit: 100) }
        #expect(throws: DecompressionError.self) { try Decompression.decode(Array(gzip.prefix(gzip.count / 2)), encoding: "gzip", limit: 1 << 20) }
        #expect(throws: DecompressionError.self) { try Decompression.decode([1, 2, 3], encoding: "gzip", limit: 1 << 20) }
        #expect(throws: DecompressionError.self) { try Decompression.decode(text, encoding: "br", limit: 1 << 20) }
        if let zstd = try? shell("zstd -q -c", input: text), !zstd.isEmpty {
            #expect(try Decompression.decode(zstd, encoding: "zstd", limit: 1 << 20) == text)
            #expect(throws: DecompressionError.self) { try Decompression.decode(zstd, encoding: "zstd", limit: 100) }
            #expect(throws: DecompressionError.self) { try Decompression.decode(Array(zstd.prefix(zstd.count / 2)), encoding: "zstd", limit: 1 << 20) }
        }
    }

    func shell(_ command: String, input: [UInt8]) throws -> [UInt8] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        let stdin = Pipe(), stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        try process.run()
        stdin.fileHandleForWriting.write(Data(input))
        try stdin.fileHandleForWriting.close()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw CocoaError(.fileReadUnknown) }
        return Array(output)
    }

    @Test func authenticatorReadsEveryShipperScheme() {
        func credential(_ header: String) -> Authenticator.Credential {
            Authenticator.credential(Request(head: HTTPRequest(method: .post, scheme: "http", authority: "x", path: "/", headerFields: [.authorization: header]),
                                             body: .init(buffer: ByteBuffer())))
        }
        #expect(credential("Bearer k1") == .key("k1"))
        #expect(credential("Splunk k2") == .key("k2"))
        #expect(credential("Basic " + Data("vigil:k3".utf8).base64EncodedString()) == .key("k3"))
        #expect(credential("ApiKey " + Data("id:k4".utf8).base64EncodedString()) == .key("k4"))
        #expect(credential("Basic !!!") == .malformed)
        #expect(credential("Bearer") == .malformed)
    }
}
