import Foundation
import VigilCore

/// A host and port, written `127.0.0.1:8080` or `[::1]:8080`. Port 0 picks a free port.
struct SocketAddress: Equatable, CustomStringConvertible {
    var host: String
    var port: Int

    init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    init?(_ text: String) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed.hasPrefix("["), let close = trimmed.firstIndex(of: "]") {
            let host = String(trimmed[trimmed.index(after: trimmed.startIndex)..<close])
            let rest = trimmed[trimmed.index(after: close)...]
            guard rest.hasPrefix(":"), let port = Int(rest.dropFirst()), (0...65535).contains(port) else { return nil }
            self.init(host: host, port: port)
            return
        }
        guard let colon = trimmed.lastIndex(of: ":"), let port = Int(trimmed[trimmed.index(after: colon)...]), (0...65535).contains(port) else { return nil }
        let host = String(trimmed[..<colon])
        guard !host.isEmpty else { return nil }
        self.init(host: host, port: port)
    }

    var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// Vigil's settings: flag `--name`, env `VIGIL_NAME`, file key `name` (snake_case, units in the
/// key); flags win over the environment, which wins over the file.
struct Settings {
    var dataDir = "./data"
    var httpAddress = SocketAddress(host: "127.0.0.1", port: 8080)
    var syslogTCPAddress: SocketAddress? = SocketAddress(host: "127.0.0.1", port: 5514)
    var syslogUDPAddress: SocketAddress? = SocketAddress(host: "127.0.0.1", port: 5514)
    var syslogTLSAddress: SocketAddress?
    var syslogTLSCert: String?
    var syslogTLSKey: String?
    var syslogTenant = "default"
    var syslogSenderTenants = ""
    var syslogMaxFrameBytes = 64 * 1024
    var syslogMaxConnections = 1_000
    var syslogIdleTimeoutSecs: Int64 = 300
    var detectionLagSecs: Int64 = 120
    var detectionMaxWindowSecs: Int64 = 3600
    var detectionIntervalSecs: Int64 = 10
    var sigmaMapping: String?
    var intelFeeds: [String] = []
    var intelReloadSecs: Int64 = 30
    var webhookURL: String?
    var webhookSecret: String?
    var maxBodyBytes = 16 << 20
    var maxLineBytes = 1 << 20
    var spoolMaxBytes: Int64 = 1 << 30
    var maxEventAgeSecs: Int64 = 30 * 86_400
    var maxEventFutureSecs: Int64 = 86_400
    var logLevel = "info"

    /// Every problem found, not just the first.
    struct Problems: Error, CustomStringConvertible {
        var messages: [String]
        var description: String { messages.joined(separator: "\n") }
    }

    /// Resolves settings from a file (JSON object), the environment and flags.
    static func resolve(file: String?, environment: [String: String], flags: [String: String]) throws -> Settings {
        var settings = Settings()
        var problems: [String] = []
        var layers: [(source: String, values: [String: String])] = []
        if let file {
            do {
                let data = try Data(contentsOf: URL(fileURLWithPath: file))
                guard case .object(let object) = try JSONParser.parse(Array(data)) else {
                    throw Problems(messages: ["\(file): the settings file must hold a JSON object"])
                }
                var values: [String: String] = [:]
                for (key, value) in object.members {
                    guard let text = value.scalarText else {
                        problems.append("\(file): \(key) must be a string or a number")
                        continue
                    }
                    values[key] = text
                }
                layers.append((file, values))
            } catch let error as Problems {
                problems.append(contentsOf: error.messages)
            } catch {
                problems.append("\(file): cannot read settings: \(error)")
            }
        }
        var fromEnvironment: [String: String] = [:]
        for key in keys {
            if let value = environment["VIGIL_" + key.uppercased()] { fromEnvironment[key] = value }
        }
        layers.append(("environment", fromEnvironment))
        layers.append(("flags", flags))
        for (source, values) in layers {
            for (key, value) in values.sorted(by: { $0.key < $1.key }) {
                if let problem = settings.apply(key: key, value: value) { problems.append("\(source): \(problem)") }
            }
        }
        if settings.webhookURL != nil, (settings.webhookSecret ?? "").isEmpty {
            problems.append("webhook_url needs webhook_secret (alerts are signed with HMAC-SHA256)")
        }
        if settings.syslogTLSAddress != nil, settings.syslogTLSCert == nil || settings.syslogTLSKey == nil {
            problems.append("syslog_tls_address needs syslog_tls_cert and syslog_tls_key (PEM files)")
        }
        guard problems.isEmpty else { throw Problems(messages: problems) }
        return settings
    }

    static let keys = [
        "data_dir", "http_address", "syslog_tcp_address", "syslog_udp_address", "max_body_bytes", "max_line_bytes",
        "spool_max_bytes", "max_event_age_secs", "max_event_future_secs", "log_level",
        "syslog_tls_address", "syslog_tls_cert", "syslog_tls_key", "syslog_tenant", "syslog_sender_tenants",
        "syslog_max_frame_bytes", "syslog_max_connections", "syslog_idle_timeout_secs",
        "detection_lag_secs", "detection_max_window_secs", "detection_interval_secs", "webhook_url", "webhook_secret", "intel_feeds", "intel_reload_secs", "sigma_mapping",
    ]

    /// Applies one setting; returns a problem description when the value is not valid.
    mutating func apply(key: String, value: String) -> String? {
        func address(_ set: (SocketAddress) -> Void) -> String? {
            guard let parsed = SocketAddress(value) else { return "\(key) must be host:port, got '\(value)'" }
            set(parsed)
            return nil
        }
        func positive<T: FixedWidthInteger>(_ set: (T) -> Void) -> String? {
            guard let parsed = T(value), parsed > 0 else { return "\(key) must be a positive integer, got '\(value)'" }
            set(parsed)
            return nil
        }
        switch key {
        case "data_dir":
            guard !value.isEmpty else { return "data_dir must not be empty" }
            dataDir = value
            return nil
        case "http_address": return address { httpAddress = $0 }
        case "syslog_tcp_address":
            if value == "off" { syslogTCPAddress = nil; return nil }
            return address { syslogTCPAddress = $0 }
        case "syslog_udp_address":
            if value == "off" { syslogUDPAddress = nil; return nil }
            return address { syslogUDPAddress = $0 }
        case "syslog_tls_address":
            if value == "off" { syslogTLSAddress = nil; return nil }
            return address { syslogTLSAddress = $0 }
        case "syslog_tls_cert":
            syslogTLSCert = value
            return nil
        case "syslog_tls_key":
            syslogTLSKey = value
            return nil
        case "syslog_tenant":
            guard TenantName(value) != nil else { return "syslog_tenant must be a tenant name, got '\(value)'" }
            syslogTenant = value
            return nil
        case "syslog_sender_tenants":
            syslogSenderTenants = value
            return nil
        case "syslog_max_frame_bytes": return positive { (v: Int) in syslogMaxFrameBytes = v }
        case "syslog_max_connections": return positive { (v: Int) in syslogMaxConnections = v }
        case "syslog_idle_timeout_secs": return positive { (v: Int64) in syslogIdleTimeoutSecs = v }
        case "detection_lag_secs":
            guard let v = Int64(value), v >= 0 else { return "detection_lag_secs must be a non-negative integer, got '\(value)'" }
            detectionLagSecs = v
            return nil
        case "detection_max_window_secs": return positive { (v: Int64) in detectionMaxWindowSecs = v }
        case "detection_interval_secs": return positive { (v: Int64) in detectionIntervalSecs = v }
        case "webhook_url":
            guard let url = URL(string: value), ["http", "https"].contains(url.scheme ?? ""), url.host != nil else { return "webhook_url must be an http(s) URL" }
            webhookURL = value
            return nil
        case "intel_feeds":
            intelFeeds = value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            return nil
        case "intel_reload_secs": return positive { (v: Int64) in intelReloadSecs = v }
        case "sigma_mapping":
            sigmaMapping = value
            return nil
        case "webhook_secret":
            webhookSecret = value
            return nil
        case "max_body_bytes": return positive { (v: Int) in maxBodyBytes = v }
        case "max_line_bytes": return positive { (v: Int) in maxLineBytes = v }
        case "spool_max_bytes": return positive { (v: Int64) in spoolMaxBytes = v }
        case "max_event_age_secs": return positive { (v: Int64) in maxEventAgeSecs = v }
        case "max_event_future_secs": return positive { (v: Int64) in maxEventFutureSecs = v }
        case "log_level":
            guard ["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(value) else {
                return "log_level must be one of trace, debug, info, notice, warning, error, critical"
            }
            logLevel = value
            return nil
        default:
            return "unknown setting '\(key)'"
        }
    }
}
