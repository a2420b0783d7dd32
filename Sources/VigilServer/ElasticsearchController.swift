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

/// Enough of the Elasticsearch API for Beats, Elastic Agent, Vector and Fluent Bit to connect
/// and ship: `GET /`, the setup calls they make (licence, templates, ILM, pipelines), and
/// `_bulk` with per-item results.
struct ElasticsearchController {
    let deps: ServerDependencies
    static let productHeader: HTTPFields = [HTTPField.Name("X-Elastic-Product")!: "Elasticsearch"]
    static let version = "8.17.0"

    func register(on router: Router<BasicRequestContext>) {
        router.get("/") { _, _ in Self.info() }
        router.head("/") { _, _ in Response(status: .ok, headers: Self.productHeader) }
        router.get("/_license") { _, _ in
            Self.json([("license", .object(JSONObject([("status", .string("active")), ("uid", .string("vigil")), ("type", .string("basic")),
                                                       ("mode", .string("basic"))])))])
        }
        router.get("/_xpack") { _, _ in
            Self.json([("build", .object(JSONObject())), ("features", .object(JSONObject())),
                       ("license", .object(JSONObject([("status", .string("active")), ("type", .string("basic")), ("mode", .string("basic"))])))])
        }
        router.get("/_cluster/health") { _, _ in
            Self.json([("cluster_name", .string("vigil")), ("status", .string("green")), ("timed_out", .bool(false)),
                       ("number_of_nodes", .int(1)), ("number_of_data_nodes", .int(1))])
        }
        router.get("/_nodes/**") { _, _ in Self.json([("nodes", .object(JSONObject()))]) }
        router.get("/_nodes") { _, _ in Self.json([("nodes", .object(JSONObject()))]) }
        // Setup calls: templates, ILM policies, ingest pipelines, data streams. Vigil owns its
        // schema, so these are acknowledged and otherwise ignored.
        for prefix in ["_index_template", "_template", "_component_template", "_ilm/policy", "_ingest/pipeline", "_data_stream"] {
            router.head(RouterPath(stringLiteral: "/\(prefix)/:name")) { _, _ in Response(status: .ok, headers: Self.productHeader) }
            router.get(RouterPath(stringLiteral: "/\(prefix)/:name")) { _, context in
                let name = context.parameters.get("name") ?? ""
                return Self.json([(name, .object(JSONObject()))])
            }
            router.put(RouterPath(stringLiteral: "/\(prefix)/:name")) { request, _ in try await acknowledge(request) }
            router.post(RouterPath(stringLiteral: "/\(prefix)/:name")) { request, _ in try await acknowledge(request) }
        }
        router.post("/_bulk") { request, _ in await bulk(request, defaultIndex: nil) }
        router.put("/_bulk") { request, _ in await bulk(request, defaultIndex: nil) }
        router.post("/:index/_bulk") { request, context in await bulk(request, defaultIndex: context.parameters.get("index")) }
        router.put("/:index/_bulk") { request, context in await bulk(request, defaultIndex: context.parameters.get("index")) }
    }

    static func json(_ members: [(String, JSONValue)], status: HTTPResponse.Status = .ok) -> Response {
        JSONResponse.object(members, status: status, headers: productHeader)
    }

    static func info() -> Response {
        let version = JSONObject([
            ("number", .string(Self.version)), ("build_flavor", .string("default")), ("build_type", .string("vigil")),
            ("build_hash", .string("vigil")), ("build_snapshot", .bool(false)), ("lucene_version", .string("9.12.0")),
            ("minimum_wire_compatibility_version", .string("7.17.0")), ("minimum_index_compatibility_version", .string("7.0.0")),
        ])
        return json([("name", .string("vigil")), ("cluster_name", .string("vigil")), ("cluster_uuid", .string("vigil-embedded")),
                     ("version", .object(version)), ("tagline", .string("You Know, for Search"))])
    }

    func acknowledge(_ request: Request) async throws -> Response {
        _ = try await deps.principal(request)
        return Self.json([("acknowledged", .bool(true))])
    }

    static func error(type: String, reason: String, status: HTTPResponse.Status, headers: HTTPFields = [:]) -> Response {
        let cause = JSONObject([("type", .string(type)), ("reason", .string(reason))])
        var fields = productHeader
        for field in headers { fields.append(field) }
        var body = cause
        body["root_cause"] = .array([.object(cause)])
        return JSONResponse.object([("error", .object(body)), ("status", .int(Int64(status.code)))], status: status, headers: fields)
    }

    func bulk(_ request: Request, defaultIndex: String?) async -> Response {
        let started = deps.clock.now()
        do {
            let principal = try await deps.principal(request)
            let target = try await IngestTarget.resolve(principal, request: request, deps: deps)
            let body = try await deps.body(request)
            let operations = try BulkDecoder.decode(body, defaultIndex: defaultIndex, limits: deps.limits)
            var items: [DecodedItem] = []
            var itemIndex: [Int?] = []
            for operation in operations {
                if case .item(let item) = operation.outcome {
                    itemIndex.append(items.count)
                    items.append(target.unknownTenant ? IngestTarget.unknownTenantItem(item) : item)
                } else {
                    itemIndex.append(nil)
                }
            }
            let outcome = try await IngestTarget.submit(items, to: target.tenant, source: "bulk", deps: deps)
            var results: [JSONValue] = []
            var errors = false
            for (position, operation) in operations.enumerated() {
                var item = JSONObject([("_index", .string(operation.index))])
                if let id = operation.id { item["_id"] = .string(id) }
                let status: Int
                switch operation.outcome {
                case .refused(let code, let type, let reason):
                    status = code
                    item["error"] = .object(JSONObject([("type", .string(type)), ("reason", .string(reason))]))
                case .item:
                    switch outcome.statuses[itemIndex[position]!] {
                    case .accepted:
                        status = 201
                        item["result"] = .string("created")
                        item["_version"] = .int(1)
                    case .duplicate where operation.action == "create":
                        // Beats and Vector treat 409 on create as "already indexed".
                        status = 409
                        item["error"] = .object(JSONObject([("type", .string("version_conflict_engine_exception")),
                                                            ("reason", .string("[\(operation.id ?? "")]: version conflict, document already exists"))]))
                    case .duplicate:
                        status = 200
                        item["result"] = .string("noop")
                        item["_version"] = .int(1)
                    case .quarantined(let reason, let detail):
                        status = 400
                        item["error"] = .object(JSONObject([("type", .string("document_parsing_exception")),
                                                            ("reason", .string("quarantined as \(reason.rawValue): \(detail)"))]))
                    }
                }
                if status >= 300 { errors = true }
                item["status"] = .int(Int64(status))
                results.append(.object(JSONObject([(operation.action, .object(item))])))
            }
            return Self.json([("took", .int(max(0, deps.clock.now() - started))), ("errors", .bool(errors)), ("items", .array(results))])
        } catch let error as BulkRequestError {
            return Self.error(type: "illegal_argument_exception", reason: error.reason, status: .badRequest)
        } catch let refusal as IngestRefusal {
            // 429 is what every Elasticsearch client retries with backoff.
            return Self.error(type: "es_rejected_execution_exception", reason: refusal.message, status: .tooManyRequests, headers: [.retryAfter: "5"])
        } catch let error as APIError {
            let type = error.status == .unauthorized ? "security_exception" : "illegal_argument_exception"
            return Self.error(type: type, reason: error.message, status: error.status, headers: error.headers)
        } catch {
            deps.logger.error("Bulk request failed", metadata: ["error": "\(error)"])
            return Self.error(type: "es_rejected_execution_exception", reason: "the request could not be processed; retry later", status: .tooManyRequests)
        }
    }
}
