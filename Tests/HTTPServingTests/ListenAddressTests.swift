import HTTPServing
import Testing

@Suite("Listen addresses")
struct ListenAddressTests {
    @Test(
        "host:port, :port and [ipv6]:port parse to a host and a port",
        arguments: [
            ("127.0.0.1:9090", "127.0.0.1", 9090), (":9090", "0.0.0.0", 9090), ("[::1]:0", "::1", 0),
            ("localhost:65535", "localhost", 65_535), ("[::]:8080", "::", 8080),
        ]
    )
    func parses(text: String, host: String, port: Int) throws {
        let address = try ListenAddress.parse(text)
        #expect(address == ListenAddress(host: host, port: port))
    }

    @Test(
        "Anything else is refused with the text it was given",
        arguments: ["9090", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:-1", "::1:9090", "[::1:9090", "[]:9090", "host:http", "host:٩٠"]
    )
    func refuses(text: String) {
        #expect(throws: ListenAddress.ParseError(input: text)) { try ListenAddress.parse(text) }
        #expect(ListenAddress.ParseError(input: text).description.contains("\"\(text)\""))
    }

    @Test("Printed back with brackets around IPv6 hosts")
    func printed() {
        #expect(ListenAddress(host: "::1", port: 80).description == "[::1]:80")
        #expect(ListenAddress(host: "127.0.0.1", port: 80).description == "127.0.0.1:80")
    }
}
