import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Metrics
import NIOCore
import Prometheus
import VigilCore

/// An error answered to a client as `{"error":{"code":"...","message":"..."}}`.
///
/// The code is a fixed snake_case word (fit for a metric label); the message explains it to a
/// person and never echoes request bodies or keys.
public struct APIError: HTTPResponseError, Sendable {
    public var status: HTTPResponse.Status
    public var code: String
    public var message: String
    public var headers: HTTPFields
    /// The search limit a refusal names (`max_terms`, `timeout_ms`, ...).
    public var limit: String?

    public init(_ status: HTTPResponse.Status, code: String, message: String, headers: HTTPFields = [:], limit: String? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
        self.limit = limit
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var error = JSONObject()
        error["code"] = .string(code)
        error["message"] = .string(message)
        if let limit { error["limit"] = .string(limit) }
        var body = JSONObject()
        body["error"] = .object(error)
        return JSONResponse.make(.object(body), status: status, headers: headers)
    }

    static func unauthorized(_ message: String = "an API key is required: Authorization: Bearer <key>") -> APIError {
        APIError(.unauthorized, code: "unauthorized", message: message, headers: [.wwwAuthenticate: "Bearer"])
    }

    static func forbidden(_ message: String) -> APIError {
        APIError(.forbidden, code: "forbidden", message: message)
    }

    static func badRequest(_ code: String, _ message: String) -> APIError {
        APIError(.badRequest, code: code, message: message)
    }
}

/// Builds JSON responses from `JSONValue`s.
enum JSONResponse {
    static func make(_ value: JSONValue, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        var bytes = JSONWriter.bytes(value)
        bytes.append(0x0A)
        var fields = headers
        fields[.contentType] = "application/json"
        return Response(status: status, headers: fields, body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    static func object(_ members: [(String, JSONValue)], status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        make(.object(JSONObject(members.map { (key: $0.0, value: $0.1) })), status: status, headers: headers)
    }
}
