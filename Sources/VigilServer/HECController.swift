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

/// Splunk HTTP Event Collector: `/services/collector/event`, `/services/collector` (alias),
/// `/services/collector/raw` and `/services/collector/health`, with HEC's own bodies and codes.
struct HECController {
    let deps: ServerDependencies

    func register(on router: Router<BasicRequestContext>) {
        for path in ["/services/collector/event", "/services/collector", "/services/collector/event/1.0"] {
            router.post(RouterPath(stringLiteral: path)) { request, _ in await handle(request, raw: false) }
        }
        for path in ["/services/collector/raw", "/services/collector/raw/1.0"] {
            router.post(RouterPath(stringLiteral: path)) { request, _ in await handle(request, raw: true) }
        }
        for path in ["/services/collector/health", "/services/collector/health/1.0"] {
            router.get(RouterPath(stringLiteral: path)) { _, _ in Self.reply(.healthy, status: .ok) }
        }
    }

    static func reply(_ status: HECStatus, status http: HTTPResponse.Status, invalidEvent: Int? = nil, headers: HTTPFields = [:]) -> Response {
        var members: [(String, JSONValue)] = [("text", .string(status.text)), ("code", .int(Int64(status.rawValue)))]
        if let invalidEvent { members.append(("invalid-event-number", .int(Int64(invalidEvent)))) }
        return JSONResponse.object(members, status: http, headers: headers)
    }

    func handle(_ request: Request, raw: Bool) async -> Response {
        let principal: Principal
        switch Authenticator.credential(request) {
        case .missing: return Self.reply(.tokenRequired, status: .unauthorized)
        case .malformed: return Self.reply(.invalidAuthorization, status: .unauthorized)
        case .key(let key):
            guard let found = try? await deps.tenants.principal(forKey: key) else { return Self.reply(.invalidToken, status: .forbidden) }
            principal = found
        }
        do {
            let target = try await IngestTarget.resolve(principal, request: request, deps: deps)
            let body = try await deps.body(request)
            guard !body.isEmpty else { return Self.reply(.noData, status: .badRequest) }
            var items: [DecodedItem]
            if raw {
                let query = request.uri.queryParameters
                items = try HECDecoder.decodeRaw(body, host: query["host"].map(String.init), source: query["source"].map(String.init),
                                                 sourcetype: query["sourcetype"].map(String.init), limits: deps.limits)
            } else {
                items = try HECDecoder.decodeEvents(body, limits: deps.limits)
            }
            if target.unknownTenant { items = items.map(IngestTarget.unknownTenantItem) }
            _ = try await IngestTarget.submit(items, to: target.tenant, source: raw ? "hec_raw" : "hec", deps: deps)
            return Self.reply(.success, status: .ok)
        } catch let error as HECRequestError {
            return Self.reply(error.status, status: .badRequest, invalidEvent: error.invalidEventNumber)
        } catch is IngestRefusal {
            return Self.reply(.serverBusy, status: .serviceUnavailable, headers: [.retryAfter: "5"])
        } catch let error as APIError {
            // Body limits and encodings: HEC has no code of its own, keep its shape.
            var members: [(String, JSONValue)] = [("text", .string(error.message)), ("code", .int(Int64(HECStatus.invalidDataFormat.rawValue)))]
            members.append(("vigil-code", .string(error.code)))
            return JSONResponse.object(members, status: error.status)
        } catch {
            deps.logger.error("HEC request failed", metadata: ["error": "\(error)"])
            return Self.reply(.serverBusy, status: .serviceUnavailable, headers: [.retryAfter: "5"])
        }
    }
}
