import NIOCore

/// A complete response. Bodies are `ByteBuffer`s so a cached body is shared, not copied, by
/// every connection that sends it.
public struct ServerResponse: Sendable {
    public var status: Int
    public var headers: [(name: String, value: String)]
    public var body: ByteBuffer
    /// Sent right after `body`, in order. Lets a large cached body be shared by every response
    /// while a small per-request part follows it, and a body be assembled from pieces shared
    /// with another, without copying either.
    public var bodyTail: [ByteBuffer]
    /// A body made while it is sent, with chunked transfer encoding, after `body` (which is
    /// then usually empty). For bodies too large to hold, such as a results file.
    public var stream: StreamedBody?

    public init(
        status: Int,
        headers: [(name: String, value: String)] = [],
        body: ByteBuffer = ByteBuffer(),
        bodyTail: [ByteBuffer] = [],
        stream: StreamedBody? = nil
    ) {
        self.status = status
        self.headers = headers
        self.body = body
        self.bodyTail = bodyTail
        self.stream = stream
    }

    /// A plain-text response, as used for errors and small endpoints.
    public static func text(_ status: Int, _ text: String, headers: [(name: String, value: String)] = []) -> Self {
        ServerResponse(
            status: status,
            headers: [("Content-Type", "text/plain; charset=utf-8")] + headers,
            body: ByteBuffer(string: text)
        )
    }
}

/// A response body produced piece by piece as the client takes it: the next piece is made only
/// once the previous one has been written to the socket, so memory stays at one piece however
/// long the body is.
public struct StreamedBody: Sendable {
    /// What a source hands over next.
    public enum Piece {
        case bytes(ByteBuffer)
        /// The body is complete: the terminating chunk follows.
        case end
        /// Close the connection at once, without the terminating chunk: the source could not
        /// finish, and the client must see an incomplete body rather than a short complete one.
        case abort
    }

    /// Called once per response, on the connection's event loop; the source lives there.
    public let makeSource: @Sendable () -> any StreamedBodySource

    public init(makeSource: @escaping @Sendable () -> any StreamedBodySource) {
        self.makeSource = makeSource
    }
}

/// Makes a streamed body's pieces, one call at a time, on one event loop.
public protocol StreamedBodySource {
    mutating func next() -> StreamedBody.Piece
}

/// Answers requests. Called on an event loop thread, so it must not block: a responder that
/// needs slow work (a bcrypt check, say) or a wait implements ``respond(to:on:)`` and completes
/// the future later.
public protocol HTTPResponder: Sendable {
    func respond(to request: ServerRequest) -> ServerResponse
    /// The server calls this one; by default it answers with ``respond(to:)`` at once.
    func respond(to request: ServerRequest, on eventLoop: any EventLoop) -> EventLoopFuture<ServerResponse>
    /// Handlers of the responder's own, placed in each connection's pipeline after the
    /// listener's hardening and before the handler that calls the responder, so they see every
    /// response part on its way out (as hummingbird's `additionalChannelHandlers`). Called on
    /// the connection's event loop, once per connection; none by default.
    func makeChannelHandlers() -> [any ChannelHandler]
}

extension HTTPResponder {
    public func respond(to request: ServerRequest, on eventLoop: any EventLoop) -> EventLoopFuture<ServerResponse> {
        eventLoop.makeSucceededFuture(respond(to: request))
    }

    public func makeChannelHandlers() -> [any ChannelHandler] { [] }
}
