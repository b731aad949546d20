import BatchesAPI
import Testing

@Suite("Where results may be downloaded from")
struct ResultsURLTests {
    @Test(
        "Only the API base URL's scheme, host and port are allowed; relative URLs resolve against it",
        arguments: [
            (
                "https://api.anthropic.com/v1/messages/batches/b/results", "https://api.anthropic.com",
                ResultsURLPolicy.Resolution.allowed("https://api.anthropic.com/v1/messages/batches/b/results")
            ),
            ("https://API.Anthropic.com:443/v1/x", "https://api.anthropic.com", .allowed("https://API.Anthropic.com:443/v1/x")),
            ("/v1/messages/batches/b/results", "https://api.anthropic.com/", .allowed("https://api.anthropic.com/v1/messages/batches/b/results")),
            ("/v1/x", "http://127.0.0.1:8080/prefix", .allowed("http://127.0.0.1:8080/v1/x")),
            ("v1/x", "http://127.0.0.1:8080/prefix/", .allowed("http://127.0.0.1:8080/prefix/v1/x")),
            ("//api.anthropic.com/v1/x", "https://api.anthropic.com", .allowed("https://api.anthropic.com/v1/x")),
            ("https://files.anthropic.com/v1/x", "https://api.anthropic.com", .foreignHost("files.anthropic.com")),
            ("http://api.anthropic.com/v1/x", "https://api.anthropic.com", .foreignHost("api.anthropic.com")),
            ("https://api.anthropic.com:8443/v1/x", "https://api.anthropic.com", .foreignHost("api.anthropic.com")),
            ("//evil.example/v1/x", "https://api.anthropic.com", .foreignHost("evil.example")),
            ("https://api.anthropic.com@evil.example/v1/x", "https://api.anthropic.com", .invalid),
            ("ftp://api.anthropic.com/v1/x", "https://api.anthropic.com", .invalid),
            ("", "https://api.anthropic.com", .invalid),
            ("/v1/x y", "https://api.anthropic.com", .invalid),
            ("http://[::1]:8080/v1/x", "http://[::1]:8080", .allowed("http://[::1]:8080/v1/x")),
            ("http://[::1]:8081/v1/x", "http://[::1]:8080", .foreignHost("[::1]")),
        ]
    )
    func resolve(url: String, base: String, expected: ResultsURLPolicy.Resolution) {
        #expect(ResultsURLPolicy.resolve(url, baseURL: base) == expected)
    }
}
