import BatchesAPI
import CurlHTTP
import Logging
import Synchronization
import Testing

/// Answers GETs from a script, recording what was asked. A unit-test stand-in for libcurl: the
/// integration tests run the real binary over real loopback HTTP instead.
final class ScriptedHTTP: HTTPGetting {
    private let script: Mutex<[Result<HTTPResponse, CurlError>]>
    private let requests = Mutex<[(url: String, headers: [(name: String, value: String)])]>([])

    init(_ script: [Result<HTTPResponse, CurlError>]) {
        self.script = Mutex(script)
    }

    var requestedURLs: [String] { requests.withLock { $0.map(\.url) } }
    var requestedHeaders: [[(name: String, value: String)]] { requests.withLock { $0.map(\.headers) } }

    func get(url: String, headers: [(name: String, value: String)]) async throws(CurlError) -> HTTPResponse {
        requests.withLock { $0.append((url, headers)) }
        let next = script.withLock { $0.isEmpty ? nil : $0.removeFirst() }
        guard let next else { throw CurlError(kind: .transport, code: 7, message: "script exhausted") }
        return try next.get()
    }
}

/// Collects the delays the client asked to sleep for.
final class SleepRecorder: Sendable {
    private let delays = Mutex<[Duration]>([])
    var recorded: [Duration] { delays.withLock { $0 } }
    func record(_ delay: Duration) { delays.withLock { $0.append(delay) } }
}

func jsonPage(ids: [String], hasMore: Bool, lastID: String? = nil) -> Result<HTTPResponse, CurlError> {
    let batches = ids.map { id in
        #"{"id":"\#(id)","type":"message_batch","processing_status":"ended","request_counts":{"processing":0,"succeeded":1,"errored":0,"canceled":0,"expired":0},"created_at":"2024-08-20T18:37:24Z","expires_at":"2024-08-21T18:37:24Z","ended_at":"2024-08-20T19:00:00Z","cancel_initiated_at":null,"archived_at":null,"results_url":null}"#
    }
    let last = lastID.map { "\"\($0)\"" } ?? (ids.last.map { "\"\($0)\"" } ?? "null")
    let first = ids.first.map { "\"\($0)\"" } ?? "null"
    let body = #"{"data":[\#(batches.joined(separator: ","))],"has_more":\#(hasMore),"first_id":\#(first),"last_id":\#(last)}"#
    return .success(HTTPResponse(status: 200, headers: [("content-type", "application/json"), ("request-id", "req_ok")], body: Array(body.utf8)))
}

func errorResponse(_ status: Int, type: String, headers: [(String, String)] = []) -> Result<HTTPResponse, CurlError> {
    let body = #"{"type":"error","error":{"type":"\#(type)","message":"something about \#(type)"},"request_id":"req_body"}"#
    return .success(
        HTTPResponse(
            status: status,
            headers: [("content-type", "application/json"), ("request-id", "req_\(status)")] + headers.map { (name: $0.0, value: $0.1) },
            body: Array(body.utf8)
        )
    )
}

@Suite("Paging through the list endpoint")
struct PaginationTests {
    static func client(_ http: ScriptedHTTP, maxPages: Int = 10, maxRetries: Int = 2, auth: AuthScheme = .xAPIKey, sleeps: SleepRecorder? = nil)
        -> BatchesClient
    {
        BatchesClient(
            configuration: .init(
                baseURL: "http://127.0.0.1:1/",
                keySource: APIKeySource(key: APIKey("sk-test-secret")),
                authScheme: auth,
                pageLimit: 2,
                maxPages: maxPages,
                retryPolicy: RetryPolicy(maxRetries: maxRetries)
            ),
            http: http,
            logger: Logger(label: "test"),
            sleep: { duration in sleeps?.record(duration) },
            now: { 0 }
        )
    }

    @Test("Follows after_id = last_id while has_more, and returns every batch in order")
    func followsCursor() async throws {
        let http = ScriptedHTTP([
            jsonPage(ids: ["b5", "b4"], hasMore: true), jsonPage(ids: ["b3", "b2"], hasMore: true), jsonPage(ids: ["b1"], hasMore: false),
        ])
        let batches = try await Self.client(http).listAll { _ in }
        #expect(batches.map { $0.id } == ["b5", "b4", "b3", "b2", "b1"])
        #expect(
            http.requestedURLs == [
                "http://127.0.0.1:1/v1/messages/batches?limit=2",
                "http://127.0.0.1:1/v1/messages/batches?limit=2&after_id=b4",
                "http://127.0.0.1:1/v1/messages/batches?limit=2&after_id=b2",
            ])
    }

    @Test("Sends the key, anthropic-version and no Authorization header by default; bearer when asked")
    func headers() async throws {
        let http = ScriptedHTTP([jsonPage(ids: [], hasMore: false), jsonPage(ids: [], hasMore: false)])
        _ = try await Self.client(http).listAll { _ in }
        _ = try await Self.client(http, auth: AuthScheme.bearer).listAll { _ in }
        let first = Dictionary(uniqueKeysWithValues: http.requestedHeaders[0].map { ($0.name, $0.value) })
        #expect(first["x-api-key"] == "sk-test-secret")
        #expect(first["anthropic-version"] == "2023-06-01")
        #expect(first["authorization"] == nil)
        let second = Dictionary(uniqueKeysWithValues: http.requestedHeaders[1].map { ($0.name, $0.value) })
        #expect(second["authorization"] == "Bearer sk-test-secret")
        #expect(second["x-api-key"] == nil)
    }

    @Test("A repeated cursor ends the listing with a pagination error")
    func repeatedCursor() async {
        await expectReason(.pagination, http: ScriptedHTTP([jsonPage(ids: ["b3", "b2"], hasMore: true), jsonPage(ids: ["b9"], hasMore: true, lastID: "b2")]))
    }

    @Test("has_more with an empty page or without last_id is a pagination error")
    func hasMoreWithoutData() async {
        await expectReason(.pagination, http: ScriptedHTTP([jsonPage(ids: [], hasMore: true)]))
        let noLastID: Result<HTTPResponse, CurlError> = .success(
            HTTPResponse(
                status: 200, headers: [("content-type", "application/json")],
                body: Array(
                    #"{"data":[{"id":"x","processing_status":"ended","request_counts":{}}],"has_more":true,"first_id":"x","last_id":null}"#.utf8))
        )
        await expectReason(.pagination, http: ScriptedHTTP([noLastID]))
    }

    @Test("An endless listing stops at maxPages")
    func maxPages() async {
        let endless = (0..<20).map { jsonPage(ids: ["b\(1000 - $0)"], hasMore: true) }
        let http = ScriptedHTTP(endless)
        await expectReason(.pagination, http: http, maxPages: 5)
        #expect(http.requestedURLs.count == 5)
    }

    @Test("A retried 529 then success yields the page; each attempt is observed")
    func retryThenSuccess() async throws {
        let sleeps = SleepRecorder()
        let http = ScriptedHTTP([errorResponse(529, type: "overloaded_error", headers: [("retry-after", "1")]), jsonPage(ids: ["b1"], hasMore: false)])
        let codes = Mutex<[String]>([])
        let batches = try await Self.client(http, sleeps: sleeps).listAll { observation in codes.withLock { $0.append(observation.code) } }
        #expect(batches.map { $0.id } == ["b1"])
        #expect(codes.withLock { $0 } == ["529", "200"])
        #expect(sleeps.recorded == [.seconds(1)])
    }

    @Test(
        "Errors are classified by reason and carry the API's type and request id",
        arguments: [
            (401, "authentication_error", BatchesAPIError.Reason.auth),
            (403, "permission_error", .auth),
            (404, "not_found_error", .http4xx),
            (400, "invalid_request_error", .http4xx),
        ])
    func classification(status: Int, type: String, reason: BatchesAPIError.Reason) async {
        let http = ScriptedHTTP([errorResponse(status, type: type)])
        do {
            _ = try await Self.client(http).listAll { _ in }
            Issue.record("expected a failure")
        } catch {
            #expect(error.reason == reason)
            #expect(error.status == status)
            #expect(error.errorType == type)
            #expect(error.requestID == "req_\(status)")
            #expect(error.message == "something about \(type)")
        }
        #expect(http.requestedURLs.count == 1, "not retried")
    }

    @Test(
        "Retries run out into the last failure's reason",
        arguments: [
            (429, "rate_limit_error", BatchesAPIError.Reason.rateLimited), (500, "api_error", .http5xx), (529, "overloaded_error", .http5xx),
        ])
    func retriesExhausted(status: Int, type: String, reason: BatchesAPIError.Reason) async {
        let http = ScriptedHTTP(Array(repeating: errorResponse(status, type: type), count: 5))
        await expectReason(reason, http: http, maxRetries: 2)
        #expect(http.requestedURLs.count == 3)
    }

    @Test("An HTML error page from a proxy is reported as such, not quoted")
    func htmlError() async {
        let html: Result<HTTPResponse, CurlError> = .success(
            HTTPResponse(status: 502, headers: [("content-type", "text/html")], body: Array("<html>bad gateway</html>".utf8))
        )
        let http = ScriptedHTTP([html])
        do {
            _ = try await Self.client(http, maxRetries: 0).listAll { _ in }
            Issue.record("expected a failure")
        } catch {
            #expect(error.reason == .http5xx)
            #expect(error.message.contains("non-API body (text/html"))
        }
    }

    @Test("A 200 with a non-JSON content type is a decode error")
    func wrongContentType() async {
        let plain: Result<HTTPResponse, CurlError> = .success(
            HTTPResponse(status: 200, headers: [("content-type", "text/plain")], body: Array(#"{"data":[],"has_more":false}"#.utf8))
        )
        await expectReason(.decode, http: ScriptedHTTP([plain]))
    }

    @Test(
        "Transport failures map to timeout and transport reasons",
        arguments: [
            (CurlError.Kind.timeout, BatchesAPIError.Reason.timeout), (.transport, .transport), (.tls, .transport), (.bodyTooLarge, .decode),
        ])
    func transport(kind: CurlError.Kind, reason: BatchesAPIError.Reason) async {
        let failure: Result<HTTPResponse, CurlError> = .failure(CurlError(kind: kind, code: 28, message: "boom"))
        await expectReason(reason, http: ScriptedHTTP(Array(repeating: failure, count: 3)), maxRetries: 2)
    }

    @Test("The key never shows in an error's text or the key's own descriptions")
    func keyNeverInText() async {
        let key = APIKey("sk-test-secret")
        #expect("\(key)" == "<redacted>")
        #expect(String(reflecting: key) == "<redacted>")
        var dumped = ""
        dump(key, to: &dumped)
        #expect(!dumped.contains("sk-test-secret"))
        let http = ScriptedHTTP([errorResponse(401, type: "authentication_error")])
        do {
            _ = try await Self.client(http).listAll { _ in }
        } catch {
            #expect(!error.description.contains("sk-test-secret"))
        }
    }

    func expectReason(_ reason: BatchesAPIError.Reason, http: ScriptedHTTP, maxPages: Int = 10, maxRetries: Int = 2) async {
        do {
            _ = try await Self.client(http, maxPages: maxPages, maxRetries: maxRetries).listAll { _ in }
            Issue.record("expected a \(reason) failure")
        } catch {
            #expect(error.reason == reason, "\(error)")
        }
    }
}
