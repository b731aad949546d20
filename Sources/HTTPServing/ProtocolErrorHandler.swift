import Logging
import NIOCore
import NIOHTTP1

/// Answers requests the decoder could not parse (400, or 431 for an oversized head) and closes
/// the connection: after a framing error nothing more on it can be trusted.
final class ProtocolErrorHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private var hasUnterminatedResponse = false
    private let logger: Logger

    init(logger: Logger) {
        self.logger = logger
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parserError = error as? HTTPParserError else {
            logger.debug("Closing connection after error", metadata: ["error": "\(error)"])
            context.close(promise: nil)
            return
        }
        logger.debug("Rejecting malformed request", metadata: ["error": "\(parserError)"])
        guard !hasUnterminatedResponse else {
            context.close(promise: nil)
            return
        }
        let status: HTTPResponseStatus =
            parserError == .headerOverflow ? .requestHeaderFieldsTooLarge : .badRequest
        let headers = HTTPHeaders([("Connection", "close"), ("Content-Length", "0")])
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head:
            // This server never sends informational (1xx) heads, so every head opens a response.
            hasUnterminatedResponse = true
        case .end:
            hasUnterminatedResponse = false
        case .body:
            break
        }
        context.write(data, promise: promise)
    }
}
