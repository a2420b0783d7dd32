import ArgumentParser
import Foundation
import Hummingbird
import Logging
import Metrics
import Prometheus
import ServiceLifecycle
import UnixSignals
import VigilCore
import VigilIntake
import VigilServer
import VigilStorage
import VigilStorageSQLite
import VigilSyslog
import VigilAlerts
import VigilThreatIntel
import VigilSigma
import VigilQuery
import NIOSSL

/// `vigil serve`: the whole single-node deployment.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the Vigil server (embedded SQLite store, on-disk intake spool).")

    @Option(help: "A JSON settings file (keys like data_dir, http_address).") var config: String?
    @Option(help: "Where data lives. Env VIGIL_DATA_DIR. Default ./data") var dataDir: String?
    @Option(help: "HTTP listen address host:port (port 0 = any free port). Env VIGIL_HTTP_ADDRESS. Default 127.0.0.1:8080") var httpAddress: String?
    @Option(help: "Syslog TCP listen address. Env VIGIL_SYSLOG_TCP_ADDRESS. Default 127.0.0.1:5514") var syslogTcpAddress: String?
    @Option(help: "Syslog UDP listen address. Env VIGIL_SYSLOG_UDP_ADDRESS. Default 127.0.0.1:5514") var syslogUdpAddress: String?
    @Option(help: "Syslog TLS listen address (off by default). Env VIGIL_SYSLOG_TLS_ADDRESS") var syslogTlsAddress: String?
    @Option(help: "PEM certificate chain for syslog TLS. Env VIGIL_SYSLOG_TLS_CERT") var syslogTlsCert: String?
    @Option(help: "PEM private key for syslog TLS. Env VIGIL_SYSLOG_TLS_KEY") var syslogTlsKey: String?
    @Option(help: "Tenant of syslog senders not in the sender map. Env VIGIL_SYSLOG_TENANT. Default default") var syslogTenant: String?
    @Option(help: "Sender address or CIDR to tenant, e.g. 10.0.0.0/8=acme,192.0.2.7=beta. Env VIGIL_SYSLOG_SENDER_TENANTS") var syslogSenderTenants: String?
    @Option(help: "Largest syslog frame, bytes. Env VIGIL_SYSLOG_MAX_FRAME_BYTES. Default 65536") var syslogMaxFrameBytes: String?
    @Option(help: "Open syslog TCP/TLS connections. Env VIGIL_SYSLOG_MAX_CONNECTIONS. Default 1000") var syslogMaxConnections: String?
    @Option(help: "Close silent syslog connections after, seconds. Env VIGIL_SYSLOG_IDLE_TIMEOUT_SECS. Default 300") var syslogIdleTimeoutSecs: String?
    @Option(help: "Detection safety lag behind now, seconds. Env VIGIL_DETECTION_LAG_SECS. Default 120") var detectionLagSecs: String?
    @Option(help: "Largest detection window, seconds. Env VIGIL_DETECTION_MAX_WINDOW_SECS. Default 3600") var detectionMaxWindowSecs: String?
    @Option(help: "How often rules are evaluated, seconds. Env VIGIL_DETECTION_INTERVAL_SECS. Default 10") var detectionIntervalSecs: String?
    @Option(help: "Webhook that receives every new alert. Env VIGIL_WEBHOOK_URL") var webhookUrl: String?
    @Option(help: "Secret for the alert webhook's HMAC-SHA256 signature. Env VIGIL_WEBHOOK_SECRET") var webhookSecret: String?
    @Option(help: "Threat-intel feed files (CSV, STIX 2.1 bundle, MISP JSON), comma-separated. Env VIGIL_INTEL_FEEDS") var intelFeeds: String?
    @Option(help: "How often feeds are checked for changes, seconds. Env VIGIL_INTEL_RELOAD_SECS. Default 30") var intelReloadSecs: String?
    @Option(help: "A JSON Sigma mapping (fields, logsources, placeholders) laid over the shipped one. Env VIGIL_SIGMA_MAPPING") var sigmaMapping: String?
    @Option(help: "Largest request body after decompression, bytes. Env VIGIL_MAX_BODY_BYTES") var maxBodyBytes: String?
    @Option(help: "Largest event line, bytes. Env VIGIL_MAX_LINE_BYTES") var maxLineBytes: String?
    @Option(help: "Spool size that makes ingest answer 503, bytes. Env VIGIL_SPOOL_MAX_BYTES") var spoolMaxBytes: String?
    @Option(help: "Oldest accepted @timestamp, seconds back. Env VIGIL_MAX_EVENT_AGE_SECS") var maxEventAgeSecs: String?
    @Option(help: "Newest accepted @timestamp, seconds ahead. Env VIGIL_MAX_EVENT_FUTURE_SECS") var maxEventFutureSecs: String?
    @Option(help: "trace, debug, info, notice, warning, error or critical. Env VIGIL_LOG_LEVEL") var logLevel: String?

    var flags: [String: String] {
        var flags: [String: String] = [:]
        let pairs: [(String, String?)] = [
            ("data_dir", dataDir), ("http_address", httpAddress), ("syslog_tcp_address", syslogTcpAddress),
            ("syslog_udp_address", syslogUdpAddress), ("max_body_bytes", maxBodyBytes), ("max_line_bytes", maxLineBytes),
            ("spool_max_bytes", spoolMaxBytes), ("max_event_age_secs", maxEventAgeSecs),
            ("max_event_future_secs", maxEventFutureSecs), ("log_level", logLevel),
            ("syslog_tls_address", syslogTlsAddress), ("syslog_tls_cert", syslogTlsCert), ("syslog_tls_key", syslogTlsKey),
            ("syslog_tenant", syslogTenant), ("syslog_sender_tenants", syslogSenderTenants),
            ("syslog_max_frame_bytes", syslogMaxFrameBytes), ("syslog_max_connections", syslogMaxConnections),
            ("syslog_idle_timeout_secs", syslogIdleTimeoutSecs),
            ("detection_lag_secs", detectionLagSecs), ("detection_max_window_secs", detectionMaxWindowSecs),
            ("detection_interval_secs", detectionIntervalSecs), ("webhook_url", webhookUrl), ("webhook_secret", webhookSecret),
            ("intel_feeds", intelFeeds), ("intel_reload_secs", intelReloadSecs), ("sigma_mapping", sigmaMapping),
        ]
        for (key, value) in pairs { if let value { flags[key] = value } }
        return flags
    }

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        let settings: Settings
        do {
            settings = try Settings.resolve(file: config ?? environment["VIGIL_CONFIG"], environment: environment, flags: flags)
        } catch let problems as Settings.Problems {
            FileHandle.standardError.write(Data(("invalid settings:\n" + problems.description + "\n").utf8))
            throw ExitCode(2)
        }
        let level = Logger.Level(rawValue: settings.logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger: Logger = {
            var logger = Logger(label: "vigil")
            logger.logLevel = level
            return logger
        }()
        logger.debug("allocator", metadata: ["malloc": "\(Allocator.description ?? "not jemalloc")"])
        let files = OpenFileLimit.raise()
        logger.debug("open files", metadata: ["limit": "\(files.after)", "was": "\(files.before)"])
        if files.after < 4_096 {
            logger.warning("The open-file limit is low: each day partition in use holds a few descriptors", metadata: ["limit": "\(files.after)"])
        }
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))

        let dataURL = URL(fileURLWithPath: settings.dataDir, isDirectory: true).standardizedFileURL
        try FileManager.default.createDirectory(at: dataURL, withIntermediateDirectories: true)
        let clock = SystemClock()
        let store = try SQLiteEventStore(dataDirectory: dataURL, logger: logger)
        let tenants = try SQLiteTenantDirectory(dataDirectory: dataURL)
        if let generated = try tenants.bootstrap(presetAdminKey: environment["VIGIL_ADMIN_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }, now: clock.now()) {
            // Printed once, on first start; only its hash is kept.
            FileHandle.standardOutput.write(Data("Vigil admin API key (shown only once, keep it safe): \(generated)\n".utf8))
        }
        var spoolConfiguration = SpoolConfiguration(directory: dataURL.appendingPathComponent("spool", isDirectory: true))
        spoolConfiguration.maxBytes = settings.spoolMaxBytes
        let spool = try Spool(configuration: spoolConfiguration)
        var limits = IntakeLimits()
        limits.maxBodyBytes = settings.maxBodyBytes
        limits.maxLineBytes = settings.maxLineBytes
        limits.maxPastMillis = settings.maxEventAgeSecs * 1000
        limits.maxFutureMillis = settings.maxEventFutureSecs * 1000
        let policies = RetentionPolicies()
        for tenant in try await tenants.listTenants() { policies.set(tenant, days: try await tenants.retentionDays(tenant)) }
        let feeds = IntelFeeds(paths: settings.intelFeeds)
        if !settings.intelFeeds.isEmpty {
            feeds.reloadIfChanged()
            for report in feeds.reports {
                if let error = report.error {
                    FileHandle.standardError.write(Data("invalid settings:\nintel_feeds: \(error)\n".utf8))
                    throw ExitCode(2)
                }
                logger.info("Threat-intel feed loaded", metadata: ["path": "\(report.path)", "indicators": "\(report.loaded)", "skipped": "\(report.skipped)"])
            }
        }
        // Per-event rules (Sigma, and native rules without a threshold) match at admission and
        // alert as events are stored; the scheduler keeps their watermarks and reads a Sigma
        // rule's windows only before its adoption, a native rule's whole windows.
        let detectionStore = try SQLiteDetectionStore(dataDirectory: dataURL, notifications: settings.webhookURL != nil)
        let inline = InlineDetection(detection: detectionStore, events: store, clock: clock, logger: logger)
        let intake = IntakeService(queue: spool, store: store, clock: clock, limits: limits, retention: policies,
                                   steps: [PackDocumentStep(), IntelStep(feeds: feeds)], matcher: inline, logger: logger)
        let retention = RetentionService(store: store, tenants: tenants, policies: policies, clock: clock, logger: logger)
        try spool.forEachUncommitted { intake.restorePending($0) }
        var deps = ServerDependencies(intake: intake, queue: spool, store: store, tenants: tenants, clock: clock,
                                      limits: limits, metrics: registry, retention: retention, logger: logger)
        let planner = WindowPlanner(lagMillis: settings.detectionLagSecs * 1000, maxWindowMillis: settings.detectionMaxWindowSecs * 1000)
        var mapping = FieldMapping.standard
        if let path = settings.sigmaMapping {
            do {
                guard let data = FileManager.default.contents(atPath: path) else { throw SigmaError("invalid_mapping", "cannot read \(path)") }
                mapping = try FieldMapping.standard.merging(json: try JSONParser.parse(Array(data)))
            } catch {
                FileHandle.standardError.write(Data("invalid settings:\nsigma_mapping: \(error)\n".utf8))
                throw ExitCode(2)
            }
        }
        let siteMapping = mapping
        let compiler = RuleCompiler(others: ["sigma": { try SigmaDetectionRule.compile($0, mapping: siteMapping) }])
        deps.detection = DetectionRuntime(store: detectionStore, compiler: compiler, planner: planner, oldestUnstored: { intake.oldestUnstoredIngest() })
        let pipeline = PipelineService(queue: spool, store: store, intake: intake, observer: inline, logger: logger)
        let scheduler = DetectionScheduler(events: store, detection: detectionStore, compiler: compiler, coordinator: InProcessCoordinator(),
                                           clock: clock, planner: planner, oldestUnstored: { intake.oldestUnstoredIngest() },
                                           pipelineIdle: { intake.isIdle(forMillis: 50) },
                                           intervalMillis: settings.detectionIntervalSecs * 1000, inline: inline, logger: logger)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: pipeline), .init(service: retention), .init(service: scheduler)]
        if !settings.intelFeeds.isEmpty {
            services.append(.init(service: IntelReloader(feeds: feeds, intervalSecs: settings.intelReloadSecs, logger: logger)))
        }
        if let webhook = settings.webhookURL.flatMap(URL.init(string:)) {
            services.append(.init(service: WebhookNotifier(store: detectionStore, url: webhook, secret: settings.webhookSecret ?? "", clock: clock, logger: logger)))
        }
        let syslog = try await bindSyslog(settings, intake: intake, tenants: tenants, clock: clock, logger: logger)
        let runDirectory = dataURL.appendingPathComponent("run", isDirectory: true)
        let http = settings.httpAddress
        let app = buildApplication(deps, host: http.host, port: http.port) { port in
            let bound = SocketAddress(host: http.host, port: port)
            var addresses: [String: String] = ["http": bound.description]
            if let address = syslog.tcpAddress { addresses["syslog_tcp"] = address }
            if let address = syslog.udpAddress { addresses["syslog_udp"] = address }
            if let address = syslog.tlsAddress { addresses["syslog_tls"] = address }
            do {
                try FileManager.default.createDirectory(at: runDirectory, withIntermediateDirectories: true)
                let json = try JSONSerialization.data(withJSONObject: addresses, options: [.sortedKeys])
                let tmp = runDirectory.appendingPathComponent("addresses.json.tmp")
                try json.write(to: tmp)
                guard rename(tmp.path, runDirectory.appendingPathComponent("addresses.json").path) == 0 else {
                    throw CocoaError(.fileWriteUnknown)
                }
            } catch {
                logger.error("Cannot write addresses.json", metadata: ["error": "\(error)"])
            }
            logger.info("Vigil is listening", metadata: ["http": "\(bound)", "syslog": "\(addresses.filter { $0.key.hasPrefix("syslog") }.values.sorted())", "data_dir": "\(dataURL.path)"])
        }
        // Shut down in reverse order: HTTP stops taking requests first, then the pipeline
        // drains what was acknowledged.
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: services + [.init(service: syslog), .init(service: app)],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        ))
        try await group.run()
        logger.info("Vigil stopped cleanly")
    }

    /// Binds the syslog listeners before anything runs, so their addresses are known.
    func bindSyslog(_ settings: Settings, intake: IntakeService, tenants: SQLiteTenantDirectory, clock: any VigilClock, logger: Logger) async throws -> SyslogListeners {
        var problems: [String] = []
        guard let defaultTenant = TenantName(settings.syslogTenant) else { throw ExitCode(2) }
        var senders: [(network: IPNetwork, tenant: TenantName)] = []
        switch SyslogTenantRouting.parseSenderMap(settings.syslogSenderTenants) {
        case .success(let parsed): senders = parsed
        case .failure(let error): problems.append("syslog_sender_tenants: \(error)")
        }
        for tenant in Set([defaultTenant] + senders.map(\.tenant)) where try await !tenants.tenantExists(tenant) {
            problems.append("syslog tenant '\(tenant)' does not exist (create it with vigil tenants create)")
        }
        var tlsContext: NIOSSLContext?
        if settings.syslogTLSAddress != nil, let cert = settings.syslogTLSCert, let key = settings.syslogTLSKey {
            do {
                let chain = try NIOSSLCertificate.fromPEMFile(cert).map { NIOSSLCertificateSource.certificate($0) }
                let privateKey = try NIOSSLPrivateKey(file: key, format: .pem)
                tlsContext = try NIOSSLContext(configuration: .makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(privateKey)))
            } catch {
                problems.append("syslog TLS: cannot load \(cert) / \(key): \(error)")
            }
        }
        guard problems.isEmpty else {
            FileHandle.standardError.write(Data(("invalid settings:\n" + problems.joined(separator: "\n") + "\n").utf8))
            throw ExitCode(2)
        }
        var limits = SyslogLimits()
        limits.maxFrameBytes = settings.syslogMaxFrameBytes
        limits.maxConnections = settings.syslogMaxConnections
        limits.idleTimeout = .seconds(settings.syslogIdleTimeoutSecs)
        let batcher = SyslogBatcher(intake: intake, clock: clock, logger: logger)
        func pair(_ address: SocketAddress?) -> (host: String, port: Int)? { address.map { ($0.host, $0.port) } }
        return try await SyslogListeners.bind(
            tcp: pair(settings.syslogTCPAddress), udp: pair(settings.syslogUDPAddress), tls: pair(settings.syslogTLSAddress),
            tlsContext: tlsContext, batcher: batcher, decoder: NormalizingSyslogDecoder(),
            routing: SyslogTenantRouting(defaultTenant: defaultTenant, senders: senders),
            limits: limits, clock: clock, logger: logger)
    }
}

/// Checks the threat-intel feed files for changes and swaps in a rebuilt set.
struct IntelReloader: Service {
    let feeds: IntelFeeds
    let intervalSecs: Int64
    let logger: Logger

    func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(intervalSecs)) }
            if feeds.reloadIfChanged() {
                logger.info("Threat-intel feeds reloaded", metadata: ["indicators": "\(feeds.current.count)"])
            } else if let failed = feeds.reports.first(where: { $0.error != nil }) {
                logger.warning("Threat-intel feed failed to load; the previous indicators stay", metadata: ["path": "\(failed.path)", "error": "\(failed.error ?? "")"])
            }
        }
    }
}

extension InlineDetection: PipelineObserver {}

/// The process's limit of open files. Each day partition in use holds descriptors (its
/// database, log and shared memory, per connection), and a batch or a search spanning many
/// days holds them all at once: the soft limit is raised to the hard one at start, as
/// databases commonly do (many systems start services at a soft limit of 1,024 and a hard
/// limit hundreds of times that).
enum OpenFileLimit {
    static func raise() -> (before: UInt64, after: UInt64) {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return (0, 0) }
        let before = UInt64(limit.rlim_cur)
        guard limit.rlim_cur < limit.rlim_max else { return (before, before) }
        var raised = limit
        // An unlimited hard limit cannot be the soft one for files (the kernel caps it at
        // `fs.nr_open`, 1,048,576 by default).
        raised.rlim_cur = limit.rlim_max == rlim_t.max ? 1_048_576 : limit.rlim_max
        guard setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 else { return (before, before) }
        return (before, UInt64(raised.rlim_cur))
    }
}
