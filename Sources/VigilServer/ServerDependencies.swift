import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Metrics
import NIOCore
import Prometheus
import VigilAlerts
import VigilCore
import VigilIntake
import VigilQuery
import VigilStorage

/// Everything the HTTP layer needs, built once by the `vigil` command.
public struct ServerDependencies: Sendable {
    public var intake: IntakeService
    public var queue: any IntakeQueue
    public var store: any EventStore
    public var tenants: any TenantDirectory
    public var clock: any VigilClock
    public var limits: IntakeLimits
    public var searchLimits: SearchLimits
    public var metrics: PrometheusCollectorRegistry?
    public var retention: RetentionService?
    /// Rules and alerts; nil when detection is off.
    public var detection: DetectionRuntime?
    public var logger: Logger
    /// Searches, exports and tails running per tenant.
    let querySlots = QuerySlots()
    /// How often a live tail looks for new events.
    public var tailPollMillis: Int = 500

    public init(intake: IntakeService, queue: any IntakeQueue, store: any EventStore, tenants: any TenantDirectory,
                clock: any VigilClock, limits: IntakeLimits, searchLimits: SearchLimits = SearchLimits(),
                metrics: PrometheusCollectorRegistry?, retention: RetentionService? = nil, logger: Logger) {
        self.retention = retention
        self.intake = intake
        self.queue = queue
        self.store = store
        self.tenants = tenants
        self.clock = clock
        self.limits = limits
        self.searchLimits = searchLimits
        self.metrics = metrics
        self.logger = logger
    }

    /// Resolves the request's key to a principal.
    /// - Throws: 401 when no key is given or it is unknown.
    func principal(_ request: Request) async throws -> Principal {
        switch Authenticator.credential(request) {
        case .missing: throw APIError.unauthorized()
        case .malformed: throw APIError.unauthorized("the Authorization header is malformed: use Bearer <key>")
        case .key(let key):
            guard let principal = try await tenants.principal(forKey: key) else {
                throw APIError.unauthorized("the API key is not valid")
            }
            return principal
        }
    }

    /// The tenant a call acts on: a tenant key's own (naming another is forbidden); an admin
    /// key must name one. The messages say what the call does and how to name the tenant.
    func actingTenant(_ principal: Principal, named: String?, forbidden: String, missing: String) throws -> TenantName {
        switch principal {
        case .tenant(let own):
            if let named, named != own.rawValue { throw APIError.forbidden(forbidden) }
            return own
        case .admin:
            guard let tenant = named.flatMap(TenantName.init) else { throw APIError.badRequest("tenant_required", missing) }
            return tenant
        }
    }

    /// Reads the body within the size limit and undoes its Content-Encoding.
    func body(_ request: Request) async throws -> [UInt8] {
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: limits.maxBodyBytes)
        } catch is NIOTooManyBytesError {
            throw APIError(.contentTooLarge, code: "body_too_large", message: "the request body exceeds \(limits.maxBodyBytes) bytes")
        }
        let bytes = Array(buffer.readableBytesView)
        do {
            return try Decompression.decode(bytes, encoding: request.headers[.contentEncoding], limit: limits.maxBodyBytes)
        } catch {
            switch error.code {
            case .corrupt: throw APIError.badRequest("bad_compression", "the body is not valid \(request.headers[.contentEncoding] ?? "") data")
            case .tooLarge: throw APIError(.contentTooLarge, code: "body_too_large", message: "the decompressed body exceeds \(limits.maxBodyBytes) bytes")
            case .unsupported: throw APIError(.unsupportedMediaType, code: "unsupported_encoding", message: "Content-Encoding must be gzip, deflate or zstd")
            }
        }
    }
}
