import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Metrics
import NIOCore
import Prometheus
import VigilCore
import VigilIntake
import VigilStorage

/// `POST /api/v1/ingest`: NDJSON, one event per line.
struct IngestController {
    let deps: ServerDependencies

    static let acceptedContentTypes: Set<String> = [
        "application/x-ndjson", "application/ndjson", "application/json", "application/jsonl", "application/json-lines",
        "application/x-json-stream", "application/jsonlines", "text/plain", "application/octet-stream",
        // curl -d sends this by default; the body is still read as NDJSON.
        "application/x-www-form-urlencoded",
    ]

    func register(on router: Router<BasicRequestContext>) {
        router.post("/api/v1/ingest") { request, _ in try await ingest(request) }
    }

    func ingest(_ request: Request) async throws -> Response {
        let principal = try await deps.principal(request)
        if let contentType = request.headers[.contentType] {
            let mediaType = contentType.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
            guard Self.acceptedContentTypes.contains(mediaType) else {
                throw APIError(.unsupportedMediaType, code: "unsupported_media_type",
                               message: "Content-Type must be application/x-ndjson (one JSON object per line)")
            }
        }
        let target = try await IngestTarget.resolve(principal, request: request, deps: deps)
        let body = try await deps.body(request)
        var items = NativeDecoder.decode(body, limits: deps.limits)
        if target.unknownTenant { items = items.map(IngestTarget.unknownTenantItem) }
        let outcome: IngestOutcome
        do {
            outcome = try await IngestTarget.submit(items, to: target.tenant, source: "ingest", deps: deps)
        } catch let refusal as IngestRefusal {
            throw refusal.apiError
        }
        var errors: [JSONValue] = []
        for (index, status) in outcome.statuses.enumerated() where errors.count < 100 {
            if case .quarantined(let reason, let detail) = status {
                errors.append(.object(JSONObject([("item", .int(Int64(index))), ("reason", .string(reason.rawValue)), ("detail", .string(detail))])))
            }
        }
        var members: [(String, JSONValue)] = [
            ("accepted", .int(Int64(outcome.accepted))),
            ("duplicates", .int(Int64(outcome.duplicates))),
            ("quarantined", .int(Int64(outcome.quarantined))),
        ]
        if !errors.isEmpty { members.append(("errors", .array(errors))) }
        return JSONResponse.object(members)
    }
}

/// The tenant a request writes to: a tenant key's own; an admin key names one with
/// `?tenant=` (or `X-Vigil-Tenant`), and a name that does not exist sends the events to the
/// `default` tenant's quarantine as `unknown_tenant`, so nothing is dropped.
struct IngestTarget {
    var tenant: TenantName
    var unknownTenant: Bool

    static func resolve(_ principal: Principal, request: Request, deps: ServerDependencies) async throws -> IngestTarget {
        switch principal {
        case .tenant(let tenant):
            return IngestTarget(tenant: tenant, unknownTenant: false)
        case .admin:
            guard let name = request.uri.queryParameters["tenant"].map(String.init) ?? request.headers[HTTPField.Name("X-Vigil-Tenant")!] else {
                return IngestTarget(tenant: .defaultTenant, unknownTenant: false)
            }
            if let tenant = TenantName(name), try await deps.tenants.tenantExists(tenant) {
                return IngestTarget(tenant: tenant, unknownTenant: false)
            }
            return IngestTarget(tenant: .defaultTenant, unknownTenant: true)
        }
    }

    static func unknownTenantItem(_ item: DecodedItem) -> DecodedItem {
        switch item {
        case .candidate(let candidate): return .rejected(.unknownTenant, detail: "the tenant named by the request does not exist", raw: candidate.raw)
        case .rejected: return item
        }
    }

    /// Submits, mapping a refusing queue to 503 with Retry-After.
    static func submit(_ items: [DecodedItem], to tenant: TenantName, source: String, deps: ServerDependencies) async throws -> IngestOutcome {
        do {
            return try await deps.intake.submit(tenant: tenant, source: source, items: items)
        } catch let error as IntakeError {
            throw IngestRefusal(error: error)
        }
    }
}

/// The intake queue refused a batch: nothing of it was kept; the client should retry later.
struct IngestRefusal: Error {
    var error: IntakeError
    var code: String {
        switch error.code {
        case .full: return "spool_full"
        case .diskFull: return "disk_full"
        case .io: return "storage_error"
        case .closed: return "shutting_down"
        }
    }
    var message: String {
        switch error.code {
        case .full: return "the intake spool is full; nothing from this request was kept, retry later"
        case .diskFull: return "the disk is full; nothing from this request was kept, retry later"
        case .io: return "the intake spool could not write; nothing from this request was kept, retry later"
        case .closed: return "the server is shutting down; nothing from this request was kept, retry later"
        }
    }
    var apiError: APIError {
        APIError(.serviceUnavailable, code: code, message: message, headers: [.retryAfter: "5"])
    }
}
