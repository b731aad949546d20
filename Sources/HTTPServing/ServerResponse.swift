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
        fault: Fault? = nil
    ) {
        self.status = status
        self.headers = headers
        self.body = body
        self.bodyTail = bodyTail
        self.fault = fault
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
