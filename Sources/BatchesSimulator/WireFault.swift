import HTTPServing
import NIOCore
import NIOHTTP1

/// How the simulator misbehaves on the wire, below what a responder can say with a status and a
/// body. The responder marks a response with one of these in a header of the simulator's own;
/// ``WireFaultHandler``, which the simulator adds to each of its connections, removes the mark
/// and acts on it. The listener itself knows nothing of faults.
public enum WireFault: Sendable, Equatable {
    /// Wait this long before sending anything.
    case delay(Duration)
    /// Announce the full `Content-Length`, send this many body bytes, then close.
    case truncateBody(afterBytes: Int)
    /// Close the connection without answering.
    case closeWithoutResponse
    /// Send the first body part at once, then wait this long before each further part (and the
    /// end). The listener's write timeout applies to each part, so a longer pause closes the
    /// connection.
    case pauseBetweenBodyParts(Duration)

    static let headerName = "x-simulator-wire-fault"

    /// The fault a responder marked `response` with, if any.
    public init?(markedOn response: ServerResponse) {
        guard let value = response.headers.first(where: { $0.name == Self.headerName })?.value else { return nil }
        self.init(headerValue: value)
    }

    /// Marks `response` so that the simulator's connection handler applies this fault to it.
    public func mark(_ response: inout ServerResponse) {
        response.headers.removeAll { $0.name == Self.headerName }
        response.headers.append((Self.headerName, headerValue))
    }

    var headerValue: String {
        switch self {
        case .delay(let duration): "delay-ms=\(Self.milliseconds(duration))"
        case .truncateBody(let afterBytes): "truncate-after=\(afterBytes)"
        case .closeWithoutResponse: "close"
        case .pauseBetweenBodyParts(let duration): "pause-ms=\(Self.milliseconds(duration))"
        }
    }

    init?(headerValue: String) {
        let parts = headerValue.split(separator: "=", maxSplits: 1)
        let number = parts.count == 2 ? Int(parts[1]) : nil
        switch (parts.first, number) {
        case ("close"?, nil): self = .closeWithoutResponse
        case ("delay-ms"?, let milliseconds?): self = .delay(.milliseconds(milliseconds))
        case ("truncate-after"?, let bytes?): self = .truncateBody(afterBytes: bytes)
        case ("pause-ms"?, let milliseconds?): self = .pauseBetweenBodyParts(.milliseconds(milliseconds))
        default: return nil
        }
    }

    private static func milliseconds(_ duration: Duration) -> Int {
        Int(duration / .milliseconds(1))
    }
}

/// Applies the ``WireFault`` a response is marked with, on its way out of the simulator. Sits
/// between the listener's hardening and its request handler, so the timeouts and connection
/// accounting see exactly what the client sees. Lives on the connection's event loop.
public final class WireFaultHandler: ChannelOutboundHandler, RemovableChannelHandler {
    public typealias OutboundIn = HTTPServerResponsePart
    public typealias OutboundOut = HTTPServerResponsePart

    /// The fault of the response being written, read from its head.
    private var fault: WireFault?
    private var bodyBytesLeft = 0
    private var bodyPartsSent = 0
    /// For a delayed response: completes once the previous held part has gone out, so the
    /// parts keep their order.
    private var released: EventLoopFuture<Void>?

    public init() {}

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        var unwrapped = unwrapOutboundIn(data)
        if case .head(var head) = unwrapped {
            fault = head.headers.first(name: WireFault.headerName).flatMap(WireFault.init(headerValue:))
            head.headers.remove(name: WireFault.headerName)
            unwrapped = .head(head)
            bodyBytesLeft = 0
            bodyPartsSent = 0
            released = nil
            switch fault {
            case .truncateBody(let afterBytes)?: bodyBytesLeft = afterBytes
            case .delay(let duration)?: released = context.eventLoop.scheduleTask(in: TimeAmount(duration)) {}.futureResult
            default: break
            }
        }
        // Immutable, so the delayed writes below can take it along.
        let part = unwrapped
        switch fault {
        case nil:
            context.write(wrapOutboundOut(part), promise: promise)
        case .closeWithoutResponse?:
            promise?.fail(ChannelError.ioOnClosedChannel)
            context.close(promise: nil)
        case .truncateBody?:
            writeTruncated(part, context: context, promise: promise)
        case .delay?:
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            released = (released ?? context.eventLoop.makeSucceededVoidFuture()).map {
                let (handler, context) = loopBound.value
                // A client that gave up meanwhile has closed the channel: the write just fails.
                context.writeAndFlush(handler.wrapOutboundOut(part), promise: promise)
            }
        case .pauseBetweenBodyParts(let pause)?:
            if case .head = part {
                context.write(wrapOutboundOut(part), promise: promise)
                return
            }
            bodyPartsSent += 1
            guard bodyPartsSent > 1 else {
                context.write(wrapOutboundOut(part), promise: promise)
                return
            }
            // The streamed body makes its next part only when this write completes, so holding
            // it back here slows the whole stream.
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            context.eventLoop.scheduleTask(in: TimeAmount(pause)) {
                let (handler, context) = loopBound.value
                context.writeAndFlush(handler.wrapOutboundOut(part), promise: promise)
            }
        }
    }

    private func writeTruncated(
        _ part: HTTPServerResponsePart, context: ChannelHandlerContext, promise: EventLoopPromise<Void>?
    ) {
        switch part {
        case .head:
            context.write(wrapOutboundOut(part), promise: promise)
        case .body(.byteBuffer(var bytes)):
            let kept = bytes.readSlice(length: min(bodyBytesLeft, bytes.readableBytes)) ?? ByteBuffer()
            bodyBytesLeft -= kept.readableBytes
            if kept.readableBytes > 0 {
                context.write(wrapOutboundOut(.body(.byteBuffer(kept))), promise: promise)
            } else {
                promise?.succeed()
            }
        case .body, .end:
            // Never the end of the response: the client must see the connection drop before the
            // announced length arrived.
            promise?.fail(ChannelError.ioOnClosedChannel)
            context.flush()
            context.close(promise: nil)
        }
    }
}
