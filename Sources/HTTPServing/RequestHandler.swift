import NIOCore
import NIOHTTP1

/// Turns one request head into one response from the responder. Request bodies are refused
/// with 413 before they are read: nothing here needs one, and not reading them keeps memory flat.
final class RequestHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let responder: any HTTPResponder
    private var pendingHead: HTTPRequestHead?
    private var rejectedBody = false

    init(responder: any HTTPResponder) {
        self.responder = responder
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            if Self.announcesBody(head) {
                rejectedBody = true
                send(.text(413, "request bodies are not accepted\n"), for: head, keepAlive: false, context: context)
            } else {
                pendingHead = head
            }
        case .body:
            break
        case .end:
            guard !rejectedBody, let head = pendingHead else { return }
            pendingHead = nil
            let request = ServerRequest(
                method: head.method.rawValue,
                target: head.uri,
                headers: head.headers.map { ($0.name, $0.value) }
            )
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            responder.respond(to: request, on: context.eventLoop).whenComplete { result in
                let (handler, context) = loopBound.value
                guard context.channel.isActive else { return }
                let response = (try? result.get()) ?? .text(500, "internal error\n")
                handler.send(response, for: head, keepAlive: head.isKeepAlive, context: context)
            }
        }
    }

    private static func announcesBody(_ head: HTTPRequestHead) -> Bool {
        if head.headers.contains(name: "transfer-encoding") { return true }
        guard let length = head.headers.first(name: "content-length") else { return false }
        return Int(length) != 0
    }

    /// Writes the whole response in one go: head, body and end, then one flush.
    private func send(_ response: ServerResponse, for request: HTTPRequestHead, keepAlive: Bool, context: ChannelHandlerContext) {
        var headers = HTTPHeaders(response.headers)
        var keepAlive = keepAlive
        if response.stream != nil {
            headers.remove(name: "Content-Length")
            if request.version.major == 1, request.version.minor == 0 {
                // No chunked encoding in HTTP/1.0: the end of the body is the end of the connection.
                keepAlive = false
            } else {
                headers.replaceOrAdd(name: "Transfer-Encoding", value: "chunked")
            }
        } else {
            headers.replaceOrAdd(
                name: "Content-Length",
                value: String(response.bodyTail.reduce(response.body.readableBytes) { $0 + $1.readableBytes })
            )
        }
        if !keepAlive {
            headers.replaceOrAdd(name: "Connection", value: "close")
        } else if request.version.major == 1, request.version.minor == 0 {
            headers.replaceOrAdd(name: "Connection", value: "keep-alive")
        }
        let status = HTTPResponseStatus(statusCode: response.status)
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: status, headers: headers))), promise: nil)

        if request.method != .HEAD {
            if response.body.readableBytes > 0 {
                context.write(wrapOutboundOut(.body(.byteBuffer(response.body))), promise: nil)
            }
            for part in response.bodyTail where part.readableBytes > 0 {
                context.write(wrapOutboundOut(.body(.byteBuffer(part))), promise: nil)
            }
        }
        if let stream = response.stream, request.method != .HEAD {
            context.flush()
            let pump = StreamPump(source: stream.makeSource(), keepAlive: keepAlive)
            pump.run(handler: self, context: context)
            return
        }
        finish(keepAlive: keepAlive, context: context)
    }

    fileprivate func finish(keepAlive: Bool, context: ChannelHandlerContext) {
        let channel = context.channel
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: written)
        if !keepAlive {
            written.futureResult.whenComplete { _ in channel.close(promise: nil) }
        }
    }

    fileprivate func writeBody(_ bytes: ByteBuffer, context: ChannelHandlerContext) -> EventLoopFuture<Void> {
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(bytes))), promise: written)
        return written.futureResult
    }
}

/// Sends a streamed body: one piece in flight at a time, the next made only once the previous
/// one is in the socket, so a slow client slows the source instead of filling memory. Lives on
/// the connection's event loop, like the handler that owns it.
private final class StreamPump {
    private var source: any StreamedBodySource
    private let keepAlive: Bool

    init(source: any StreamedBodySource, keepAlive: Bool) {
        self.source = source
        self.keepAlive = keepAlive
    }

    func run(handler: RequestHandler, context: ChannelHandlerContext) {
        guard context.channel.isActive else { return }
        switch source.next() {
        case .end:
            handler.finish(keepAlive: keepAlive, context: context)
        case .abort:
            context.flush()
            context.close(promise: nil)
        case .bytes(let bytes):
            let loopBound = NIOLoopBound((self, handler, context), eventLoop: context.eventLoop)
            handler.writeBody(bytes, context: context).whenComplete { result in
                let context = loopBound.value.2
                guard case .success = result else {
                    context.close(promise: nil)
                    return
                }
                // Through the loop, not directly: a write that completes at once would otherwise
                // recurse once per piece.
                context.eventLoop.execute {
                    let (pump, handler, context) = loopBound.value
                    pump.run(handler: handler, context: context)
                }
            }
        }
    }
}
