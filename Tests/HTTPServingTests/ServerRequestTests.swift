import HTTPServing
import Testing

@Suite("ServerRequest")
struct ServerRequestTests {
    static func pairs(_ request: ServerRequest) -> [String] {
        request.query.map { "\($0.name)=\($0.value)" }
    }

    @Test("A target splits into the path and the query parameters in order")
    func target() {
        let request = ServerRequest(method: "GET", target: "/p?a=1&b=two", headers: [])
        #expect(request.method == "GET")
        #expect(request.path == "/p")
        #expect(Self.pairs(request) == ["a=1", "b=two"])
    }

    @Test(
        "Targets without a query, with an empty query or odd pairs",
        arguments: [
            ("/metrics", "/metrics", [String]()),
            ("/p?", "/p", []),
            ("/p?flag", "/p", ["flag="]),
            ("/p?a=1=2", "/p", ["a=1=2"]),
            ("/p?a=1&&b=2&", "/p", ["a=1", "b=2"]),
            ("/p?=v", "/p", ["=v"]),
            ("/p?a=1?b=2", "/p", ["a=1?b=2"]),
            ("/a%20b?x=1", "/a%20b", ["x=1"]),
            ("", "", []),
        ]
    )
    func targets(target: String, path: String, query: [String]) {
        let request = ServerRequest(method: "GET", target: target, headers: [])
        #expect(request.path == path)
        #expect(Self.pairs(request) == query)
    }

    @Test(
        "An absolute-form target (RFC 9112 §3.2.2) is reduced to its path and query",
        arguments: [
            ("http://localhost:9100/metrics", "/metrics", [String]()),
            ("http://api.example.com/v1/messages/batches?limit=100&after_id=x", "/v1/messages/batches", ["limit=100", "after_id=x"]),
            ("HTTPS://host/p", "/p", []),
            ("http://host", "/", []),
            ("http://host:8080", "/", []),
        ]
    )
    func absoluteForm(target: String, path: String, query: [String]) {
        let request = ServerRequest(method: "GET", target: target, headers: [])
        #expect(request.path == path)
        #expect(Self.pairs(request) == query)
    }

    // BUG (see report): with an empty path the query is dropped ("http://host?x=1"), or a '/'
    // inside the query is taken for the start of the path ("http://host?next=/a").
    @Test(
        "An absolute-form target with an empty path keeps its query and gets the path /",
        arguments: [
            ("http://host?x=1", "/", ["x=1"]),
            ("http://host:9100?next=/a", "/", ["next=/a"]),
        ]
    )
    func absoluteFormEmptyPath(target: String, path: String, query: [String]) {
        let request = ServerRequest(method: "GET", target: target, headers: [])
        #expect(request.path == path)
        #expect(Self.pairs(request) == query)
    }

    @Test(
        "Query names and values are percent-decoded, '+' is a space, malformed escapes are kept as sent",
        arguments: [
            ("%2F", "/"),
            ("%2f", "/"),
            ("a+b", "a b"),
            ("a%20b", "a b"),
            ("%2B", "+"),
            ("%C3%A9", "é"),
            ("%zz", "%zz"),
            ("%2", "%2"),
            ("%", "%"),
            ("100%", "100%"),
            ("%%41", "%A"),
            ("%g1%41", "%g1A"),
            ("%FF", "\u{FFFD}"),
        ]
    )
    func percentDecoding(raw: String, decoded: String) {
        let request = ServerRequest(method: "GET", target: "/p?\(raw)=\(raw)", headers: [])
        #expect(request.query.count == 1)
        #expect(request.query.first?.name == decoded)
        #expect(request.query.first?.value == decoded)
    }

    @Test("header(_:) matches names case-insensitively and returns the first value")
    func headers() {
        let request = ServerRequest(
            method: "GET",
            target: "/",
            headers: [("Accept", "text/plain"), ("X-Thing", "one"), ("x-thing", "two")]
        )
        #expect(request.header("accept") == "text/plain")
        #expect(request.header("ACCEPT") == "text/plain")
        #expect(request.header("X-THING") == "one")
        #expect(request.header("Accept-Encoding") == nil)
    }

    @Test("queryValue returns the first value of a parameter, decoded, or nil")
    func queryValue() {
        let request = ServerRequest(method: "GET", target: "/p?a=1&b=x%26y&a=2&empty=", headers: [])
        #expect(request.queryValue("a") == "1")
        #expect(request.queryValue("b") == "x&y")
        #expect(request.queryValue("empty") == "")
        #expect(request.queryValue("A") == nil)
        #expect(request.queryValue("missing") == nil)
    }

    @Test("The memberwise initialiser keeps what it is given, undecoded")
    func memberwise() {
        let request = ServerRequest(method: "HEAD", path: "/x%20y", query: [(name: "a+b", value: "%41")])
        #expect(request.method == "HEAD")
        #expect(request.path == "/x%20y")
        #expect(Self.pairs(request) == ["a+b=%41"])
        #expect(request.headers.isEmpty)
    }
}
