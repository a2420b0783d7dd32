import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Metrics
import NIOCore
import Synchronization
import VigilCore
import VigilQuery
import VigilStorage

/// Search (`POST /api/v1/search`), export (`GET /api/v1/search/export`), live tail
/// (`GET /api/v1/tail`) and the per-tenant search limits.
///
/// The tenant comes from the key (an admin names exactly one with `tenant`), the time range is
/// required and capped, every limit is checked before the query runs, and the query is
/// interrupted at its timeout: the caller never controls what the store is asked beyond the
/// query itself.
struct SearchController {
    let deps: ServerDependencies

    func register(on router: Router<BasicRequestContext>) {
        router.post("/api/v1/search") { request, _ in try await search(request) }
        router.get("/api/v1/search/export") { request, _ in try await export(request) }
        router.get("/api/v1/tail") { request, _ in try await tail(request) }
        router.get("/api/v1/tenants/:name/search-limits") { request, context in
            try await limits(request, name: context.parameters.get("name") ?? "")
        }
        router.put("/api/v1/tenants/:name/search-limits") { request, context in
            try await setLimits(request, name: context.parameters.get("name") ?? "")
        }
    }

    // MARK: - Search

    func search(_ request: Request) async throws -> Response {
        let started = DispatchTime.now()
        let principal = try await deps.principal(request)
        let body = try await deps.body(request)
        guard case .object(let object)? = try? JSONParser.parse(body) else {
            throw APIError.badRequest("malformed_json", "the body must be a JSON object like {\"query\":\"*\",\"from\":\"-1h\"}")
        }
        let parameters = try await SearchParameters(object, principal: principal, deps: deps, forExport: false)
        let lease = try deps.querySlots.acquire(parameters.tenant, max: parameters.limits.maxConcurrent)
        defer { withExtendedLifetime(lease) {} }
        let result = try await run(parameters.request(cursor: parameters.cursor))
        let tookMillis = Int64((DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1_000_000)
        switch result {
        case .table(let table):
            return JSONResponse.object([
                ("columns", .array(table.columns.map(JSONValue.string))),
                ("rows", .array(table.rows.map(JSONValue.array))),
                ("took_ms", .int(tookMillis)),
            ])
        case .events(let page):
            return JSONResponse.object([
                ("events", .array(page.hits.map { .object(parameters.render($0)) })),
                ("total", .int(Int64(page.total))),
                ("total_exact", .bool(page.totalIsExact)),
                ("took_ms", .int(tookMillis)),
                ("next_cursor", page.nextCursor.map { .string(parameters.encode($0)) } ?? .null),
            ])
        }
    }

    /// Runs a search, turning store refusals and interruptions into 4xx answers.
    func run(_ request: SearchRequest) async throws -> SearchResult {
        do {
            return try await deps.store.search(request)
        } catch let error as QueryRefusal {
            throw APIError.badRequest("invalid_query", error.message)
        } catch let error as SearchLimitError {
            throw APIError(.badRequest, code: "limit_exceeded", message: error.message, limit: error.limit)
        } catch let error as StoreError where error.code == .interrupted {
            Counter(label: "vigil_search_timeouts_total").increment()
            throw APIError(.unprocessableContent, code: "query_timeout",
                           message: "the search ran longer than \(request.budget.timeoutMillis) ms and was stopped; narrow the time range or the query",
                           limit: "timeout_ms")
        } catch let error as StoreError where error.code == .cancelled {
            throw APIError.badRequest("cancelled", "the search was cancelled")
        }
    }

    // MARK: - Export

    /// Streams every matching event (or aggregation row) as NDJSON, newest first, up to
    /// `limit` (default and maximum: `max_export_rows`).
    func export(_ request: Request) async throws -> Response {
        let principal = try await deps.principal(request)
        let parameters = try await SearchParameters(Self.queryObject(request), principal: principal, deps: deps, forExport: true)
        let lease = try deps.querySlots.acquire(parameters.tenant, max: parameters.limits.maxConcurrent)
        let runner = self
        // The first page runs before the answer starts, so a bad query still gets its 4xx.
        let first = try await run(parameters.request(cursor: nil, pageSize: min(parameters.limit, 1000)))
        let body = ResponseBody { writer in
            defer { withExtendedLifetime(lease) {} }
            do {
                var result = first
                var sent = 0
                while true {
                    switch result {
                    case .table(let table):
                        for row in table.rows {
                            let members = zip(table.columns, row).map { (key: $0.0, value: $0.1) }
                            try await writer.write(Self.line(.object(JSONObject(members))))
                        }
                        return try await writer.finish(nil)
                    case .events(let page):
                        var buffer = ByteBuffer()
                        for hit in page.hits.prefix(parameters.limit - sent) {
                            var bytes = JSONWriter.bytes(.object(parameters.render(hit)))
                            bytes.append(0x0A)
                            buffer.writeBytes(bytes)
                        }
                        sent += min(page.hits.count, parameters.limit - sent)
                        try await writer.write(buffer)
                        guard sent < parameters.limit, let cursor = page.nextCursor else { return try await writer.finish(nil) }
                        do {
                            result = try await runner.run(parameters.request(cursor: cursor, pageSize: min(parameters.limit - sent, 1000)))
                        } catch let error as APIError {
                            // The status line is gone: end with an error line the client can see.
                            try await writer.write(Self.line(.object(JSONObject([("error", .object(JSONObject([("code", .string(error.code)), ("message", .string(error.message))])))]))))
                            return try await writer.finish(nil)
                        }
                    }
                }
            }
        }
        return Response(status: .ok, headers: [.contentType: "application/x-ndjson"], body: body)
    }

    static func line(_ value: JSONValue) -> ByteBuffer {
        var bytes = JSONWriter.bytes(value)
        bytes.append(0x0A)
        return ByteBuffer(bytes: bytes)
    }

    /// GET parameters as the JSON object a POST would carry. Form encoding: `+` is a space
    /// (a literal plus arrives as `%2B`); the first of repeated names wins.
    static func queryObject(_ request: Request) -> JSONObject {
        var object = JSONObject()
        for pair in (request.uri.query ?? "").split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ text: Substring) -> String? { text.replacingOccurrences(of: "+", with: " ").removingPercentEncoding }
            guard let name = decode(parts[0]), let value = decode(parts.count > 1 ? parts[1] : ""), object[name] == nil else { continue }
            object[name] = .string(value)
        }
        return object
    }

    // MARK: - Live tail

    /// Server-sent events: `ready` once the tail is positioned, then one `event` per new
    /// matching event. A tail holds one of the tenant's query slots while it is open.
    func tail(_ request: Request) async throws -> Response {
        let principal = try await deps.principal(request)
        var object = Self.queryObject(request)
        object["from"] = object["from"] ?? .string("-1m")
        let parameters = try await SearchParameters(object, principal: principal, deps: deps, forExport: false, requireRange: false)
        if parameters.query.aggregation != nil || !parameters.query.stages.isEmpty {
            throw APIError.badRequest("invalid_query", "a live tail takes a filter only, without | stages")
        }
        let lease = try deps.querySlots.acquire(parameters.tenant, max: parameters.limits.maxConcurrent)
        let deps = self.deps
        let start = try await deps.store.tail(tenant: parameters.tenant, query: parameters.query, cursor: nil, now: deps.clock.now(), limit: 0,
                                              budget: QueryBudget(timeoutMillis: parameters.limits.timeoutMillis))
        let body = ResponseBody { writer in
            defer { withExtendedLifetime(lease) {} }
            do {
                var cursor = start.cursor
                try await writer.write(ByteBuffer(string: "event: ready\ndata: {}\n\n"))
                var idle = 0
                while !Task.isCancelled {
                    let budget = QueryBudget(timeoutMillis: parameters.limits.timeoutMillis)
                    let batch = try await deps.store.tail(tenant: parameters.tenant, query: parameters.query, cursor: cursor, now: deps.clock.now(),
                                                          limit: 1000, budget: budget)
                    cursor = batch.cursor
                    if batch.hits.isEmpty {
                        idle += deps.tailPollMillis
                        if idle >= 5_000 {
                            // A comment line: keeps proxies from closing an idle stream, and finds a gone client.
                            try await writer.write(ByteBuffer(string: ": keepalive\n\n"))
                            idle = 0
                        }
                        try await Task.sleep(for: .milliseconds(deps.tailPollMillis))
                        continue
                    }
                    idle = 0
                    var text = ""
                    for hit in batch.hits {
                        text += "event: event\ndata: " + JSONWriter.string(.object(parameters.render(hit))) + "\n\n"
                    }
                    try await writer.write(ByteBuffer(string: text))
                }
                try await writer.finish(nil)
            }
        }
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: body)
    }

    // MARK: - Limits

    func limits(_ request: Request, name: String) async throws -> Response {
        let principal = try await deps.principal(request)
        guard let tenant = TenantName(name), try await deps.tenants.tenantExists(tenant) else {
            throw APIError(.notFound, code: "unknown_tenant", message: "no such tenant")
        }
        if case .tenant(let own) = principal, own != tenant { throw APIError.forbidden("this key may read only its own tenant") }
        return try await limitsResponse(tenant)
    }

    func limitsResponse(_ tenant: TenantName) async throws -> Response {
        let overrides = try await deps.tenants.searchLimitOverrides(tenant)
        let effective = deps.searchLimits.applying(overrides)
        func object(_ values: [String: Int]) -> JSONValue {
            .object(JSONObject(SearchLimits.names.compactMap { name in values[name].map { (key: name, value: .int(Int64($0))) } }))
        }
        var all: [String: Int] = [:]
        for name in SearchLimits.names { all[name] = effective[name] }
        return JSONResponse.object([("tenant", .string(tenant.rawValue)), ("limits", object(all)), ("overrides", object(overrides))])
    }

    /// `PUT {"timeout_ms": 2000, "max_limit": null}`: sets or (null) clears overrides.
    func setLimits(_ request: Request, name: String) async throws -> Response {
        guard try await deps.principal(request) == .admin else { throw APIError.forbidden("only an admin key may change search limits") }
        guard let tenant = TenantName(name), try await deps.tenants.tenantExists(tenant) else {
            throw APIError(.notFound, code: "unknown_tenant", message: "no such tenant")
        }
        guard case .object(let object)? = try? JSONParser.parse(try await deps.body(request)) else {
            throw APIError.badRequest("malformed_json", "the body must be a JSON object like {\"timeout_ms\": 2000}")
        }
        var changes: [String: Int?] = [:]
        var problems: [String] = []
        for (key, value) in object.members {
            guard let bounds = SearchLimits.bounds(of: key) else {
                problems.append("'\(key.prefix(64))' is not a search limit (known: \(SearchLimits.names.joined(separator: ", ")))")
                continue
            }
            switch value {
            case .null: changes[key] = .some(nil)
            case .int(let number) where bounds.contains(Int(clamping: number)): changes[key] = Int(number)
            default: problems.append("\(key) must be an integer from \(bounds.lowerBound) to \(bounds.upperBound), or null to clear it")
            }
        }
        guard problems.isEmpty else { throw APIError.badRequest("invalid_limits", problems.joined(separator: "; ")) }
        try await deps.tenants.setSearchLimitOverrides(tenant, changes)
        return try await limitsResponse(tenant)
    }
}

/// A search request after authentication and validation: everything the store needs, with
/// the tenant's limits applied.
struct SearchParameters {
    var tenant: TenantName
    var queryText: String
    var query: Query
    var from: EpochMillis
    var to: EpochMillis
    var limit: Int
    var cursor: SearchCursor?
    var limits: SearchLimits
    var highlight: Bool

    init(_ object: JSONObject, principal: Principal, deps: ServerDependencies, forExport: Bool, requireRange: Bool = true) async throws {
        tenant = try Self.resolveTenant(principal, requested: object["tenant"])
        limits = deps.searchLimits.applying(try await deps.tenants.searchLimitOverrides(tenant))
        switch object["query"] {
        case nil: queryText = "*"
        case .string(let text)?: queryText = text
        default: throw APIError.badRequest("invalid_query", "query must be a string")
        }
        do {
            query = try QueryChecker.parse(queryText, limits: limits)
        } catch let error as QuerySyntaxError {
            throw APIError.badRequest("query_syntax", error.description)
        } catch let error as SearchLimitError {
            throw APIError(.badRequest, code: "limit_exceeded", message: error.message, limit: error.limit)
        }
        let now = deps.clock.now()
        guard let fromValue = object["from"] else {
            throw APIError.badRequest("time_range_required", "from is required: searches are always time-bounded (RFC 3339, epoch ms, 'now' or relative like '-15m')")
        }
        from = try Self.time(fromValue, name: "from", now: now)
        to = try object["to"].map { try Self.time($0, name: "to", now: now) } ?? now
        guard to > from else { throw APIError.badRequest("invalid_time_range", "to must be after from") }
        if requireRange, to - from > limits.maxRangeMillis {
            throw APIError(.badRequest, code: "limit_exceeded", message: "the time range may span at most \(limits.maxRangeDays) days", limit: "max_range_days")
        }
        let maxRows = forExport ? limits.maxExportRows : limits.maxLimit
        limit = forExport ? limits.maxExportRows : min(limits.defaultLimit, limits.maxLimit)
        if let value = object["limit"] {
            let requested: Int64
            switch value {
            case .int(let number): requested = number
            case .string(let text) where Int64(text) != nil: requested = Int64(text)!
            default: throw APIError.badRequest("invalid_limit", "limit must be a non-negative integer")
            }
            guard requested >= 0 else { throw APIError.badRequest("invalid_limit", "limit must be a non-negative integer") }
            guard requested <= maxRows else {
                throw APIError(.badRequest, code: "limit_exceeded", message: "limit may be at most \(maxRows)", limit: forExport ? "max_export_rows" : "max_limit")
            }
            limit = Int(requested)
        }
        highlight = object["highlight"] != .bool(false)
        cursor = nil
        switch object["cursor"] {
        case nil, .null?: break
        case .string(let text)?:
            guard let cursor = SearchCursorCoding.decode(text, fingerprint: fingerprint) else {
                throw APIError.badRequest("invalid_cursor", "the cursor is not one this search returned (it belongs to another query, time range or tenant, or was altered)")
            }
            self.cursor = cursor
        default:
            throw APIError.badRequest("invalid_cursor", "cursor must be the next_cursor string of a previous answer")
        }
    }

    /// Binds a cursor to the tenant, query and time range it was issued for.
    var fingerprint: UInt64 {
        SearchCursorCoding.fnv1a([tenant.rawValue, queryText, String(from), String(to)].joined(separator: "\u{0}"))
    }

    func encode(_ cursor: SearchCursor) -> String { SearchCursorCoding.encode(cursor, fingerprint: fingerprint) }

    func request(cursor: SearchCursor?, pageSize: Int? = nil) -> SearchRequest {
        SearchRequest(tenant: tenant, query: query, from: from, to: to, limit: pageSize ?? limit, cursor: cursor, limits: limits,
                      budget: QueryBudget(timeoutMillis: limits.timeoutMillis), highlight: highlight)
    }

    /// The event as the API shows it: its document, projected by `| fields`, with highlights.
    func render(_ hit: SearchHit) -> JSONObject {
        var document = hit.event.document
        for stage in query.stages {
            guard case .fields(let fields) = stage else { continue }
            var projected = JSONObject()
            projected["@timestamp"] = document["@timestamp"]
            let full = JSONValue.object(document)
            for field in fields where field != "@timestamp" {
                if let value = full.value(atPath: field) { FieldNesting.set(value, at: field, in: &projected) }
            }
            document = projected
        }
        if !hit.highlights.isEmpty {
            var highlights = JSONObject()
            for (field, highlight) in hit.highlights.sorted(by: { $0.key < $1.key }) {
                highlights[field] = .object(JSONObject([
                    ("offsets", .array(highlight.spans.map { .array([.int(Int64($0.lowerBound)), .int(Int64($0.upperBound))]) })),
                    ("snippet", .string(highlight.snippet)),
                ]))
            }
            document["_highlight"] = .object(highlights)
        }
        return document
    }

    static func resolveTenant(_ principal: Principal, requested: JSONValue?) throws -> TenantName {
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
                throw APIError.badRequest("invalid_tenant", "not a valid tenant name (one tenant per search)")
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
            if let millis = Int64(text) { return millis }
        case .int(let millis):
            return millis
        default:
            break
        }
        throw APIError.badRequest("invalid_time", "\(name) must be RFC 3339, epoch milliseconds, 'now' or relative like '-15m'")
    }
}

/// Cursors are opaque to clients: `<timestamp>.<position>.<fingerprint>` in base64url.
/// The fingerprint ties a cursor to its search; a cursor can only ever position a search
/// inside the caller's own tenant, so tampering gains nothing and is refused when noticed.
enum SearchCursorCoding {
    static func encode(_ cursor: SearchCursor, fingerprint: UInt64) -> String {
        let text = "\(cursor.timestamp).\(cursor.position).\(String(fingerprint, radix: 16))"
        return Data(text.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func decode(_ text: String, fingerprint: UInt64) -> SearchCursor? {
        guard text.utf8.count <= 128 else { return nil }
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.utf8.count % 4 != 0 { base64 += "=" }
        guard let data = Data(base64Encoded: base64), let plain = String(data: data, encoding: .utf8) else { return nil }
        let parts = plain.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let timestamp = Int64(parts[0]), let position = Int64(parts[1]), position > 0,
              UInt64(parts[2], radix: 16) == fingerprint else { return nil }
        return SearchCursor(timestamp: timestamp, position: position)
    }

    static func fnv1a(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x100_0000_01b3
        }
        return hash
    }
}

/// Counts searches, exports and tails in flight per tenant. A lease gives its slot back when
/// it is released, which happens when the last reference to it goes away, so a stream that
/// ends in any way (finished, failed, client gone) cannot leak a slot.
final class QuerySlots: Sendable {
    private let running = Mutex<[TenantName: Int]>([:])

    final class Lease: Sendable {
        let slots: QuerySlots
        let tenant: TenantName

        init(slots: QuerySlots, tenant: TenantName) {
            self.slots = slots
            self.tenant = tenant
        }

        deinit { slots.release(tenant) }
    }

    /// Takes a slot, or answers 429 naming the limit.
    func acquire(_ tenant: TenantName, max: Int) throws -> Lease {
        let granted = running.withLock { running -> Bool in
            let count = running[tenant, default: 0]
            guard count < max else { return false }
            running[tenant] = count + 1
            return true
        }
        guard granted else {
            throw APIError(.tooManyRequests, code: "too_many_queries",
                           message: "this tenant already runs \(max) searches, exports or tails at once; retry when one finishes",
                           headers: [.retryAfter: "1"], limit: "max_concurrent")
        }
        return Lease(slots: self, tenant: tenant)
    }

    func release(_ tenant: TenantName) {
        running.withLock { running in
            let count = running[tenant, default: 1] - 1
            running[tenant] = count > 0 ? count : nil
        }
    }

    func inFlight(_ tenant: TenantName) -> Int { running.withLock { $0[tenant, default: 0] } }
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
