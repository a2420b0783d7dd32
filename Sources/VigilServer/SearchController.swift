import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Metrics
import NIOCore
import Prometheus
import VigilCore
import VigilQuery
import VigilStorage

/// `POST /api/v1/search`. The tenant comes from the key (an admin names one with `"tenant"`),
/// the time range is required and capped, and the row limit is bounded: the caller never
/// controls what the store is asked beyond the query itself.
struct SearchController {
    let deps: ServerDependencies

    func register(on router: Router<BasicRequestContext>) {
        router.post("/api/v1/search") { request, _ in try await search(request) }
    }

    func search(_ request: Request) async throws -> Response {
        let started = deps.clock.now()
        let principal = try await deps.principal(request)
        let body = try await deps.body(request)
        guard case .object(let object)? = try? JSONParser.parse(body) else {
            throw APIError.badRequest("malformed_json", "the body must be a JSON object like {\"query\":\"*\",\"from\":\"...\",\"to\":\"...\"}")
        }
        let tenant = try resolveTenant(principal, requested: object["tenant"])
        let queryText: String
        switch object["query"] {
        case nil: queryText = "*"
        case .string(let text)?: queryText = text
        default: throw APIError.badRequest("invalid_query", "query must be a string")
        }
        let query: QueryNode
        do {
            query = try QueryParser().parse(queryText)
        } catch {
            throw APIError.badRequest("query_syntax", error.description)
        }
        let now = deps.clock.now()
        guard let fromValue = object["from"] else {
            throw APIError.badRequest("time_range_required", "from is required: searches are always time-bounded (RFC 3339 or epoch ms)")
        }
        let from = try Self.time(fromValue, name: "from", now: now)
        let to = try object["to"].map { try Self.time($0, name: "to", now: now) } ?? now
        guard to > from else { throw APIError.badRequest("invalid_time_range", "to must be after from") }
        guard to - from <= deps.searchLimits.maxRangeMillis else {
            throw APIError.badRequest("time_range_too_large", "the time range may span at most \(deps.searchLimits.maxRangeMillis / 86_400_000) days")
        }
        var limit = deps.searchLimits.defaultLimit
        if let value = object["limit"] {
            guard case .int(let requested) = value, requested >= 0 else {
                throw APIError.badRequest("invalid_limit", "limit must be a non-negative integer")
            }
            guard requested <= deps.searchLimits.maxLimit else {
                throw APIError.badRequest("limit_too_large", "limit may be at most \(deps.searchLimits.maxLimit)")
            }
            limit = Int(requested)
        }
        let result: SearchResult
        do {
            result = try await deps.store.search(SearchRequest(tenant: tenant, query: query, from: from, to: to, limit: limit))
        } catch let error as QueryRefusal {
            throw APIError.badRequest("invalid_query", error.message)
        }
        return JSONResponse.object([
            ("events", .array(result.events.map { .object($0.document) })),
            ("total", .int(Int64(result.total))),
            ("took_ms", .int(max(0, deps.clock.now() - started))),
        ])
    }

    func resolveTenant(_ principal: Principal, requested: JSONValue?) throws -> TenantName {
        let requestedName: String?
        switch requested {
        case nil, .null?: requestedName = nil
        case .string(let name)?: requestedName = name
        default: throw APIError.badRequest("invalid_tenant", "tenant must be one tenant name")
        }
        switch principal {
        case .tenant(let own):
            if let requestedName, requestedName != own.rawValue {
                throw APIError.forbidden("this key may search only its own tenant")
            }
            return own
        case .admin:
            guard let requestedName else {
                throw APIError.badRequest("tenant_required", "an admin key must name the tenant it searches with \"tenant\"")
            }
            guard let tenant = TenantName(requestedName) else {
                throw APIError.badRequest("invalid_tenant", "not a valid tenant name")
            }
            return tenant
        }
    }

    static func time(_ value: JSONValue, name: String, now: EpochMillis) throws -> EpochMillis {
        switch value {
        case .string(let text):
            if text == "now" { return now }
            if let millis = Timestamp.parseRFC3339(text) { return millis }
            if let relative = RelativeTime.parse(text, now: now) { return relative }
        case .int(let millis):
            return millis
        default:
            break
        }
        throw APIError.badRequest("invalid_time", "\(name) must be RFC 3339, epoch milliseconds, 'now' or relative like '-15m'")
    }
}

/// Relative times: `-15m`, `-1h`, `-7d`, `now-1h`.
public enum RelativeTime {
    public static func parse(_ text: String, now: EpochMillis) -> EpochMillis? {
        var body = Substring(text)
        if body.hasPrefix("now") { body = body.dropFirst(3) }
        guard body.hasPrefix("-"), body.count >= 3, let unit = body.last, let amount = Int64(body.dropFirst().dropLast()), amount >= 0 else { return nil }
        let scale: Int64
        switch unit {
        case "s": scale = 1000
        case "m": scale = 60_000
        case "h": scale = 3_600_000
        case "d": scale = 86_400_000
        default: return nil
        }
        guard amount < Int64.max / scale else { return nil }
        return now - amount * scale
    }
}
