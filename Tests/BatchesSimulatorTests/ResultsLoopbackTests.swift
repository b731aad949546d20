import BatchesSimulator
import HTTPServing
import Logging
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A deliberately small blocking HTTP/1.1 client on one TCP connection: it shows exactly what
/// came over the wire (chunk framing, a missing terminating chunk, the connection closing),
/// which a full client would hide. Every read has a 60-second socket timeout, so a broken
/// server fails the test instead of hanging it.
final class RawHTTPConnection {
    struct Response {
        var status: Int
        var headers: [(name: String, value: String)]
        var body: [UInt8]
        var chunks: Int
        /// Whether the body was complete: the terminating chunk, or all of `Content-Length`.
        var complete: Bool

        func header(_ name: String) -> String? {
            headers.first { $0.name.lowercased() == name.lowercased() }?.value
        }
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    private let descriptor: Int32
    private var buffer: [UInt8] = []
    private var closed = false

    init(port: Int) throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw Failure(description: "socket() failed") }
        var timeout = timeval(tv_sec: 60, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard result == 0 else {
            close(descriptor)
            throw Failure(description: "connect() to port \(port) failed")
        }
    }

    deinit {
        close(descriptor)
    }

    func send(_ text: String) throws {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            guard written > 0 else { throw Failure(description: "write() failed") }
            bytes = bytes.dropFirst(written)
        }
    }

    func get(_ target: String, headers: [(name: String, value: String)] = apiHeaders, version: String = "1.1")
        throws -> Response
    {
        var request = "GET \(target) HTTP/\(version)\r\nHost: 127.0.0.1\r\n"
        for header in headers { request += "\(header.name): \(header.value)\r\n" }
        try send(request + "\r\n")
        return try readResponse()
    }

    /// Reads more bytes; false once the peer has closed.
    private func fill() throws -> Bool {
        guard !closed else { return false }
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
        if count < 0 { throw Failure(description: "read() failed or timed out (errno \(errno))") }
        if count == 0 {
            closed = true
            return false
        }
        buffer += chunk[0..<count]
        return true
    }

    private func line() throws -> String? {
        while true {
            if let end = buffer.firstIndex(of: 0x0A) {
                let text = String(decoding: buffer[..<end], as: UTF8.self)
                buffer.removeSubrange(...end)
                return text.hasSuffix("\r") ? String(text.dropLast()) : text
            }
            guard try fill() else { return nil }
        }
    }

    private func take(_ count: Int) throws -> [UInt8]? {
        while buffer.count < count {
            guard try fill() else { return nil }
        }
        let bytes = Array(buffer[..<count])
        buffer.removeFirst(count)
        return bytes
    }

    var peerClosed: Bool {
        get throws {
            if !buffer.isEmpty { return false }
            return try !fill()
        }
    }

    func readResponse() throws -> Response {
        guard let statusLine = try line() else { throw Failure(description: "closed before a response") }
        let parts = statusLine.split(separator: " ")
        guard parts.count >= 2, let status = Int(parts[1]) else { throw Failure(description: "bad status line") }
        var headers: [(name: String, value: String)] = []
        while let header = try line(), !header.isEmpty {
            let pieces = header.split(separator: ":", maxSplits: 1)
            headers.append((String(pieces[0]), String(pieces.count > 1 ? pieces[1] : "").trimmingCharacters(in: " ")))
        }
        var response = Response(status: status, headers: headers, body: [], chunks: 0, complete: false)
        if response.header("transfer-encoding")?.lowercased() == "chunked" {
            while let sizeLine = try line() {
                guard let size = Int(sizeLine.split(separator: ";")[0], radix: 16) else {
                    throw Failure(description: "bad chunk size line '\(sizeLine)'")
                }
                if size == 0 {
                    _ = try line()
                    response.complete = true
                    break
                }
                guard let data = try take(size) else {
                    response.body += buffer
                    buffer.removeAll()
                    break
                }
                response.body += data
                response.chunks += 1
                guard try take(2) != nil else { break }
            }
        } else if let length = response.header("content-length").flatMap({ Int($0) }) {
            if let data = try take(length) {
                response.body = data
                response.complete = true
            }
        } else {
            while try fill() {}
            response.body = buffer
            buffer.removeAll()
            response.complete = true
        }
        return response
    }
}

extension String {
    fileprivate func trimmingCharacters(in character: Character) -> String {
        var text = Substring(self)
        while text.first == character { text.removeFirst() }
        while text.last == character { text.removeLast() }
        return String(text)
    }
}

/// Runs a real listener on an ephemeral loopback port around `body`, and always shuts it down.
func withSimulatorServer<T>(
    _ workspace: SimulatedWorkspace, _ body: (Int) async throws -> T
) async throws -> T {
    let server = HTTPServer(
        configuration: HTTPServerConfiguration(host: "127.0.0.1", port: 0),
        responder: SimulatorResponder(workspace: workspace),
        logger: Logger(label: "simulator-tests")
    )
    let port = try await server.start()
    do {
        let result = try await body(port)
        await server.shutdown()
        return result
    } catch {
        await server.shutdown()
        throw error
    }
}

@Suite("Results over loopback")
struct ResultsLoopbackTests {
    static func workspace() throws -> (SimulatedWorkspace, String) {
        let workspace = makeWorkspace(batches: 20, active: 2)
        let id = try #require(
            try workspace.createBatches(
                BatchSpec(status: .ended, counts: RequestCounts(succeeded: 3000, errored: 150, canceled: 40))
            ).first)
        return (workspace, id)
    }

    @Test("a results file arrives chunked, complete and byte-identical, and the connection stays usable")
    func streamedOverTheWire() async throws {
        let (workspace, id) = try Self.workspace()
        let expected = try #require(workspace.renderedResults(batchID: id))
        try await withSimulatorServer(workspace) { port in
            let connection = try RawHTTPConnection(port: port)
            let response = try connection.get(resultsPath(id))
            #expect(response.status == 200)
            #expect(response.header("content-type") == "application/x-jsonl")
            #expect(response.header("content-disposition")?.hasPrefix("attachment") == true)
            #expect(response.header("content-length") == nil)
            #expect(response.complete)
            #expect(response.chunks > 1)
            #expect(response.body == expected)
            // Keep-alive: the next request on the same connection is answered normally.
            let page = try connection.get("/v1/messages/batches?limit=5")
            #expect(page.status == 200 && page.complete)
            #expect(String(decoding: page.body, as: UTF8.self).contains("\"has_more\":true"))
        }
    }

    @Test("the cut fault closes the connection after exactly N bytes, without the terminating chunk")
    func cutOverTheWire() async throws {
        let (workspace, id) = try Self.workspace()
        let expected = try #require(workspace.renderedResults(batchID: id))
        workspace.enqueueResultsFault(.cut(afterBytes: 100_000))
        try await withSimulatorServer(workspace) { port in
            let connection = try RawHTTPConnection(port: port)
            let response = try connection.get(resultsPath(id))
            #expect(response.status == 200)
            #expect(!response.complete)
            #expect(response.body == Array(expected.prefix(100_000)))
            #expect(try connection.peerClosed)
            // A fresh connection gets the whole file.
            let retry = try RawHTTPConnection(port: port).get(resultsPath(id))
            #expect(retry.complete && retry.body == expected)
        }
    }

    @Test("the slow fault still delivers the whole file, in many small chunks")
    func slowOverTheWire() async throws {
        let workspace = makeWorkspace()
        let id = try #require(
            try workspace.createBatches(BatchSpec(status: .ended, counts: RequestCounts(succeeded: 40))).first)
        let expected = try #require(workspace.renderedResults(batchID: id))
        workspace.enqueueResultsFault(.slow(delayMilliseconds: 5, pieceBytes: 512))
        try await withSimulatorServer(workspace) { port in
            let response = try RawHTTPConnection(port: port).get(resultsPath(id))
            #expect(response.complete && response.body == expected)
            #expect(response.chunks >= expected.count / 2048)
        }
    }

    @Test("an HTTP/1.0 client gets the file without chunking, ended by the connection closing")
    func http10() async throws {
        let (workspace, id) = try Self.workspace()
        let expected = try #require(workspace.renderedResults(batchID: id))
        try await withSimulatorServer(workspace) { port in
            let connection = try RawHTTPConnection(port: port)
            let response = try connection.get(resultsPath(id), version: "1.0")
            #expect(response.status == 200)
            #expect(response.header("transfer-encoding") == nil)
            #expect(response.body == expected)
        }
    }

    @Test("a large file streams through in full: bytes received equal the truth's byte count")
    func largeFile() async throws {
        let workspace = makeWorkspace()
        let id = try #require(
            try workspace.createBatches(BatchSpec(status: .ended, counts: RequestCounts(succeeded: 3000))).first)
        try workspace.setResultsProfile(ResultsProfile(textBytes: 10_240), batchID: id)
        let truth = try #require(workspace.resultsTruth(batchID: id))
        try await withSimulatorServer(workspace) { port in
            let clock = ContinuousClock()
            var response: RawHTTPConnection.Response?
            let elapsed = try clock.measure { response = try RawHTTPConnection(port: port).get(resultsPath(id)) }
            let received = try #require(response)
            #expect(received.complete)
            #expect(received.body.count == truth.bytes && truth.bytes > 30_000_000)
            let rate = Double(received.body.count) / 1e6 / max(elapsed.seconds, 1e-9)
            print("results over loopback (debug build): \(received.body.count) bytes in \(elapsed), \(Int(rate)) MB/s")
        }
    }
}

extension Duration {
    var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
