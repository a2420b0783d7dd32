import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Metrics
import NIOCore
import Prometheus
import VigilCore
import VigilStorage

/// Finds the API key in a request, in every form real shippers send it:
/// `Bearer <key>` (native), `Splunk <key>` (HEC), `Basic base64(user:key)` (Beats, Fluent Bit,
/// Vector with a password), `ApiKey base64(id:key)` or `ApiKey <key>` (Elastic API keys).
enum Authenticator {
    enum Credential: Equatable {
        case missing
        case malformed
        case key(String)
    }

    static func credential(_ request: Request) -> Credential {
        guard let header = request.headers[.authorization] else {
            // HEC also allows the token as a query parameter when enabled; Vigil does not,
            // to keep keys out of access logs.
            return .missing
        }
        let parts = header.split(separator: " ", maxSplits: 1).map(String.init)
        guard parts.count == 2 else { return .malformed }
        let scheme = parts[0].lowercased()
        let value = parts[1].trimmingCharacters(in: .whitespaces)
        switch scheme {
        case "bearer", "splunk":
            return value.isEmpty ? .malformed : .key(value)
        case "basic", "apikey":
            if let data = Data(base64Encoded: value), let decoded = String(data: data, encoding: .utf8),
               let colon = decoded.firstIndex(of: ":") {
                let secret = String(decoded[decoded.index(after: colon)...])
                return secret.isEmpty ? .malformed : .key(secret)
            }
            return scheme == "apikey" && !value.isEmpty ? .key(value) : .malformed
        default:
            return .malformed
        }
    }
}
