import HTTPServing
import MetricsServer
import NIOCore
import NIOPosix
import Testing

@Suite("Basic auth")
struct BasicAuthTests {
    // bcrypt (cost 10) of "secret", made with libxcrypt.
    static let hash = "$2b$10$3qVAx/fp.iXlPnbOQ1z4ee8k0.oyz4QHxPqP/xRLYzy7o5a/2QyZC"

    struct Inner: HTTPResponder {
        func respond(to request: ServerRequest) -> ServerResponse { .text(200, "metrics") }
    }

    static func request(_ authorization: String?, path: String = "/metrics") -> ServerRequest {
        ServerRequest(method: "GET", path: path, headers: authorization.map { [("Authorization", $0)] } ?? [])
    }

    @Test("bcrypt verification accepts the password and nothing else")
    func bcrypt() {
        let verifier = BcryptVerifier()
        #expect(verifier.verify(password: "secret", hash: Self.hash))
        #expect(!verifier.verify(password: "Secret", hash: Self.hash))
        #expect(!verifier.verify(password: "", hash: Self.hash))
        #expect(!verifier.verify(password: "secret", hash: "not-a-hash"))
    }

    @Test(
        "Right credentials pass; wrong, unknown, malformed or missing ones get 401 with WWW-Authenticate",
        arguments: [
            ("Basic YWxpY2U6c2VjcmV0", 200),  // alice:secret
            ("basic YWxpY2U6c2VjcmV0", 200),  // scheme is case-insensitive
            ("Basic YWxpY2U6d3Jvbmc=", 401),  // alice:wrong
            ("Basic bWFsbG9yeTpzZWNyZXQ=", 401),  // mallory:secret (unknown user)
            ("Basic !!!", 401),
            ("Bearer YWxpY2U6c2VjcmV0", 401),
        ])
    func credentials(header: String, status: Int) async throws {
        let responder = BasicAuthResponder(wrapping: Inner(), users: ["alice": Self.hash])
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let response = try await responder.respond(to: Self.request(header), on: loop).get()
        #expect(response.status == status)
        if status == 401 {
            #expect(response.headers.contains { $0.name == "WWW-Authenticate" && $0.value.hasPrefix("Basic realm=") })
        }
    }

    @Test("No credentials: 401; /-/healthy and /-/ready stay open for probes")
    func missingAndOpenPaths() async throws {
        let responder = BasicAuthResponder(wrapping: Inner(), users: ["alice": Self.hash])
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        #expect(try await responder.respond(to: Self.request(nil), on: loop).get().status == 401)
        #expect(try await responder.respond(to: Self.request(nil, path: "/-/healthy"), on: loop).get().status == 200)
        #expect(try await responder.respond(to: Self.request(nil, path: "/-/ready"), on: loop).get().status == 200)
        #expect(try await responder.respond(to: Self.request(nil, path: "/-/reload"), on: loop).get().status == 401)
    }
}
