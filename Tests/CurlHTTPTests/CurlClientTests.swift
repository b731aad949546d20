import BatchesSimulator
import CurlHTTP
import HTTPServing
import Logging
import NIOCore
import Testing

/// A loopback server whose answers depend on the path, to drive libcurl through each case.
struct ScriptedResponder: HTTPResponder {
    func respond(to request: ServerRequest) -> ServerResponse {
        switch request.path {
        case "/echo-headers":
            let lines = request.headers.map { "\($0.name.lowercased())=\($0.value)" }.sorted().joined(separator: "\n")
            return .text(200, lines, headers: [("X-Multi", "one"), ("x-multi", "two")])
        case "/big":
            return ServerResponse(status: 200, body: ByteBuffer(repeating: UInt8(ascii: "x"), count: 200_000))
        case "/slow":
            var response = ServerResponse(status: 200, body: ByteBuffer(string: "late"))
            WireFault.delay(.seconds(30)).mark(&response)
            return response
        case "/truncated":
            var response = ServerResponse(status: 200, body: ByteBuffer(string: String(repeating: "y", count: 1000)))
            WireFault.truncateBody(afterBytes: 10).mark(&response)
            return response
        case "/teapot":
            return .text(418, "short and stout")
        case "/redirect":
            // Where a redirect would send the API key if it were followed.
            return .text(302, "moved", headers: [("Location", "/echo-headers")])
        default:
            return .text(200, "hello")
        }
    }

    /// Misbehaves on the wire as the simulator does, so libcurl meets the same faults.
    func makeChannelHandlers() -> [any ChannelHandler] {
        [WireFaultHandler()]
    }
}

@Suite("libcurl client over loopback", .serialized)
struct CurlClientTests {
    static func withServer(_ body: (Int) async throws -> Void) async throws {
        let server = HTTPServer(
            configuration: HTTPServerConfiguration(host: "127.0.0.1", port: 0), responder: ScriptedResponder(), logger: Logger(label: "test"))
        let port = try await server.start()
        do {
            try await body(port)
        } catch {
            await server.shutdown()
            throw error
        }
        await server.shutdown()
    }

    static func client(timeout: Duration = .seconds(10), maxBodyBytes: Int = 1 << 20) throws -> CurlClient {
        try CurlClient(configuration: .init(connectTimeout: .seconds(2), requestTimeout: timeout, maxBodyBytes: maxBodyBytes, userAgent: "test-agent/1"))
    }

    @Test("A GET returns status, lower-cased headers in order, and the body; non-2xx is a response, not an error")
    func basicGet() async throws {
        try await Self.withServer { port in
            let client = try Self.client()
            let response = try await client.get(
                url: "http://127.0.0.1:\(port)/echo-headers", headers: [("x-api-key", "k1"), ("anthropic-version", "2023-06-01")])
            #expect(response.status == 200)
            #expect(response.headers.filter { $0.name == "x-multi" }.map(\.value) == ["one", "two"])
            #expect(response.header("X-MULTI") == "one")
            let echoed = String(decoding: response.body, as: UTF8.self)
            #expect(echoed.contains("x-api-key=k1"))
            #expect(echoed.contains("anthropic-version=2023-06-01"))
            #expect(echoed.contains("user-agent=test-agent/1"))
            let teapot = try await client.get(url: "http://127.0.0.1:\(port)/teapot", headers: [])
            #expect(teapot.status == 418)
            #expect(String(decoding: teapot.body, as: UTF8.self) == "short and stout")
        }
    }

    @Test("A redirect is returned as it is, never followed (the API key stays with the host it was meant for)")
    func noRedirects() async throws {
        try await Self.withServer { port in
            let client = try Self.client()
            let response = try await client.get(url: "http://127.0.0.1:\(port)/redirect", headers: [("x-api-key", "k1")])
            #expect(response.status == 302)
            #expect(response.header("location") == "/echo-headers")
            #expect(String(decoding: response.body, as: UTF8.self) == "moved", "the body is the redirect's, not the target's")
        }
    }

    @Test("Consecutive requests reuse one kept-alive connection")
    func keepAlive() async throws {
        try await Self.withServer { port in
            let client = try Self.client()
            let first = try await client.get(url: "http://127.0.0.1:\(port)/", headers: [])
            let second = try await client.get(url: "http://127.0.0.1:\(port)/", headers: [])
            #expect(first.connectionsOpened == 1)
            #expect(second.connectionsOpened == 0)
        }
    }

    @Test("The request timeout ends a hung response with a timeout error")
    func timeout() async throws {
        try await Self.withServer { port in
            let client = try Self.client(timeout: .milliseconds(300))
            await #expect { _ = try await client.get(url: "http://127.0.0.1:\(port)/slow", headers: []) } throws: { error in
                (error as? CurlError)?.kind == .timeout
            }
        }
    }

    @Test("A body over the bound aborts the transfer")
    func bodyTooLarge() async throws {
        try await Self.withServer { port in
            let client = try Self.client(maxBodyBytes: 100_000)
            await #expect { _ = try await client.get(url: "http://127.0.0.1:\(port)/big", headers: []) } throws: { error in
                (error as? CurlError)?.kind == .bodyTooLarge
            }
            // The same client recovers for the next request.
            #expect(try await client.get(url: "http://127.0.0.1:\(port)/", headers: []).status == 200)
        }
    }

    @Test("A body cut short of its Content-Length is a transport error")
    func truncated() async throws {
        try await Self.withServer { port in
            let client = try Self.client()
            await #expect { _ = try await client.get(url: "http://127.0.0.1:\(port)/truncated", headers: []) } throws: { error in
                (error as? CurlError)?.kind == .transport
            }
        }
    }

    @Test("Cancelling the task aborts a transfer in progress promptly")
    func cancellation() async throws {
        try await Self.withServer { port in
            let client = try Self.client(timeout: .seconds(60))
            let task = Task { try await client.get(url: "http://127.0.0.1:\(port)/slow", headers: []) }
            try await Task.sleep(for: .milliseconds(200))
            task.cancel()
            let result = await task.result
            guard case .failure(let error) = result else {
                Issue.record("expected cancellation")
                return
            }
            #expect((error as? CurlError)?.kind == .cancelled)
        }
    }

    @Test("A refused connection is a transport error")
    func refused() async throws {
        let client = try Self.client()
        // Port 1 on loopback is closed on any sane test machine.
        await #expect { _ = try await client.get(url: "http://127.0.0.1:1/", headers: []) } throws: { error in
            (error as? CurlError)?.kind == .transport
        }
    }
}
