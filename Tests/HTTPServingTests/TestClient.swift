import Foundation
import HTTPServing
import Logging
import NIOCore
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

struct SocketError: Error, CustomStringConvertible {
    let description: String
    init(_ what: String, errno code: Int32 = errno) {
        description = "\(what): \(String(cString: strerror(code)))"
    }
}

// File-level wrappers: inside TestSocket, `close` and `send` name its own methods.
private func posixClose(_ fd: Int32) -> Int32 { close(fd) }
private func posixSend(_ fd: Int32, _ bytes: UnsafeRawPointer?, _ count: Int, _ flags: Int32) -> Int { send(fd, bytes, count, flags) }

/// A parsed HTTP/1.1 response as a blocking test client sees it.
struct RawResponse: Sendable {
    var status: Int
    var headers: [(name: String, value: String)]
    var body: [UInt8]

    func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    var bodyText: String { String(decoding: body, as: UTF8.self) }
}

/// How a read ended when waiting for the peer to close.
enum ReadEnd: Equatable {
    /// `read` returned 0 (FIN), or the connection was reset: either way the server closed it.
    case closed
    /// Nothing arrived and the connection stayed open until the receive timeout.
    case timedOut
}

/// A tiny blocking TCP client on a raw POSIX socket, so tests can send bytes no HTTP client
/// would. Every read has a receive timeout, so a broken server fails a test instead of hanging it.
struct TestSocket: Sendable {
    let fd: Int32

    init(port: Int, receiveTimeout: Duration = .seconds(5)) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SocketError("socket") }
        var timeout = timeval(tv_sec: Int(receiveTimeout.components.seconds), tv_usec: Int(receiveTimeout.components.attoseconds / 1_000_000_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else {
            let code = errno
            _ = posixClose(fd)
            throw SocketError("connect", errno: code)
        }
        self.fd = fd
    }

    func close() {
        _ = posixClose(fd)
    }

    func send(_ text: String) throws {
        try send(Array(text.utf8))
    }

    func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            // MSG_NOSIGNAL: a server that already closed must fail the test, not SIGPIPE the runner.
            let sent = bytes[offset...].withUnsafeBytes { posixSend(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard sent > 0 else { throw SocketError("send") }
            offset += sent
        }
    }

    /// One `recv`: bytes, or [] at end of stream; throws on timeout or error.
    func receiveSome() throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard count >= 0 else { throw SocketError("recv") }
        return Array(buffer[0..<count])
    }

    /// Reads until the server closes the connection (or the receive timeout), discarding nothing:
    /// returns what arrived and how the read ended.
    func readUntilClosed() -> (bytes: [UInt8], end: ReadEnd) {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count > 0 {
                bytes += buffer[0..<count]
            } else if count == 0 || errno == ECONNRESET {
                return (bytes, .closed)
            } else {
                return (bytes, .timedOut)
            }
        }
    }

    /// Reads one response: the head, then `Content-Length` body bytes unless `hasBody` is false
    /// (a response to HEAD). Bytes past the response are kept in `leftover` for the next call.
    func readResponse(hasBody: Bool = true, leftover: inout [UInt8]) throws -> RawResponse {
        var data = leftover
        let separator = Array("\r\n\r\n".utf8)
        var headEnd: Int?
        while headEnd == nil {
            if let range = data.firstRange(of: separator) {
                headEnd = range.upperBound
                break
            }
            let more = try receiveSome()
            guard !more.isEmpty else { throw SocketError("connection closed before a complete response head", errno: 0) }
            data += more
        }
        let head = String(decoding: data[..<headEnd!], as: UTF8.self)
        var lines = head.components(separatedBy: "\r\n").filter { !$0.isEmpty }
        let statusLine = lines.removeFirst().split(separator: " ", maxSplits: 2)
        guard statusLine.count >= 2, statusLine[0].hasPrefix("HTTP/1."), let status = Int(statusLine[1]) else {
            throw SocketError("bad status line \(statusLine)", errno: 0)
        }
        let headers = lines.map { line -> (name: String, value: String) in
            let parts = line.split(separator: ":", maxSplits: 1)
            return (String(parts[0]), parts.count > 1 ? String(parts[1].drop { $0 == " " }) : "")
        }
        var response = RawResponse(status: status, headers: headers, body: [])
        let length = hasBody ? Int(response.header("Content-Length") ?? "0") ?? 0 : 0
        var rest = Array(data[headEnd!...])
        while rest.count < length {
            let more = try receiveSome()
            guard !more.isEmpty else { throw SocketError("connection closed after \(rest.count) of \(length) body bytes", errno: 0) }
            rest += more
        }
        response.body = Array(rest[..<length])
        leftover = Array(rest[length...])
        return response
    }

    func readResponse(hasBody: Bool = true) throws -> RawResponse {
        var leftover: [UInt8] = []
        let response = try readResponse(hasBody: hasBody, leftover: &leftover)
        #expect(leftover.isEmpty, "unexpected bytes after the response: \(String(decoding: leftover, as: UTF8.self))")
        return response
    }
}

/// Runs blocking work on a thread of its own, so blocking socket reads never hold a thread of
/// the cooperative pool that the server's shutdown, or another test, needs.
func onThread<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try work() }) }.start()
    }
}

/// Counts the requests the responder has seen, so a test can wait until one has arrived.
final class RequestCounter: Sendable {
    private let value = Atomic<Int>(0)
    func increment() { value.add(1, ordering: .relaxed) }
    var count: Int { value.load(ordering: .relaxed) }
}

/// The responder the server tests use: a few fixed routes.
struct TestResponder: HTTPResponder {
    let counter = RequestCounter()

    func respond(to request: ServerRequest) -> ServerResponse {
        counter.increment()
        switch request.path {
        case "/hello":
            return .text(200, "hello \(request.queryValue("name") ?? "world")\n", headers: [("X-Test", "yes")])
        case "/slow":
            return ServerResponse(status: 200, body: ByteBuffer(string: "slow body\n"))
        case "/very-slow":
            return ServerResponse(status: 200, body: ByteBuffer(string: "very slow body\n"))
        case "/tail":
            return ServerResponse(status: 200, body: ByteBuffer(string: "head-part;"), bodyTail: [ByteBuffer(string: "tail-"), ByteBuffer(string: "part\n")])
        case "/slow-tail":
            return ServerResponse(
                status: 200, body: ByteBuffer(string: "head-part;"), bodyTail: [ByteBuffer(string: "tail-"), ByteBuffer(string: "part\n")]
            )
        default:
            return .text(404, "not found\n")
        }
    }

    /// The slow routes answer late, as a responder that waits on other work does.
    func respond(to request: ServerRequest, on eventLoop: any EventLoop) -> EventLoopFuture<ServerResponse> {
        let response = respond(to: request)
        let delay: TimeAmount? =
            switch request.path {
            case "/slow": .milliseconds(300)
            // Long enough that the connection is certainly still busy when a loaded machine
            // gets round to accepting the test's next connection.
            case "/very-slow": .seconds(20)
            case "/slow-tail": .milliseconds(100)
            default: nil
            }
        guard let delay else { return eventLoop.makeSucceededFuture(response) }
        return eventLoop.scheduleTask(in: delay) { response }.futureResult
    }
}

/// Starts a server on an ephemeral port of 127.0.0.1, runs `body`, and always shuts it down.
func withServer<T>(
    responder: TestResponder = TestResponder(),
    configure: (inout HTTPServerConfiguration) -> Void = { _ in },
    _ body: (HTTPServer, Int) async throws -> T
) async throws -> T {
    var configuration = HTTPServerConfiguration(host: "127.0.0.1", port: 0)
    configure(&configuration)
    let server = HTTPServer(
        configuration: configuration,
        responder: responder,
        logger: Logger(label: "HTTPServingTests", factory: { _ in SwiftLogNoOpLogHandler() })
    )
    let port = try await server.start()
    do {
        let result = try await body(server, port)
        await server.shutdown()
        return result
    } catch {
        await server.shutdown()
        throw error
    }
}

/// Polls `condition` every 10 ms until it holds or `timeout` passes.
func eventually(timeout: Duration = .seconds(5), _ condition: () -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try await Task.sleep(for: .milliseconds(10))
    }
    return condition()
}
