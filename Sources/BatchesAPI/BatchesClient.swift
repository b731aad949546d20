import CurlHTTP
import Logging
import RFC3339

/// An API key that cannot leak through string interpolation, logging or `dump`: every textual
/// form is redacted, and the only way to the secret is ``revealedForRequest``.
public struct APIKey: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    private let secret: String

    public init(_ secret: String) {
        self.secret = secret
    }

    /// The raw key, for the one place that puts it in a request header.
    public var revealedForRequest: String { secret }
    public var description: String { "<redacted>" }
    public var debugDescription: String { "<redacted>" }
    public var customMirror: Mirror { Mirror(self, children: []) }
}

/// How the key travels: `x-api-key` as the API reference documents, or `Authorization: Bearer`
/// as the newest SDKs send it.
public enum AuthScheme: String, Sendable, CaseIterable {
    case xAPIKey = "x-api-key"
    case bearer
}

/// Performs HTTP GETs; ``CurlClient`` in production. A protocol so pagination logic can be
/// unit-tested on scripted pages.
public protocol HTTPGetting: Sendable {
    func get(url: String, headers: [(name: String, value: String)]) async throws(CurlError) -> HTTPResponse
}

extension CurlClient: HTTPGetting {}

/// One request attempt as the metrics see it.
public struct RequestObservation: Sendable {
    /// The HTTP status as text, or `error` when no response came.
    public var code: String
    public var duration: Duration
}

/// Reads `GET /v1/messages/batches`, page by page, with retries and pagination safety.
public struct BatchesClient: Sendable {
    public struct Configuration: Sendable {
        /// Scheme, host and optional port, e.g. `https://api.anthropic.com`; no trailing slash needed.
        public var baseURL: String
        public var apiKey: APIKey
        public var authScheme: AuthScheme
        public var anthropicVersion: String
        /// Sent as `anthropic-workspace-id` for credentials that can act on several workspaces.
        public var workspaceID: String?
        /// Batches per page, 1...1000.
        public var pageLimit: Int
        /// A listing that needs more pages than this is stopped as a pagination error.
        public var maxPages: Int
        public var retryPolicy: RetryPolicy

        public init(
            baseURL: String,
            apiKey: APIKey,
            authScheme: AuthScheme = .xAPIKey,
            anthropicVersion: String = "2023-06-01",
            workspaceID: String? = nil,
            pageLimit: Int = 1000,
            maxPages: Int = 10_000,
            retryPolicy: RetryPolicy = RetryPolicy()
        ) {
            self.baseURL = baseURL
            self.apiKey = apiKey
            self.authScheme = authScheme
            self.anthropicVersion = anthropicVersion
            self.workspaceID = workspaceID
            self.pageLimit = pageLimit
            self.maxPages = maxPages
            self.retryPolicy = retryPolicy
        }
    }

    public let configuration: Configuration
    private let http: any HTTPGetting
    private let logger: Logger
    private let sleep: @Sendable (Duration) async throws -> Void
    private let now: @Sendable () -> Double

    /// - Parameters:
    ///   - sleep: waits between retries; injected so tests need not wait for real.
    ///   - now: wall-clock seconds since the epoch, for `retry-after` HTTP dates.
    public init(
        configuration: Configuration,
        http: any HTTPGetting,
        logger: Logger,
        sleep: @escaping @Sendable (Duration) async throws -> Void = { try await Task.sleep(for: $0) },
        now: @escaping @Sendable () -> Double
    ) {
        self.configuration = configuration
        self.http = http
        self.logger = logger
        self.sleep = sleep
        self.now = now
    }

    /// Reads every page, newest batch first, following `after_id = last_id` while `has_more`.
    /// Either returns the whole listing or throws: there is no partial result.
    public func listAll(observe: (RequestObservation) -> Void) async throws(BatchesAPIError) -> [MessageBatch] {
        var batches: [MessageBatch] = []
        try await walkPages(observe: observe) { page in
            batches.append(contentsOf: page.data)
            return true
        }
        return batches
    }

    /// Walks pages from the newest, handing each to `visit`, until the listing ends or `visit`
    /// returns false. Stops with a `pagination` error on a repeated cursor, on `has_more`
    /// without data or `last_id`, and past `maxPages`.
    public func walkPages(
        observe: (RequestObservation) -> Void,
        visit: (BatchListPage) -> Bool
    ) async throws(BatchesAPIError) {
        var cursor: String?
        var cursorsSeen: Set<String> = []
        var pagesRead = 0
        while true {
            guard pagesRead < configuration.maxPages else {
                throw BatchesAPIError(
                    reason: .pagination,
                    message: "listing did not end within \(configuration.maxPages) pages (--api.max-pages)"
                )
            }
            let page = try await fetchPage(afterID: cursor, observe: observe)
            pagesRead += 1
            guard visit(page), page.hasMore else { return }
            guard !page.data.isEmpty, let next = page.lastID else {
                throw BatchesAPIError(
                    reason: .pagination,
                    message: "page \(pagesRead) says has_more but has \(page.data.isEmpty ? "no data" : "no last_id")"
                )
            }
            guard next != cursor, cursorsSeen.insert(next).inserted else {
                throw BatchesAPIError(reason: .pagination, message: "cursor \(next) repeated on page \(pagesRead)")
            }
            cursor = next
        }
    }

    /// Fetches one page, retrying per the ``RetryPolicy``.
    public func fetchPage(afterID: String?, observe: (RequestObservation) -> Void) async throws(BatchesAPIError) -> BatchListPage {
        let url = pageURL(afterID: afterID)
        let headers = requestHeaders()
        var retries = 0
        while true {
            let started = ContinuousClock.now
            let outcome: RetryPolicy.Outcome
            let failure: BatchesAPIError
            let received: Result<HTTPResponse, CurlError>
            do throws(CurlError) {
                received = .success(try await http.get(url: url, headers: headers))
            } catch {
                received = .failure(error)
            }
            switch received {
            case .success(let response):
                observe(RequestObservation(code: String(response.status), duration: ContinuousClock.now - started))
                if (200..<300).contains(response.status) {
                    return try Self.decodePage(response)
                }
                failure = .http(response)
                outcome = .response(
                    status: response.status,
                    headers: response.headers,
                    errorCode: APIErrorBody.parse(response.body)?.errorCode
                )
            case .failure(let error):
                observe(RequestObservation(code: "error", duration: ContinuousClock.now - started))
                failure = .transport(error)
                outcome = .transport(error.kind)
            }
            let decision = configuration.retryPolicy.decide(
                retriesSoFar: retries,
                outcome: outcome,
                now: now(),
                jitter: Double.random(in: 0..<1)
            )
            guard case .retry(let delay) = decision, !Task.isCancelled else { throw failure }
            retries += 1
            logger.debug(
                "Retrying list request",
                metadata: [
                    "retry": "\(retries)", "delay_ms": "\(delay.components.seconds * 1000 + delay.components.attoseconds / 1_000_000_000_000_000)",
                    "reason": "\(failure.reason.rawValue)", "error": "\(failure)",
                ]
            )
            do {
                try await sleep(delay)
            } catch {
                throw BatchesAPIError(reason: .cancelled, message: "cancelled while waiting to retry")
            }
        }
    }

    static func decodePage(_ response: HTTPResponse) throws(BatchesAPIError) -> BatchListPage {
        let requestID = response.header("request-id")
        if let contentType = response.header("content-type"), !contentType.lowercased().contains("json") {
            throw BatchesAPIError(
                reason: .decode,
                message: "expected a JSON page, got content type \(contentType)",
                status: response.status,
                requestID: requestID
            )
        }
        do {
            return try BatchListPage.decode(response.body)
        } catch {
            throw BatchesAPIError(
                reason: .decode,
                message: "undecodable page: \(error.message)",
                status: response.status,
                requestID: requestID
            )
        }
    }

    func pageURL(afterID: String?) -> String {
        var base = configuration.baseURL
        while base.hasSuffix("/") { base.removeLast() }
        var url = "\(base)/v1/messages/batches?limit=\(configuration.pageLimit)"
        if let afterID {
            url += "&after_id=\(Self.percentEncoded(afterID))"
        }
        return url
    }

    func requestHeaders() -> [(name: String, value: String)] {
        var headers: [(name: String, value: String)] = [
            ("anthropic-version", configuration.anthropicVersion),
            ("accept", "application/json"),
        ]
        switch configuration.authScheme {
        case .xAPIKey: headers.append(("x-api-key", configuration.apiKey.revealedForRequest))
        case .bearer: headers.append(("authorization", "Bearer \(configuration.apiKey.revealedForRequest)"))
        }
        if let workspaceID = configuration.workspaceID {
            headers.append(("anthropic-workspace-id", workspaceID))
        }
        return headers
    }

    /// Ids are opaque and may change format: encode everything outside RFC 3986's unreserved set.
    static func percentEncoded(_ text: String) -> String {
        var encoded = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"),
                UInt8(ascii: "."), UInt8(ascii: "~"):
                encoded.append(Character(Unicode.Scalar(byte)))
            default:
                let hex = Array("0123456789ABCDEF")
                encoded += "%\(hex[Int(byte >> 4)])\(hex[Int(byte & 0xF)])"
            }
        }
        return encoded
    }
}
