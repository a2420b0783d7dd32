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
        router.post("/api/v1/quarantine/replay") { request, _ in try await replay(request) }
        router.put("/api/v1/tenants/:name/retention") { request, context in try await setRetention(request, name: context.parameters.get("name") ?? "") }
        router.get("/api/v1/tenants/:name") { request, context in try await tenantInfo(request, name: context.parameters.get("name") ?? "") }
        router.post("/api/v1/retention/run") { request, _ in try await runRetention(request) }
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

    /// The tenant a quarantine call acts on: a tenant key's own; an admin names one.
    func quarantineTenant(_ principal: Principal, named: String?) throws -> TenantName {
        try deps.actingTenant(principal, named: named, forbidden: "this key may read only its own tenant", missing: "an admin key must name the tenant")
    }

    func quarantine(_ request: Request) async throws -> Response {
        let principal = try await deps.principal(request)
        let query = request.uri.queryParameters
        let tenant = try quarantineTenant(principal, named: query["tenant"].map(String.init))
        var reason: QuarantineReason?
        if let text = query["reason"] {
            guard let parsed = QuarantineReason(rawValue: String(text)) else {
                throw APIError.badRequest("invalid_reason", "reason must be one of \(QuarantineReason.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            reason = parsed
        }
        let now = deps.clock.now()
        let from = try query["from"].map { try SearchParameters.time(.string(String($0)), name: "from", now: now) } ?? now - 7 * 86_400_000
        let to = try query["to"].map { try SearchParameters.time(.string(String($0)), name: "to", now: now) } ?? now + 1
        guard let limit = Int(query["limit"].map(String.init) ?? "100"), (0...10_000).contains(limit) else {
            throw APIError.badRequest("invalid_limit", "limit must be an integer from 0 to 10000")
        }
        let items = try await deps.store.quarantine(tenant: tenant, reason: reason, from: from, to: to, limit: limit)
        let encoded: [JSONValue] = items.map { item in
            .object(JSONObject([
                ("id", .int(item.id ?? 0)),
                ("received", .string(Timestamp.formatRFC3339(item.received))), ("reason", .string(item.reason.rawValue)),
                ("detail", .string(item.detail)), ("source", .string(item.source)),
                ("raw", .string(String(decoding: item.raw, as: UTF8.self))),
            ]))
        }
        return JSONResponse.object([("items", .array(encoded)), ("total", .int(Int64(items.count)))])
    }

    /// `POST /api/v1/quarantine/replay` with `{"ids":[...]}` or a selection
    /// `{"reason","from","to","limit"}`: re-runs the items through the current pipeline and
    /// removes those that are now stored.
    func replay(_ request: Request) async throws -> Response {
        let principal = try await deps.principal(request)
        let body = try await deps.body(request)
        guard case .object(let object)? = try? JSONParser.parse(body) else {
            throw APIError.badRequest("malformed_json", "the body must be a JSON object: {\"ids\":[...]} or {\"reason\":\"...\"}")
        }
        let tenant = try quarantineTenant(principal, named: object["tenant"]?.stringValue)
        var items: [QuarantineItem]
        if case .array(let values)? = object["ids"] {
            let ids = values.compactMap { value -> Int64? in if case .int(let id) = value { return id } else { return nil } }
            guard ids.count == values.count, ids.count <= 10_000 else {
                throw APIError.badRequest("invalid_ids", "ids must be at most 10000 integers from the quarantine listing")
            }
            items = try await deps.store.quarantine(tenant: tenant, ids: ids)
        } else {
            var reason: QuarantineReason?
            if let text = object["reason"]?.stringValue {
                guard let parsed = QuarantineReason(rawValue: text) else { throw APIError.badRequest("invalid_reason", "unknown reason '\(text.prefix(40))'") }
                reason = parsed
            }
            let now = deps.clock.now()
            let from = try object["from"].map { try SearchParameters.time($0, name: "from", now: now) } ?? 0
            let to = try object["to"].map { try SearchParameters.time($0, name: "to", now: now) } ?? now + 1
            var limit: Int64 = 1000
            if let value = object["limit"] {
                guard case .int(let n) = value, (1...10_000).contains(n) else { throw APIError.badRequest("invalid_limit", "limit must be 1 to 10000") }
                limit = n
            }
            items = try await deps.store.quarantine(tenant: tenant, reason: reason, from: from, to: to, limit: Int(limit))
        }
        let statuses: [ItemStatus]
        do {
            statuses = try await deps.intake.replay(tenant: tenant, items: items)
        } catch let error as IntakeError {
            throw IngestRefusal(error: error).apiError
        }
        var removed: [Int64] = []
        var results: [JSONValue] = []
        var accepted = 0, duplicates = 0, still = 0
        for (item, status) in zip(items, statuses) {
            var result = JSONObject([("id", .int(item.id ?? 0))])
            switch status {
            case .accepted:
                accepted += 1
                result["status"] = .string("accepted")
                if let id = item.id { removed.append(id) }
            case .duplicate:
                duplicates += 1
                result["status"] = .string("duplicate")
                if let id = item.id { removed.append(id) }
            case .quarantined(let reason, let detail):
                still += 1
                result["status"] = .string("quarantined")
                result["reason"] = .string(reason.rawValue)
                result["detail"] = .string(detail)
            }
            results.append(.object(result))
        }
        // Only now that the replayed events are durable in the spool do they leave quarantine.
        try await deps.store.removeQuarantined(tenant: tenant, ids: removed)
        return JSONResponse.object([
            ("replayed", .int(Int64(items.count))), ("accepted", .int(Int64(accepted))), ("duplicates", .int(Int64(duplicates))),
            ("still_quarantined", .int(Int64(still))), ("items", .array(results)),
        ])
    }

    func tenantInfo(_ request: Request, name: String) async throws -> Response {
        let principal = try await deps.principal(request)
        guard let tenant = TenantName(name), try await deps.tenants.tenantExists(tenant) else {
            throw APIError(.notFound, code: "unknown_tenant", message: "no such tenant")
        }
        guard principal == .admin || principal == .tenant(tenant) else { throw APIError.forbidden("this key may read only its own tenant") }
        return JSONResponse.object([("tenant", .string(tenant.rawValue)), ("retention_days", .int(Int64(try await deps.tenants.retentionDays(tenant))))])
    }

    func setRetention(_ request: Request, name: String) async throws -> Response {
        guard try await deps.principal(request) == .admin else { throw APIError.forbidden("only an admin key may change retention") }
        guard let tenant = TenantName(name), try await deps.tenants.tenantExists(tenant) else {
            throw APIError(.notFound, code: "unknown_tenant", message: "no such tenant")
        }
        let body = try await deps.body(request)
        guard case .object(let object)? = try? JSONParser.parse(body), case .int(let days)? = object["days"], (1...3650).contains(days) else {
            throw APIError.badRequest("invalid_retention", "the body must be {\"days\": 1 to 3650}")
        }
        try await deps.tenants.setRetentionDays(tenant, days: Int(days))
        deps.intake.retention.set(tenant, days: Int(days))
        return JSONResponse.object([("tenant", .string(tenant.rawValue)), ("retention_days", .int(days))])
    }

    func runRetention(_ request: Request) async throws -> Response {
        guard try await deps.principal(request) == .admin else { throw APIError.forbidden("only an admin key may run retention") }
        guard let retention = deps.retention else { throw APIError(.notFound, code: "not_configured", message: "retention is not configured") }
        let report = try await retention.runOnce()
        let dropped: [JSONValue] = report.droppedPartitions.map {
            .object(JSONObject([("tenant", .string($0.tenant.rawValue)), ("day", .string(Timestamp.dayStamp($0.day)))]))
        }
        return JSONResponse.object([("dropped_partitions", .array(dropped)), ("purged_quarantine", .int(Int64(report.purgedQuarantine)))])
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
