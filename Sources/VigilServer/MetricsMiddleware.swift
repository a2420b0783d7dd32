import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Metrics
import NIOCore
import Prometheus

/// Counts requests by route pattern (never the raw path) and status.
struct MetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            let response = try await next(request, context)
            record(context, status: response.status.code)
            return response
        } catch let error as any HTTPResponseError {
            record(context, status: error.status.code)
            throw error
        } catch {
            record(context, status: 500)
            throw error
        }
    }

    func record(_ context: Context, status: Int) {
        let route = context.endpointPath ?? "unmatched"
        Counter(label: "vigil_http_requests_total", dimensions: [("route", route), ("status", String(status))]).increment()
    }
}

/// Turns errors that are not already client errors into a JSON 500/503 without internals.
struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as any HTTPResponseError {
            if let apiError = error as? APIError { throw apiError }
            // Hummingbird's own errors (404, 405, too large): re-shape them as JSON.
            throw APIError(error.status, code: Self.code(error.status), message: error.status.reasonPhrase)
        } catch {
            logger.error("Request failed", metadata: ["error": "\(error)", "route": "\(context.endpointPath ?? "unmatched")"])
            throw APIError(.internalServerError, code: "internal", message: "the server could not complete the request")
        }
    }

    static func code(_ status: HTTPResponse.Status) -> String {
        switch status.code {
        case 404: return "not_found"
        case 405: return "method_not_allowed"
        case 413: return "body_too_large"
        default: return "http_\(status.code)"
        }
    }
}
