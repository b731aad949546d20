import NIOCore

/// A complete response. Bodies are `ByteBuffer`s so a cached body is shared, not copied, by
/// every connection that sends it.
public struct ServerResponse: Sendable {
    public var status: Int
    public var headers: [(name: String, value: String)]
    public var body: ByteBuffer
    /// Sent right after `body`. Lets a large cached body be shared by every response while a
    /// small per-request part follows it, without copying the large one.
    public var bodyTail: ByteBuffer?
    /// Misbehaviour on purpose, for the API simulator's fault injection. `nil` for every
    /// well-behaved response.
    public var fault: Fault?
    /// A body made while it is sent, with chunked transfer encoding, after `body` (which is
    /// then usually empty). For bodies too large to hold, such as a results file.
    public var stream: StreamedBody?

    /// Ways a response can go wrong on the wire, so clients can be tested against them.
    public enum Fault: Sendable, Equatable {
        /// Wait this long before sending anything.
        case delay(Duration)
        /// Announce the full `Content-Length`, send this many body bytes, then close.
        case truncateBody(afterBytes: Int)
        /// Close the connection without answering.
        case closeWithoutResponse
    }

    public init(
        status: Int,
        headers: [(name: String, value: String)] = [],
        body: ByteBuffer = ByteBuffer(),
        bodyTail: ByteBuffer? = nil,
        fault: Fault? = nil,
        stream: StreamedBody? = nil
    ) {
        self.status = status
        self.headers = headers
        self.body = body
        self.bodyTail = bodyTail
        self.fault = fault
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
        /// Close the connection at once, without the terminating chunk: the client must see an
        /// incomplete body (fault injection).
        case abort
    }

    /// Wait between pieces (fault injection: a slow stream). Note that the listener's write
    /// timeout applies to each piece, so a pause longer than it closes the connection.
    public var pauseBetweenPieces: Duration?
    /// Called once per response, on the connection's event loop; the source lives there.
    public let makeSource: @Sendable () -> any StreamedBodySource

    public init(
        pauseBetweenPieces: Duration? = nil, makeSource: @escaping @Sendable () -> any StreamedBodySource
    ) {
        self.pauseBetweenPieces = pauseBetweenPieces
        self.makeSource = makeSource
    }
}

/// Makes a streamed body's pieces, one call at a time, on one event loop.
public protocol StreamedBodySource {
    mutating func next() -> StreamedBody.Piece
}

/// Answers requests. Called on an event loop thread, so it must not block: a responder that
/// needs slow work (a bcrypt check, say) implements ``respond(to:on:)`` and does it elsewhere;
/// one that only needs to wait returns a `.delay` fault.
public protocol HTTPResponder: Sendable {
    func respond(to request: ServerRequest) -> ServerResponse
    /// The server calls this one; by default it answers with ``respond(to:)`` at once.
    func respond(to request: ServerRequest, on eventLoop: any EventLoop) -> EventLoopFuture<ServerResponse>
}

extension HTTPResponder {
    public func respond(to request: ServerRequest, on eventLoop: any EventLoop) -> EventLoopFuture<ServerResponse> {
        eventLoop.makeSucceededFuture(respond(to: request))
    }
}
