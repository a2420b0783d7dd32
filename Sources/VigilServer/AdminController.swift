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

/// Tenants (`/api/v1/tenants`), quarantine listing, health, readiness and metrics.
struct AdminController {
    let deps: ServerDependencies

    func register(on router: Router<BasicRequestContext>) {
        router.post("/api/v1/tenants") { request, _ in try await createTenant(request) }
        router.get("/api/v1/tenants") { request, _ in try await listTenants(request) }
        router.get("/api/v1/quarantine") { request, _ in try await quarantine(request) }
        router.get("/healthz") { _, _ in JSONResponse.object([("status", .string("ok"))]) }
        router.get("/readyz") { _, _ in readiness() }
        router.get("/metrics") { _, _ in metrics() }
    }

    func createTenant(_ request: Request) async throws -> Response {
        guard try await deps.principal(request) == .admin else { throw APIError.forbidden("only an admin key may create tenants") }
        let body = try await deps.body(request)
        guard case .object(let object)? = try? JSONParser.parse(body), case .string(let name)? = object["name"] else {
            throw APIError.badRequest("malformed_json", "the body must be {\"name\":\"<tenant>\"}")
        }
        guard let tenant = TenantName(name) else {
            throw APIError.badRequest("invalid_tenant_name", "a tenant name is 1-64 lower-case letters, digits, '-' or '_', starting with a letter or digit")
        }
        do {
            let key = try await deps.tenants.createTenant(tenant)
            return JSONResponse.object([("tenant", .string(tenant.rawValue)), ("api_key", .string(key))], status: .created)
        } catch let error as StoreError where error.code == .tenantExists {
            throw APIError(.conflict, code: "tenant_exists", message: "tenant '\(tenant)' already exists")
        }
    }

    func listTenants(_ request: Request) async throws -> Response {
        guard try await deps.principal(request) == .admin else { throw APIError.forbidden("only an admin key may list tenants") }
        let tenants = try await deps.tenants.listTenants()
        return JSONResponse.object([("tenants", .array(tenants.map { .string($0.rawValue) }))])
    }

    func quarantine(_ request: Request) async throws -> Response {
        let principal = try await deps.principal(request)
        let query = request.uri.queryParameters
        let tenant: TenantName
        switch principal {
        case .tenant(let own):
            if let named = query["tenant"], String(named) != own.rawValue { throw APIError.forbidden("this key may read only its own tenant") }
            tenant = own
        case .admin:
            guard let named = query["tenant"].flatMap({ TenantName(String($0)) }) else {
                throw APIError.badRequest("tenant_required", "an admin key must name the tenant with ?tenant=")
            }
            tenant = named
        }
        var reason: QuarantineReason?
        if let text = query["reason"] {
            guard let parsed = QuarantineReason(rawValue: String(text)) else {
                throw APIError.badRequest("invalid_reason", "reason must be one of \(QuarantineReason.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            reason = parsed
        }
        let now = deps.clock.now()
        let from = try query["from"].map { try SearchController.time(.string(String($0)), name: "from", now: now) } ?? now - 7 * 86_400_000
        let to = try query["to"].map { try SearchController.time(.string(String($0)), name: "to", now: now) } ?? now + 1
        guard let limit = Int(query["limit"].map(String.init) ?? "100"), (0...10_000).contains(limit) else {
            throw APIError.badRequest("invalid_limit", "limit must be an integer from 0 to 10000")
        }
        let items = try await deps.store.quarantine(tenant: tenant, reason: reason, from: from, to: to, limit: limit)
        let encoded: [JSONValue] = items.map { item in
            .object(JSONObject([
                ("received", .string(Timestamp.formatRFC3339(item.received))), ("reason", .string(item.reason.rawValue)),
                ("detail", .string(item.detail)), ("source", .string(item.source)),
                ("raw", .string(String(decoding: item.raw, as: UTF8.self))),
            ]))
        }
        return JSONResponse.object([("items", .array(encoded)), ("total", .int(Int64(items.count)))])
    }

    func readiness() -> Response {
        let backlog = deps.queue.backlogBytes
        return JSONResponse.object([("status", .string("ready")), ("spool_backlog_bytes", .int(backlog))])
    }

    func metrics() -> Response {
        guard let registry = deps.metrics else { return Response(status: .notFound) }
        Gauge(label: "vigil_spool_bytes").record(deps.queue.backlogBytes)
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: buffer)))
    }
}
