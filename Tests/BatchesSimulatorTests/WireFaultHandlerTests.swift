import BatchesSimulator
import HTTPServing
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Synchronization
import Testing

private final class WrittenFlag: Sendable {
    private let value = Mutex(false)
    func set() { value.withLock { $0 = true } }
    var isSet: Bool { value.withLock { $0 } }
}

/// The simulator's wire faults, driven on an `EmbeddedChannel` with its own clock: what leaves
/// the handler is exactly what the client would see, without sockets or sleeps.
@Suite("Wire fault handler on an embedded channel")
struct WireFaultHandlerTests {
    static func head(marking fault: WireFault?, contentLength: Int) -> HTTPServerResponsePart {
        var response = ServerResponse(status: 200, headers: [("Content-Length", String(contentLength))])
        fault?.mark(&response)
        return .head(HTTPResponseHead(version: .http1_1, status: .ok, headers: HTTPHeaders(response.headers)))
    }

    static func body(_ text: String) -> HTTPServerResponsePart {
        .body(.byteBuffer(ByteBuffer(string: text)))
    }

    static func makeChannel() throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(WireFaultHandler())
        channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 9), promise: nil)
        return channel
    }

    static func readParts(_ channel: EmbeddedChannel) throws -> [HTTPServerResponsePart] {
        var parts: [HTTPServerResponsePart] = []
        while let part = try channel.readOutbound(as: HTTPServerResponsePart.self) { parts.append(part) }
        return parts
    }

    @Test("an unmarked response passes unchanged")
    func unmarked() throws {
        let channel = try Self.makeChannel()
        try channel.writeOutbound(Self.head(marking: nil, contentLength: 5))
        try channel.writeOutbound(Self.body("hello"))
        try channel.writeOutbound(HTTPServerResponsePart.end(nil))
        let parts = try Self.readParts(channel)
        #expect(parts == [Self.head(marking: nil, contentLength: 5), Self.body("hello"), .end(nil)])
        #expect(channel.isActive)
    }

    @Test("truncate announces the full length, sends the first bytes, never the end, and closes")
    func truncate() throws {
        let channel = try Self.makeChannel()
        try channel.writeOutbound(Self.head(marking: .truncateBody(afterBytes: 3), contentLength: 10))
        try channel.writeOutbound(Self.body("hello"))
        try channel.writeOutbound(Self.body("world"))
        channel.write(HTTPServerResponsePart.end(nil), promise: nil)
        channel.flush()
        let parts = try Self.readParts(channel)
        // The mark itself never reaches the client.
        #expect(parts == [Self.head(marking: nil, contentLength: 10), Self.body("hel")])
        #expect(!channel.isActive)
    }

    @Test("close sends nothing and closes")
    func close() throws {
        let channel = try Self.makeChannel()
        channel.write(Self.head(marking: .closeWithoutResponse, contentLength: 0), promise: nil)
        channel.flush()
        #expect(try Self.readParts(channel).isEmpty)
        #expect(!channel.isActive)
    }

    @Test("delay holds every part, in order, until the channel's clock has moved on")
    func delay() throws {
        let channel = try Self.makeChannel()
        // Not writeOutbound: it waits for each write, and these complete only after the delay.
        channel.writeAndFlush(Self.head(marking: .delay(.milliseconds(1500)), contentLength: 5), promise: nil)
        channel.writeAndFlush(Self.body("hello"), promise: nil)
        channel.writeAndFlush(HTTPServerResponsePart.end(nil), promise: nil)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1499))
        #expect(try Self.readParts(channel).isEmpty)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        #expect(try Self.readParts(channel) == [Self.head(marking: nil, contentLength: 5), Self.body("hello"), .end(nil)])
    }

    @Test("pause sends the first body part at once and each later part after the pause")
    func pause() throws {
        let channel = try Self.makeChannel()
        try channel.writeOutbound(Self.head(marking: .pauseBetweenBodyParts(.milliseconds(25)), contentLength: 0))
        try channel.writeOutbound(Self.body("one"))
        #expect(try Self.readParts(channel) == [Self.head(marking: nil, contentLength: 0), Self.body("one")])
        // The stream makes its next part when this write completes, so the pause must hold
        // the completion back too.
        let written = WrittenFlag()
        channel.writeAndFlush(Self.body("two")).whenSuccess { written.set() }
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(24))
        #expect(try Self.readParts(channel).isEmpty)
        #expect(!written.isSet)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        #expect(try Self.readParts(channel) == [Self.body("two")])
        #expect(written.isSet)
    }

    @Test(
        "the mark survives a round trip through its header",
        arguments: [
            WireFault.delay(.milliseconds(1500)), .truncateBody(afterBytes: 7), .closeWithoutResponse,
            .pauseBetweenBodyParts(.milliseconds(25)),
        ])
    func markRoundTrip(fault: WireFault) {
        var response = ServerResponse(status: 200)
        fault.mark(&response)
        #expect(WireFault(markedOn: response) == fault)
        #expect(WireFault(markedOn: ServerResponse(status: 200)) == nil)
    }
}
