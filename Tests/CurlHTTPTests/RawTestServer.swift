import NIOCore
import NIOPosix
import Synchronization

/// A bare HTTP/1.1 loopback server for what the project's hardened listener will not do on
/// purpose: requests that are never answered, bodies of any size generated on the fly at the
/// pace TCP allows, and connections cut in the middle of a body.
///
/// Paths: `/hang` (read the request, never answer), `/ok` (a short 200, kept alive),
/// `/generate?bytes=N` (N pattern bytes), `/cut?bytes=N&total=M` (announce M, send N, close),
/// `/stall?bytes=N` (announce 2N, send N, then nothing). Body byte `i` is `i % 251`.
final class RawTestServer: Sendable {
    private let channel: any Channel
    let port: Int
    let stats: Stats
    private let connections: ConnectionRegistry

    final class Stats: Sendable {
        private let hanging = Atomic<Int>(0)
        private let bodiesCompleted = Atomic<Int>(0)
        private let closedByPeer = Atomic<Int>(0)
        /// `/hang` requests received so far.
        var hangingRequests: Int { hanging.load(ordering: .relaxed) }
        /// Generated bodies written out in full.
        var completedBodies: Int { bodiesCompleted.load(ordering: .relaxed) }
        /// Connections the client closed.
        var connectionsClosed: Int { closedByPeer.load(ordering: .relaxed) }
        func hangingRequestReceived() { hanging.add(1, ordering: .relaxed) }
        func bodyCompleted() { bodiesCompleted.add(1, ordering: .relaxed) }
        func connectionClosed() { closedByPeer.add(1, ordering: .relaxed) }
    }

    private init(channel: any Channel, stats: Stats, connections: ConnectionRegistry) {
        self.channel = channel
        self.port = channel.localAddress?.port ?? 0
        self.stats = stats
        self.connections = connections
    }

    static func start() async throws -> RawTestServer {
        let stats = Stats()
        let registry = ConnectionRegistry()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                registry.add(channel)
                channel.closeFuture.whenComplete { _ in registry.remove(channel) }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(RawHTTPHandler(stats: stats))
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        return RawTestServer(channel: channel, stats: stats, connections: registry)
    }

    /// Closes the listener and every connection, hung ones included.
    func shutdown() async {
        try? await channel.close()
        let open = connections.channels.withLock { Array($0.values) }
        for connection in open { try? await connection.close() }
    }

    static func withServer<T>(_ body: (RawTestServer) async throws -> T) async throws -> T {
        let server = try await start()
        do {
            let result = try await body(server)
            await server.shutdown()
            return result
        } catch {
            await server.shutdown()
            throw error
        }
    }

    /// Byte `offset` of every generated body.
    static func patternByte(at offset: Int) -> UInt8 { UInt8(offset % 251) }
}

final class ConnectionRegistry: Sendable {
    let channels = Mutex<[ObjectIdentifier: any Channel]>([:])
    func add(_ channel: any Channel) { channels.withLock { $0[ObjectIdentifier(channel)] = channel } }
    func remove(_ channel: any Channel) { channels.withLock { $0[ObjectIdentifier(channel)] = nil } }
}

private final class RawHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// 261 periods of the 251-byte pattern: any prefix of it continues the pattern when written
    /// after a whole number of these blocks.
    private static let block: ByteBuffer = {
        var buffer = ByteBuffer()
        for offset in 0..<(251 * 261) { buffer.writeInteger(RawTestServer.patternByte(at: offset)) }
        return buffer
    }()

    private let stats: RawTestServer.Stats
    private var request = ByteBuffer()
    private var responding = false
    /// Body bytes still to write, and whether to close the connection after them.
    private var remaining = 0
    private var closeAfterBody = false

    init(stats: RawTestServer.Stats) {
        self.stats = stats
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        guard !responding else { return }
        request.writeBuffer(&bytes)
        let view = Array(request.readableBytesView)
        let terminator: [UInt8] = Array("\r\n\r\n".utf8)
        guard let headEnd = (0...max(0, view.count - 4)).first(where: { view.count >= 4 && Array(view[$0..<$0 + 4]) == terminator }) else { return }
        request.moveReaderIndex(forwardBy: headEnd + 4)
        request.discardReadBytes()
        let lineEnd = view.firstIndex(of: UInt8(ascii: "\r")) ?? headEnd
        let requestLine = String(decoding: view[..<lineEnd], as: UTF8.self)
        let target = requestLine.split(separator: " ").dropFirst().first.map(String.init) ?? "/"
        respond(to: target, context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if remaining > 0 || responding { stats.connectionClosed() }
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { pump(context: context) }
        context.fireChannelWritabilityChanged()
    }

    private func respond(to target: String, context: ChannelHandlerContext) {
        let parts = target.split(separator: "?", maxSplits: 1)
        let path = parts.first.map(String.init) ?? "/"
        var query: [String: Int] = [:]
        if parts.count > 1 {
            for pair in parts[1].split(separator: "&") {
                let kv = pair.split(separator: "=", maxSplits: 1)
                if kv.count == 2, let value = Int(kv[1]) { query[String(kv[0])] = value }
            }
        }
        switch path {
        case "/hang":
            responding = true
            stats.hangingRequestReceived()
        case "/ok":
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")), promise: nil)
        case "/generate":
            startBody(length: query["bytes"] ?? 0, announced: query["bytes"] ?? 0, close: false, context: context)
        case "/cut":
            startBody(length: query["bytes"] ?? 0, announced: query["total"] ?? 0, close: true, context: context)
        case "/stall":
            let bytes = query["bytes"] ?? 0
            startBody(length: bytes, announced: 2 * bytes, close: false, context: context)
        default:
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")), promise: nil)
        }
    }

    private func startBody(length: Int, announced: Int, close: Bool, context: ChannelHandlerContext) {
        responding = true
        remaining = length
        closeAfterBody = close
        context.write(wrapOutboundOut(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: \(announced)\r\n\r\n")), promise: nil)
        pump(context: context)
    }

    /// Writes while the channel accepts more, so a slow reader slows this writer (TCP flow
    /// control) and the server never holds more than a block or two.
    private func pump(context: ChannelHandlerContext) {
        guard responding, remaining > 0 else { return }
        while remaining > 0, context.channel.isWritable {
            let length = min(remaining, Self.block.readableBytes)
            remaining -= length
            let slice = Self.block.getSlice(at: Self.block.readerIndex, length: length) ?? ByteBuffer()
            if remaining == 0 {
                let promise = context.eventLoop.makePromise(of: Void.self)
                context.write(wrapOutboundOut(slice), promise: promise)
                let close = closeAfterBody
                let stats = self.stats
                let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
                promise.futureResult.whenSuccess {
                    stats.bodyCompleted()
                    // Close only once every byte is in the kernel, so the peer sees them all
                    // and then the end of the stream.
                    if close { loopBound.value.close(promise: nil) }
                }
            } else {
                context.write(wrapOutboundOut(slice), promise: nil)
            }
        }
        context.flush()
        if remaining == 0, !closeAfterBody {
            responding = false
        }
    }
}
