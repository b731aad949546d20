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
                if case .delay(let delay) = response.fault {
                    context.eventLoop.scheduleTask(in: TimeAmount(delay)) {
                        let (handler, context) = loopBound.value
                        guard context.channel.isActive else { return }
                        handler.send(response, for: head, keepAlive: head.isKeepAlive, context: context)
                    }
                } else {
                    handler.send(response, for: head, keepAlive: head.isKeepAlive, context: context)
                }
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
        if response.fault == .closeWithoutResponse {
            context.close(promise: nil)
            return
        }
        var headers = HTTPHeaders(response.headers)
        headers.replaceOrAdd(
            name: "Content-Length",
            value: String(response.body.readableBytes + (response.bodyTail?.readableBytes ?? 0))
        )
        if !keepAlive {
            headers.replaceOrAdd(name: "Connection", value: "close")
        } else if request.version.major == 1, request.version.minor == 0 {
            headers.replaceOrAdd(name: "Connection", value: "keep-alive")
        }
        let status = HTTPResponseStatus(statusCode: response.status)
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: status, headers: headers))), promise: nil)

        var body = response.body
        var isTruncated = false
        if case .truncateBody(let afterBytes) = response.fault {
            body = body.getSlice(at: body.readerIndex, length: min(afterBytes, body.readableBytes)) ?? ByteBuffer()
            isTruncated = true
        }
        if request.method != .HEAD {
            if body.readableBytes > 0 {
                context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
            }
            if let tail = response.bodyTail, tail.readableBytes > 0, !isTruncated {
                context.write(wrapOutboundOut(.body(.byteBuffer(tail))), promise: nil)
            }
        }
        let channel = context.channel
        if isTruncated {
            // Never send `.end` for a truncated body: the client must see the connection drop
            // before the announced length arrived.
            context.flush()
            channel.close(promise: nil)
            return
        }
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: written)
        if !keepAlive {
            written.futureResult.whenComplete { _ in channel.close(promise: nil) }
        }
    }
}
