import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import ServiceLifecycle
import Synchronization
import VigilCore
import VigilIntake
import VigilQuery

/// Which tenant a sender's messages belong to: the listener's tenant, unless a sender map
/// entry (an address or a CIDR) names another. The most specific network wins.
public struct SyslogTenantRouting: Sendable {
    public var defaultTenant: TenantName
    public var senders: [(network: IPNetwork, tenant: TenantName)]

    public init(defaultTenant: TenantName = .defaultTenant, senders: [(network: IPNetwork, tenant: TenantName)] = []) {
        self.defaultTenant = defaultTenant
        self.senders = senders.sorted { $0.network.prefixBits > $1.network.prefixBits }
    }

    /// Parses `10.0.0.0/8=acme,192.0.2.7=beta`.
    public static func parseSenderMap(_ text: String) -> Result<[(network: IPNetwork, tenant: TenantName)], SyslogSettingError> {
        var out: [(network: IPNetwork, tenant: TenantName)] = []
        for entry in text.split(separator: ",") {
            let parts = entry.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2 else { return .failure(SyslogSettingError("'\(entry)' is not address=tenant")) }
            let networkText = parts[0].contains("/") ? parts[0] : (parts[0].contains(":") ? parts[0] + "/128" : parts[0] + "/32")
            guard let network = IPNetwork(networkText) else { return .failure(SyslogSettingError("'\(parts[0])' is not an IP address or CIDR")) }
            guard let tenant = TenantName(parts[1]) else { return .failure(SyslogSettingError("'\(parts[1])' is not a tenant name")) }
            out.append((network, tenant))
        }
        return .success(out)
    }

    public func tenant(for peer: String?) -> TenantName {
        guard let peer, !senders.isEmpty, let address = IPAddress(peer) else { return defaultTenant }
        for sender in senders where sender.network.contains(address) { return sender.tenant }
        return defaultTenant
    }
}

public struct SyslogSettingError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Listener limits.
public struct SyslogLimits: Sendable {
    /// Largest frame; longer frames are skipped and counted (`oversize`).
    public var maxFrameBytes = 64 * 1024
    /// Open TCP/TLS connections; more are closed at once and counted (`connection_limit`).
    public var maxConnections = 1_000
    /// A connection that sends nothing for this long is closed (`idle_timeout`).
    public var idleTimeout: TimeAmount = .seconds(300)

    public init() {}
}

/// The bound syslog sockets; bind first (so the addresses are known before anything runs),
/// then run as a service until graceful shutdown.
public final class SyslogListeners: Service, Sendable {
    typealias Connection = NIOAsyncChannel<ByteBuffer, Never>

    /// A connection and its peer, read at accept time: NIO forgets the address once the
    /// channel closes, which a short-lived sender (`logger`) does at once.
    struct Accepted: Sendable {
        var connection: Connection
        var peer: String?
    }

    let tcp: NIOAsyncChannel<Accepted, Never>?
    let tls: NIOAsyncChannel<Accepted, Never>?
    let udp: NIOAsyncChannel<AddressedEnvelope<ByteBuffer>, AddressedEnvelope<ByteBuffer>>?
    let batcher: SyslogBatcher
    let decoder: any SyslogDecoding
    let routing: SyslogTenantRouting
    let limits: SyslogLimits
    let clock: any VigilClock
    let logger: Logger
    let connections = Atomic<Int>(0)

    public var tcpAddress: String? { tcp?.channel.localAddress.flatMap(Self.describe) }
    public var tlsAddress: String? { tls?.channel.localAddress.flatMap(Self.describe) }
    public var udpAddress: String? { udp?.channel.localAddress.flatMap(Self.describe) }

    /// Binds the listeners that have an address. `tlsContext` is required with `tlsAddress`.
    public static func bind(
        tcp tcpAddress: (host: String, port: Int)?,
        udp udpAddress: (host: String, port: Int)?,
        tls tlsAddress: (host: String, port: Int)?,
        tlsContext: NIOSSLContext?,
        batcher: SyslogBatcher, decoder: any SyslogDecoding, routing: SyslogTenantRouting,
        limits: SyslogLimits, clock: any VigilClock, logger: Logger
    ) async throws -> SyslogListeners {
        let group = MultiThreadedEventLoopGroup.singleton
        let idle = limits.idleTimeout
        func stream(_ address: (host: String, port: Int), tls context: NIOSSLContext?) async throws -> NIOAsyncChannel<Accepted, Never> {
            try await ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 256)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.socketOption(.so_keepalive), value: 1)
                .bind(host: address.host, port: address.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let context {
                            try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
                        }
                        try channel.pipeline.syncOperations.addHandlers([IdleStateHandler(readTimeout: idle), CloseWhenIdle()])
                        return Accepted(connection: try Connection(wrappingChannelSynchronously: channel), peer: channel.remoteAddress?.ipAddress)
                    }
                }
        }
        var tcp: NIOAsyncChannel<Accepted, Never>?
        if let tcpAddress { tcp = try await stream(tcpAddress, tls: nil) }
        let tls: NIOAsyncChannel<Accepted, Never>?
        if let tlsAddress {
            guard let tlsContext else { throw SyslogSettingError("syslog TLS needs a certificate and a key") }
            tls = try await stream(tlsAddress, tls: tlsContext)
        } else {
            tls = nil
        }
        var udp: NIOAsyncChannel<AddressedEnvelope<ByteBuffer>, AddressedEnvelope<ByteBuffer>>?
        if let address = udpAddress {
            udp = try await DatagramBootstrap(group: group)
                .channelOption(.socketOption(.so_reuseaddr), value: 1)
                .channelOption(.socketOption(.so_rcvbuf), value: 8 << 20)
                .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 65_536))
                .bind(host: address.host, port: address.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try NIOAsyncChannel<AddressedEnvelope<ByteBuffer>, AddressedEnvelope<ByteBuffer>>(wrappingChannelSynchronously: channel)
                    }
                }
        }
        return SyslogListeners(tcp: tcp, tls: tls, udp: udp, batcher: batcher, decoder: decoder, routing: routing,
                               limits: limits, clock: clock, logger: logger)
    }

    init(tcp: NIOAsyncChannel<Accepted, Never>?, tls: NIOAsyncChannel<Accepted, Never>?,
         udp: NIOAsyncChannel<AddressedEnvelope<ByteBuffer>, AddressedEnvelope<ByteBuffer>>?,
         batcher: SyslogBatcher, decoder: any SyslogDecoding, routing: SyslogTenantRouting, limits: SyslogLimits,
         clock: any VigilClock, logger: Logger) {
        self.tcp = tcp
        self.tls = tls
        self.udp = udp
        self.batcher = batcher
        self.decoder = decoder
        self.routing = routing
        self.limits = limits
        self.clock = clock
        self.logger = logger
    }

    static func describe(_ address: NIOCore.SocketAddress) -> String? {
        guard let ip = address.ipAddress, let port = address.port else { return nil }
        return ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }

    public func run() async throws {
        await withDiscardingTaskGroup { group in
            if let tcp { group.addTask { await self.serve(tcp, transport: "tcp") } }
            if let tls { group.addTask { await self.serve(tls, transport: "tls") } }
            if let udp { group.addTask { await self.serveUDP(udp) } }
            if let port = udp?.channel.localAddress?.port {
                group.addTask { await self.countReceiveDrops(port: port) }
            }
            group.addTask {
                // On graceful shutdown stop accepting; open connections end with the listener task.
                try? await gracefulShutdown()
                try? await self.tcp?.channel.close()
                try? await self.tls?.channel.close()
                try? await self.udp?.channel.close()
            }
        }
        await batcher.drain()
    }

    func serve(_ listener: NIOAsyncChannel<Accepted, Never>, transport: String) async {
        do {
            try await listener.executeThenClose { inbound in
                try await withThrowingDiscardingTaskGroup { group in
                    for try await accepted in inbound {
                        let open = connections.wrappingAdd(1, ordering: .relaxed).newValue
                        guard open <= limits.maxConnections else {
                            connections.wrappingSubtract(1, ordering: .relaxed)
                            SyslogMetrics.connectionRefused("connection_limit")
                            try? await accepted.connection.channel.close()
                            continue
                        }
                        group.addTask {
                            await self.handle(accepted.connection, peer: accepted.peer, transport: transport)
                            self.connections.wrappingSubtract(1, ordering: .relaxed)
                        }
                    }
                }
            }
        } catch {
            logger.debug("Syslog listener stopped", metadata: ["transport": "\(transport)", "error": "\(error)"])
        }
    }

    func handle(_ connection: Connection, peer: String?, transport: String) async {
        let peerText = peer ?? "unknown"
        let tenant = routing.tenant(for: peer)
        var framer = SyslogFramer(maxFrameBytes: limits.maxFrameBytes)
        do {
            try await connection.executeThenClose { inbound, _ in
                for try await buffer in inbound {
                    let outputs = buffer.withUnsafeReadableBytes { framer.feed($0) }
                    await admit(outputs, transport: transport, peer: peerText, tenant: tenant)
                }
            }
        } catch {
            logger.debug("Syslog connection ended", metadata: ["peer": "\(peerText)", "error": "\(error)"])
        }
        await admit(framer.finish(), transport: transport, peer: peerText, tenant: tenant)
    }

    func admit(_ outputs: [SyslogFramer.Output], transport: String, peer: String, tenant: TenantName) async {
        guard !outputs.isEmpty else { return }
        let received = clock.now()
        var entries: [(TenantName, SyslogDecoded)] = []
        entries.reserveCapacity(outputs.count)
        var frames = 0, bytesFramed = 0
        for output in outputs {
            switch output {
            case .frame(let bytes):
                frames += 1
                bytesFramed += bytes.count
                entries.append((tenant, decoder.decode(frame: bytes, peer: peer, received: received)))
            case .dropped(let reason, _):
                SyslogMetrics.drop(reason.rawValue)
            }
        }
        // Once per read, not per frame: looking a counter up costs a lock and a hash.
        if frames > 0 { SyslogMetrics.frames(frames, transport: transport, bytes: bytesFramed) }
        await batcher.admitFromStream(consume entries)
    }

    /// Turns the kernel's count of datagrams it dropped for the UDP socket into
    /// `vigil_syslog_dropped_total{reason="receive_buffer"}`, once a second until shutdown.
    func countReceiveDrops(port: Int) async {
        var counted = UDPReceiveDrops.count(port: port) ?? 0
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(1)) }
            guard let now = UDPReceiveDrops.count(port: port) else { continue }
            if now > counted { SyslogMetrics.drop("receive_buffer", count: Int(now - counted)) }
            counted = max(counted, now)
        }
    }

    func serveUDP(_ channel: NIOAsyncChannel<AddressedEnvelope<ByteBuffer>, AddressedEnvelope<ByteBuffer>>) async {
        do {
            try await channel.executeThenClose { inbound, _ in
                for try await envelope in inbound {
                    let bytes = Array(envelope.data.readableBytesView)
                    let frame = SyslogFramer.trimmed(bytes[...])
                    guard !frame.isEmpty else { continue }
                    guard frame.count <= limits.maxFrameBytes else {
                        SyslogMetrics.drop("oversize")
                        continue
                    }
                    SyslogMetrics.frames(1, transport: "udp", bytes: frame.count)
                    let peer = envelope.remoteAddress.ipAddress
                    let decoded = decoder.decode(frame: Array(frame), peer: peer ?? "unknown", received: clock.now())
                    _ = await batcher.admit([(routing.tenant(for: peer), decoded)])
                }
            }
        } catch {
            logger.debug("Syslog UDP listener stopped", metadata: ["error": "\(error)"])
        }
    }
}

/// Closes a connection that has been silent for the idle timeout.
final class CloseWhenIdle: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            SyslogMetrics.connectionRefused("idle_timeout")
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}
