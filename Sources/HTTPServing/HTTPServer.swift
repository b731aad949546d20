import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

/// A small HTTP/1.1 server that answers every request through one ``HTTPResponder``.
///
/// The hardening is the pipeline built in ``configureConnection(_:)``, read top to bottom:
/// connection cap, TLS when configured, head size limit, protocol errors answered and closed,
/// timeouts for slow or idle peers, then the responder. It accepts no request bodies: nothing it serves needs one.
public final class HTTPServer: Sendable {
    private let configuration: HTTPServerConfiguration
    private let responder: any HTTPResponder
    private let logger: Logger
    private let group: any EventLoopGroup
    private let state: Mutex<State>

    private struct State {
        var listener: (any Channel)?
        var connections: ConnectionTable
        var isShuttingDown = false
    }

    public init(
        configuration: HTTPServerConfiguration,
        responder: some HTTPResponder,
        logger: Logger,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        self.configuration = configuration
        self.responder = responder
        self.logger = logger
        self.group = group
        state = Mutex(State(connections: ConnectionTable(capacity: configuration.maxConnections)))
    }

    /// Binds and starts accepting. Returns the bound port, which is the one to use when the
    /// configuration asked for port 0.
    public func start() async throws -> Int {
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture { try self.configureConnection(channel) }
            }
            .bind(host: configuration.host, port: configuration.port)
            .get()
        state.withLock { $0.listener = channel }
        return channel.localAddress?.port ?? configuration.port
    }

    /// The number of connections open right now.
    public var openConnections: Int { state.withLock { $0.connections.count } }

    /// Stops accepting, lets requests in flight finish within the grace period, then closes
    /// every connection that is left.
    public func shutdown() async {
        let (listener, connections, idle) = state.withLock { state in
            state.isShuttingDown = true
            let listener = state.listener
            state.listener = nil
            let entries = state.connections.entries.values
            return (listener, entries.map(\.channel), entries.filter { !$0.isBusy }.map(\.channel))
        }
        try? await listener?.close()
        // Only connections with no response in flight are told to close now. NIO's own idea of
        // "idle" is not enough: once a response's end is handed to NIO it counts as idle while
        // megabytes may still sit in the socket's outbound buffer, and closing then drops them.
        // Busy connections are closed when their response has really been written (see
        // `onBusyChange` in configureConnection).
        for connection in idle {
            connection.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        }
        let allClosed = EventLoopFuture.andAllComplete(
            connections.map(\.closeFuture),
            on: group.any()
        )
        let grace = configuration.shutdownGracePeriod
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await allClosed.get() }
            group.addTask { try? await Task.sleep(for: grace) }
            await group.next()
            group.cancelAll()
        }
        for connection in connections where connection.isActive {
            try? await connection.close()
        }
    }

    /// Admits a connection under the cap and builds its pipeline.
    private func configureConnection(_ channel: any Channel) throws {
        let id = ObjectIdentifier(channel)
        let admission = state.withLock { state -> ConnectionTable.Admission in
            guard !state.isShuttingDown else { return .refused }
            return state.connections.admit(channel, now: .now())
        }
        switch admission {
        case .refused:
            // Every connection is busy: closing at once tells the client to retry, instead of
            // letting it queue behind requests that may take long.
            channel.close(promise: nil)
            return
        case .admittedEvicting(let idle):
            logger.debug("Connection cap reached; closing the longest-idle connection")
            idle.close(promise: nil)
        case .admitted:
            break
        }
        channel.closeFuture.whenComplete { [self] _ in
            state.withLock { $0.connections.remove(id) }
        }

        var limits = NIOHTTPDecoderLimitConfiguration()
        limits.maxHeaderFieldSize = configuration.maxRequestHeadBytes
        limits.maxHeaderListSize = configuration.maxRequestHeadBytes
        limits.maxHeaderFieldCount = 100

        let pipeline = channel.pipeline.syncOperations
        if let tls = configuration.tlsContextProvider?() ?? configuration.tls {
            try pipeline.addHandler(NIOSSLServerHandler(context: tls))
        }
        try pipeline.configureHTTPServerPipeline(
            withPipeliningAssistance: true,
            withErrorHandling: false,
            withOutboundHeaderValidation: true,
            withEncoderConfiguration: .init(),
            withDecoderLimitConfiguration: limits
        )
        try pipeline.addHandler(ProtocolErrorHandler(logger: logger))
        try pipeline.addHandler(
            ConnectionTimeoutHandler(
                requestHeadTimeout: TimeAmount(configuration.requestHeadTimeout),
                idleTimeout: TimeAmount(configuration.idleTimeout),
                writeTimeout: TimeAmount(configuration.writeTimeout),
                onBusyChange: { [self] busy in
                    let closeNow = state.withLock { state in
                        state.connections.setBusy(id, busy, now: .now())
                        return !busy && state.isShuttingDown
                    }
                    if closeNow { channel.close(promise: nil) }
                }
            )
        )
        try pipeline.addHandlers(responder.makeChannelHandlers())
        try pipeline.addHandler(RequestHandler(responder: responder))
    }
}
