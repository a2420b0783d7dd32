import Foundation
import HTTPTypes
import Hummingbird
import VigilAlerts
import VigilCore
import VigilStorage

/// Rules (`/api/v1/rules`) and alerts (`/api/v1/alerts`). A tenant key acts on its own
/// tenant; an admin key names one with `?tenant=`.
struct RulesController {
    let deps: ServerDependencies

    func register(on router: Router<BasicRequestContext>) {
        router.post("/api/v1/rules") { request, _ in try await addRule(request) }
        router.get("/api/v1/rules") { request, _ in try await listRules(request) }
        router.get("/api/v1/rules/:id/coverage") { request, context in try await coverage(request, id: context.parameters.get("id") ?? "") }
        router.delete("/api/v1/rules/:id") { request, context in try await deleteRule(request, id: context.parameters.get("id") ?? "") }
        router.get("/api/v1/alerts") { request, _ in try await listAlerts(request) }
        router.patch("/api/v1/alerts/:id") { request, context in try await updateAlert(request, id: context.parameters.get("id") ?? "") }
    }

    func runtime() throws -> DetectionRuntime {
        guard let detection = deps.detection else {
            throw APIError(.serviceUnavailable, code: "detection_disabled", message: "detection is not enabled on this server")
        }
        return detection
    }

    func tenant(_ request: Request) async throws -> TenantName {
        try deps.actingTenant(try await deps.principal(request), named: request.uri.queryParameters["tenant"].map(String.init),
                              forbidden: "this key may act only on its own tenant", missing: "an admin key must name the tenant: ?tenant=<name>")
    }

    func addRule(_ request: Request) async throws -> Response {
        let detection = try runtime()
        let tenant = try await tenant(request)
        let body = try await deps.body(request)
        guard let source = String(validating: body, as: UTF8.self), !source.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw APIError.badRequest("empty_rule", "the body must be one rule as YAML (UTF-8)")
        }
        do {
            let (rule, replaced) = try await detection.add(source: source, tenant: tenant, now: deps.clock.now())
            return JSONResponse.object([("id", .string(rule.id)), ("replaced", .bool(replaced))], status: replaced ? .ok : .created)
        } catch let error as RuleError {
            throw APIError(.unprocessableContent, code: error.code, message: error.message)
        }
    }

    func ruleJSON(_ record: RuleRecord, detection: DetectionRuntime, now: EpochMillis) -> JSONValue {
        var object = JSONObject()
        object["id"] = .string(record.id)
        object["format"] = .string(record.format)
        if let rule = try? detection.compiler.compile(record) {
            object["severity"] = .string(rule.severity)
            if let native = rule as? NativeRule {
                object["title"] = .string(native.title)
                object["query"] = .string(native.queryText)
                object["tags"] = .array(native.tags.map(JSONValue.string))
            }
        } else {
            object["error"] = .string("the rule no longer compiles")
        }
        object["created"] = .string(Timestamp.formatRFC3339(record.created))
        object["watermark"] = .string(Timestamp.formatRFC3339(record.watermark))
        object["lag_ms"] = .int(max(0, now - record.watermark))
        return .object(object)
    }

    func listRules(_ request: Request) async throws -> Response {
        let detection = try runtime()
        let tenant = try await tenant(request)
        let now = deps.clock.now()
        let rules = try await detection.store.rules(tenant: tenant)
        return JSONResponse.object([("rules", .array(rules.map { ruleJSON($0, detection: detection, now: now) }))])
    }

    func coverage(_ request: Request, id: String) async throws -> Response {
        let detection = try runtime()
        let tenant = try await tenant(request)
        guard let record = try await detection.store.rule(tenant: tenant, id: id) else {
            throw APIError(.notFound, code: "unknown_rule", message: "no rule '\(id)' in this tenant")
        }
        let intervals = try await detection.store.coverage(tenant: tenant, ruleID: id)
        let report = CoverageReport(intervals: intervals, watermark: record.watermark, now: deps.clock.now(), lagMillis: detection.planner.lagMillis)
        func pair(_ range: Range<EpochMillis>) -> JSONValue {
            .object(JSONObject([("from", .string(Timestamp.formatRFC3339(range.lowerBound))), ("to", .string(Timestamp.formatRFC3339(range.upperBound)))]))
        }
        return JSONResponse.object([
            ("rule_id", .string(id)),
            ("covered", .array(report.intervals.map(pair))),
            ("gaps", .array(report.gaps.map(pair))),
            ("watermark", .string(Timestamp.formatRFC3339(record.watermark))),
            ("lag_ms", .int(report.lagMillis)),
            ("safety_lag_ms", .int(detection.planner.lagMillis)),
        ])
    }

    func deleteRule(_ request: Request, id: String) async throws -> Response {
        let detection = try runtime()
        let tenant = try await tenant(request)
        guard try await detection.store.deleteRule(tenant: tenant, id: id) else {
            throw APIError(.notFound, code: "unknown_rule", message: "no rule '\(id)' in this tenant")
        }
        return Response(status: .noContent)
    }

    static func alertJSON(_ alert: AlertRecord) -> JSONValue {
        .object(JSONObject([
            ("id", .int(alert.id ?? 0)),
            ("rule_id", .string(alert.ruleID)),
            ("severity", .string(alert.severity)),
            ("status", .string(alert.status.rawValue)),
            ("event_ids", .array(alert.eventIDs.map(JSONValue.string))),
            ("group", .object(alert.group)),
            ("first_seen", .string(Timestamp.formatRFC3339(alert.firstSeen))),
            ("last_seen", .string(Timestamp.formatRFC3339(alert.lastSeen))),
            ("created", .string(Timestamp.formatRFC3339(alert.created))),
            ("tenant", .string(alert.tenant.rawValue)),
        ]))
    }

    func listAlerts(_ request: Request) async throws -> Response {
        let detection = try runtime()
        let tenant = try await tenant(request)
        let query = request.uri.queryParameters
        let now = deps.clock.now()
        var status: AlertStatus?
        if let text = query["status"] {
            guard let parsed = AlertStatus(rawValue: String(text)) else {
                throw APIError.badRequest("invalid_status", "status must be open, acknowledged or closed")
            }
            status = parsed
        }
        let from = try query["from"].map { try SearchParameters.time(.string(String($0)), name: "from", now: now) } ?? now - 7 * 86_400_000
        let to = try query["to"].map { try SearchParameters.time(.string(String($0)), name: "to", now: now) } ?? now + 1
        guard let limit = Int(query["limit"].map(String.init) ?? "100"), (0...10_000).contains(limit) else {
            throw APIError.badRequest("invalid_limit", "limit must be 0 to 10000")
        }
        let alerts = try await detection.store.alerts(tenant: tenant, ruleID: query["rule_id"].map(String.init), status: status, from: from, to: to, limit: limit)
        return JSONResponse.object([("alerts", .array(alerts.map(Self.alertJSON))), ("total", .int(Int64(alerts.count)))])
    }

    func updateAlert(_ request: Request, id: String) async throws -> Response {
        let detection = try runtime()
        let tenant = try await tenant(request)
        guard let alertID = Int64(id) else { throw APIError(.notFound, code: "unknown_alert", message: "no alert '\(id)'") }
        let body = try await deps.body(request)
        guard case .object(let object)? = try? JSONParser.parse(body), let text = object["status"]?.stringValue, let status = AlertStatus(rawValue: text) else {
            throw APIError.badRequest("invalid_status", "the body must be {\"status\":\"open|acknowledged|closed\"}")
        }
        guard let alert = try await detection.store.setAlertStatus(tenant: tenant, id: alertID, status: status, now: deps.clock.now()) else {
            throw APIError(.notFound, code: "unknown_alert", message: "no alert '\(id)' in this tenant")
        }
        return JSONResponse.make(Self.alertJSON(alert))
    }
}
