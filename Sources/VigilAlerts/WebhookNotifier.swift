import Crypto
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Logging
import Metrics
import ServiceLifecycle
import VigilCore
import VigilStorage

/// Delivers each new alert once to a webhook, from the store's outbox: signed with
/// HMAC-SHA256 over the body (`X-Vigil-Signature: sha256=<hex>`), retried with exponential
/// backoff while the receiver is down. It runs beside the pipeline and never blocks ingest.
public final class WebhookNotifier: Service, Sendable {
    let store: any DetectionStore
    let url: URL
    let secret: [UInt8]
    let clock: any VigilClock
    let logger: Logger
    let pollMillis: Int64
    let session: URLSession

    public init(store: any DetectionStore, url: URL, secret: String, clock: any VigilClock, pollMillis: Int64 = 1000, logger: Logger) {
        self.store = store
        self.url = url
        self.secret = Array(secret.utf8)
        self.clock = clock
        self.pollMillis = pollMillis
        self.logger = logger
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = 10
        session = URLSession(configuration: configuration)
    }

    public func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            await deliverDue()
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .milliseconds(self.pollMillis)) }
        }
    }

    /// The signature of a body: what a receiver recomputes with the shared secret.
    public static func signature(body: [UInt8], secret: [UInt8]) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: secret))
        return "sha256=" + mac.map { String(format: "%02x", $0) }.joined()
    }

    /// Backoff after `attempts` failures: 1 s, 2 s, 4 s, ... up to 5 min.
    public static func backoffMillis(attempts: Int) -> Int64 {
        min(300_000, 1000 << Int64(min(attempts, 20)))
    }

    /// Sends what is due now; returns how many were delivered. Tests call this directly.
    @discardableResult
    public func deliverDue() async -> Int {
        let due: [PendingNotification]
        do {
            due = try await store.dueNotifications(now: clock.now(), limit: 100)
        } catch {
            logger.warning("Cannot read the alert outbox", metadata: ["error": "\(error)"])
            return 0
        }
        var delivered = 0
        for item in due {
            let body = JSONWriter.bytes(Self.payload(item.alert))
            var request = URLRequest(url: url)
            request.httpMethod = "POST"
            request.httpBody = Data(body)
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            request.setValue(Self.signature(body: body, secret: secret), forHTTPHeaderField: "X-Vigil-Signature")
            request.setValue(item.alert.key.description, forHTTPHeaderField: "X-Vigil-Alert-Key")
            do {
                let (_, response) = try await session.data(for: request)
                let status = (response as? HTTPURLResponse)?.statusCode ?? 0
                guard (200..<300).contains(status) else { throw WebhookFailure(status: status) }
                try await store.notificationDelivered(id: item.id)
                delivered += 1
                Counter(label: "vigil_webhook_deliveries_total", dimensions: [("outcome", "delivered")]).increment()
            } catch {
                Counter(label: "vigil_webhook_deliveries_total", dimensions: [("outcome", "failed")]).increment()
                try? await store.notificationFailed(id: item.id, retryAt: clock.now() + Self.backoffMillis(attempts: item.attempts))
                // The receiver is down: the rest waits for the next round.
                break
            }
        }
        return delivered
    }

    struct WebhookFailure: Error { var status: Int }

    static func payload(_ alert: AlertRecord) -> JSONValue {
        .object(JSONObject([
            ("id", .int(alert.id ?? 0)),
            ("key", .string(alert.key.description)),
            ("tenant", .string(alert.tenant.rawValue)),
            ("rule_id", .string(alert.ruleID)),
            ("severity", .string(alert.severity)),
            ("event_ids", .array(alert.eventIDs.map(JSONValue.string))),
            ("group", .object(alert.group)),
            ("first_seen", .string(Timestamp.formatRFC3339(alert.firstSeen))),
            ("last_seen", .string(Timestamp.formatRFC3339(alert.lastSeen))),
        ]))
    }
}
