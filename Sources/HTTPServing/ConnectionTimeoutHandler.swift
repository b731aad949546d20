import NIOCore
import NIOHTTP1

/// Closes connections that hold a slot without using it: a new connection that does not
/// deliver a complete request head in time (slow-loris), a kept-alive one idle for too long, and
/// a client that does not read its response (slow reader). One timer at a time, always for the
/// thing the connection is waiting on now.
final class ConnectionTimeoutHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private let requestHeadTimeout: TimeAmount
    private let idleTimeout: TimeAmount
    private let writeTimeout: TimeAmount
    private var timer: Scheduled<Void>?
    private var requestsInFlight = 0
    /// Tells the server when the connection starts and stops working on requests, so the
    /// connection cap can make room by closing idle connections only.
    private let onBusyChange: (Bool) -> Void

    init(requestHeadTimeout: TimeAmount, idleTimeout: TimeAmount, writeTimeout: TimeAmount, onBusyChange: @escaping (Bool) -> Void) {
        self.requestHeadTimeout = requestHeadTimeout
        self.idleTimeout = idleTimeout
        self.writeTimeout = writeTimeout
        self.onBusyChange = onBusyChange
    }

    func handlerAdded(context: ChannelHandlerContext) {
        arm(requestHeadTimeout, context: context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head = unwrapInboundIn(data) {
            if requestsInFlight == 0 { onBusyChange(true) }
            requestsInFlight += 1
            timer?.cancel()
            timer = nil
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .end:
            break
        case .body:
            // A streamed body is written piece by piece: each must be taken in time too, or a
            // client that stopped reading would hold the connection for good.
            arm(writeTimeout, context: context)
            context.write(data, promise: promise)
            return
        case .head:
            context.write(data, promise: promise)
            return
        }
        arm(writeTimeout, context: context)
        let written = promise ?? context.eventLoop.makePromise()
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        written.futureResult.whenComplete { _ in
            let (handler, context) = loopBound.value
            handler.responseWritten(context: context)
        }
        context.write(data, promise: written)
    }

    private func responseWritten(context: ChannelHandlerContext) {
        requestsInFlight -= 1
        if requestsInFlight == 0, context.channel.isActive {
            onBusyChange(false)
            arm(idleTimeout, context: context)
        }
    }

    private func arm(_ timeout: TimeAmount, context: ChannelHandlerContext) {
        timer?.cancel()
        let channel = context.channel
        timer = context.eventLoop.scheduleTask(in: timeout) {
            channel.close(promise: nil)
        }
    }
}
