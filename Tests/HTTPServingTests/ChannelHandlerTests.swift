import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Synchronization
import Testing

@testable import HTTPServing

/// The listener's channel handlers on an `EmbeddedChannel`, as swift-nio tests its own HTTP
/// handlers: parts in, parts out, time moved by hand. No sockets, no sleeps, so none of these
/// needs the serial phase; HTTPServerTests keeps what only real sockets can show.
@Suite("Channel handlers on an embedded channel")
struct ChannelHandlerTests {
    static func connectedChannel(_ handlers: [any ChannelHandler]) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandlers(handlers)
        channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 9), promise: nil)
        return channel
    }

    static func request(
        _ uri: String, method: HTTPMethod = .GET, version: HTTPVersion = .http1_1, headers: HTTPHeaders = [:]
    ) -> HTTPServerRequestPart {
        .head(HTTPRequestHead(version: version, method: method, uri: uri, headers: headers))
    }

    static func send(_ parts: HTTPServerRequestPart..., to channel: EmbeddedChannel) throws {
        for part in parts { try channel.writeInbound(part) }
    }

    static func responseParts(_ channel: EmbeddedChannel) throws -> [HTTPServerResponsePart] {
        var parts: [HTTPServerResponsePart] = []
        while let part = try channel.readOutbound(as: HTTPServerResponsePart.self) { parts.append(part) }
        return parts
    }

    static func head(of parts: [HTTPServerResponsePart]) -> HTTPResponseHead? {
        guard case .head(let head)? = parts.first else { return nil }
        return head
    }

    static func bodyText(of parts: [HTTPServerResponsePart]) -> String {
        parts.reduce(into: "") { text, part in
            if case .body(.byteBuffer(let bytes)) = part { text += String(buffer: bytes) }
        }
    }

    // MARK: - RequestHandler

    @Test("GET: the responder's head with Content-Length, its body, then the end; the connection stays open")
    func get() throws {
        let channel = try Self.connectedChannel([RequestHandler(responder: TestResponder())])
        try Self.send(Self.request("/hello?name=embedded"), .end(nil), to: channel)
        let parts = try Self.responseParts(channel)
        let head = try #require(Self.head(of: parts))
        #expect(head.status == .ok)
        #expect(head.headers["X-Test"] == ["yes"])
        #expect(head.headers["Content-Length"] == ["\("hello embedded\n".utf8.count)"])
        #expect(Self.bodyText(of: parts) == "hello embedded\n")
        #expect(parts.last == .end(nil))
        #expect(channel.isActive)
    }

    @Test("HEAD: the same head as GET, with no body")
    func head() throws {
        let channel = try Self.connectedChannel([RequestHandler(responder: TestResponder())])
        try Self.send(Self.request("/hello", method: .HEAD), .end(nil), to: channel)
        let parts = try Self.responseParts(channel)
        #expect(Self.head(of: parts)?.headers["Content-Length"] == ["\("hello world\n".utf8.count)"])
        #expect(parts.count == 2)
        #expect(parts.last == .end(nil))
    }

    @Test("A request that announces a body gets 413 and a close, and never reaches the responder")
    func bodyRefused() throws {
        let responder = TestResponder()
        let channel = try Self.connectedChannel([RequestHandler(responder: responder)])
        try Self.send(Self.request("/hello", method: .POST, headers: ["Content-Length": "5"]), to: channel)
        let parts = try Self.responseParts(channel)
        #expect(Self.head(of: parts)?.status == .payloadTooLarge)
        #expect(Self.head(of: parts)?.headers["Connection"] == ["close"])
        #expect(!channel.isActive)
        // Whatever still arrives of the body is dropped.
        _ = try? channel.writeInbound(HTTPServerRequestPart.body(ByteBuffer(string: "12345")))
        _ = try? channel.writeInbound(HTTPServerRequestPart.end(nil))
        #expect(responder.counter.count == 0)
    }

    @Test("A responder that answers later is sent when its future completes, not before")
    func lateAnswer() throws {
        let channel = try Self.connectedChannel([RequestHandler(responder: TestResponder())])
        try Self.send(Self.request("/slow"), .end(nil), to: channel)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(299))
        #expect(try Self.responseParts(channel).isEmpty)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        #expect(Self.bodyText(of: try Self.responseParts(channel)) == "slow body\n")
    }

    @Test("HTTP/1.0 without keep-alive: Connection: close, then the connection closes after the end")
    func http10() throws {
        let channel = try Self.connectedChannel([RequestHandler(responder: TestResponder())])
        try Self.send(Self.request("/hello", version: .http1_0), .end(nil), to: channel)
        let parts = try Self.responseParts(channel)
        #expect(Self.head(of: parts)?.headers["Connection"] == ["close"])
        #expect(parts.last == .end(nil))
        #expect(!channel.isActive)
    }

    @Test("A streamed body goes out chunked, piece by piece, then the end")
    func streamed() throws {
        let channel = try Self.connectedChannel([RequestHandler(responder: StreamingResponder(pieces: 3, abort: false))])
        try Self.send(Self.request("/stream"), .end(nil), to: channel)
        channel.embeddedEventLoop.run()
        let parts = try Self.responseParts(channel)
        #expect(Self.head(of: parts)?.headers["Transfer-Encoding"] == ["chunked"])
        #expect(Self.head(of: parts)?.headers["Content-Length"] == [])
        #expect(Self.bodyText(of: parts) == "piece 0;piece 1;piece 2;")
        #expect(parts.last == .end(nil))
        #expect(channel.isActive)
    }

    @Test("A streamed body whose source aborts ends with a closed connection, never with the end")
    func streamedAbort() throws {
        let channel = try Self.connectedChannel([RequestHandler(responder: StreamingResponder(pieces: 2, abort: true))])
        try Self.send(Self.request("/stream"), .end(nil), to: channel)
        channel.embeddedEventLoop.run()
        let parts = try Self.responseParts(channel)
        #expect(Self.bodyText(of: parts) == "piece 0;piece 1;")
        #expect(!parts.contains(.end(nil)))
        #expect(!channel.isActive)
    }

    // MARK: - ConnectionTimeoutHandler

    static func timeoutHandler(busy: BusyLog) -> ConnectionTimeoutHandler {
        ConnectionTimeoutHandler(
            requestHeadTimeout: .seconds(10), idleTimeout: .seconds(30), writeTimeout: .seconds(30),
            onBusyChange: { busy.record($0) }
        )
    }

    @Test("A connection that sends no request head is closed when requestHeadTimeout has passed, not before")
    func requestHeadTimeout() throws {
        let channel = try Self.connectedChannel([Self.timeoutHandler(busy: BusyLog())])
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(9_999))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        #expect(!channel.isActive)
    }

    @Test("A request makes the connection busy until its response is written, then idleTimeout applies")
    func busyThenIdle() throws {
        let busy = BusyLog()
        let channel = try Self.connectedChannel([
            Self.timeoutHandler(busy: busy), RequestHandler(responder: TestResponder()),
        ])
        try Self.send(Self.request("/slow"), .end(nil), to: channel)
        #expect(busy.changes == [true])
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(300))
        #expect(busy.changes == [true, false])
        #expect(Self.bodyText(of: try Self.responseParts(channel)) == "slow body\n")
        // Past the head timeout: once a request came, only the idle timeout counts.
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(29_999))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        #expect(!channel.isActive)
    }

    // MARK: - ProtocolErrorHandler

    @Test(
        "A parse error is answered (431 for an oversized head, else 400) and the connection closed",
        arguments: [(HTTPParserError.headerOverflow, HTTPResponseStatus.requestHeaderFieldsTooLarge), (.invalidMethod, .badRequest)]
    )
    func protocolError(error: HTTPParserError, status: HTTPResponseStatus) throws {
        let logger = Logger(label: "ChannelHandlerTests", factory: { _ in SwiftLogNoOpLogHandler() })
        let channel = try Self.connectedChannel([ProtocolErrorHandler(logger: logger)])
        channel.pipeline.fireErrorCaught(error)
        let parts = try Self.responseParts(channel)
        #expect(Self.head(of: parts)?.status == status)
        #expect(Self.head(of: parts)?.headers["Connection"] == ["close"])
        #expect(parts.last == .end(nil))
        #expect(!channel.isActive)
    }
}

/// What `onBusyChange` was told, in order.
final class BusyLog: Sendable {
    private let log = Mutex<[Bool]>([])
    func record(_ busy: Bool) { log.withLock { $0.append(busy) } }
    var changes: [Bool] { log.withLock { $0 } }
}

/// Streams `pieces` small pieces, then the end or an abort.
struct StreamingResponder: HTTPResponder {
    let pieces: Int
    let abort: Bool

    struct Source: StreamedBodySource {
        let pieces: Int
        let abort: Bool
        var sent = 0

        mutating func next() -> StreamedBody.Piece {
            guard sent < pieces else { return abort ? .abort : .end }
            defer { sent += 1 }
            return .bytes(ByteBuffer(string: "piece \(sent);"))
        }
    }

    func respond(to request: ServerRequest) -> ServerResponse {
        let (pieces, abort) = (pieces, abort)
        return ServerResponse(status: 200, stream: StreamedBody { Source(pieces: pieces, abort: abort) })
    }
}
