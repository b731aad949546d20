import Basics
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

/// Called before every request attempt, retries included; may wait, e.g. for a request
/// budget, or throw to stop the walk (``BatchesAPIError/Reason/deferred``).
public typealias RequestGate = @Sendable () async throws(BatchesAPIError) -> Void

/// How a page walk ended.
public enum WalkEnd: Sendable, Equatable {
    /// The last page said `has_more: false`.
    case listingEnded
    /// The visitor stopped the walk; `next` resumes it.
    case stopped(next: String)
}

/// Pagination safety, as a value: decides the next cursor after each page or says why the
/// listing cannot be trusted to end.
public struct PaginationGuard: Sendable {
    private let maxPages: Int
    private var pagesRead = 0
    private var cursorsSeen: Set<String> = []

    public init(maxPages: Int, startingAfter cursor: String? = nil) {
        self.maxPages = maxPages
        if let cursor { cursorsSeen.insert(cursor) }
    }

    /// The cursor for the page after `page`, or `nil` when the listing has ended.
    public mutating func next(after page: BatchListPage) throws(BatchesAPIError) -> String? {
        pagesRead += 1
        guard page.hasMore else { return nil }
        guard !page.data.isEmpty, let next = page.lastID else {
            throw BatchesAPIError(
                reason: .pagination,
                message: "page \(pagesRead) says has_more but has \(page.data.isEmpty ? "no data" : "no last_id")"
            )
        }
        guard cursorsSeen.insert(next).inserted else {
            throw BatchesAPIError(reason: .pagination, message: "cursor \(next) repeated on page \(pagesRead)")
        }
        guard pagesRead < maxPages else {
            throw BatchesAPIError(
                reason: .pagination,
                message: "listing did not end within \(maxPages) pages (--api.max-pages)"
            )
        }
        return next
    }
}

/// One request attempt as the metrics see it.
public struct RequestObservation: Sendable {
    /// The HTTP status as text, or `error` when no response came.
    public var code: String
    public var duration: Duration
    /// `anthropic-ratelimit-*` response headers, if the API sent any: keyed by the rest of the
    /// header name (`requests-limit`, `requests-remaining`, `requests-reset`, ...), values as
    /// numbers (reset times as seconds since the epoch).
    public var rateLimits: [String: Double] = [:]

    static func rateLimits(in headers: [(name: String, value: String)]) -> [String: Double] {
        var limits: [String: Double] = [:]
        let prefix = "anthropic-ratelimit-"
        for (name, value) in headers where name.lowercased().hasPrefix(prefix) {
            let key = String(name.lowercased().dropFirst(prefix.count))
            if let number = Double(value.trimmingWhitespace), number.isFinite {
                limits[key] = number
            } else if let time = RFC3339.parse(value.trimmingWhitespace) {
                limits[key] = time
            }
        }
        return limits
    }
}

/// Reads `GET /v1/messages/batches`, page by page, with retries and pagination safety.
public struct BatchesClient: Sendable {
    public struct Configuration: Sendable, Equatable {
        /// Scheme, host and optional port, e.g. `https://api.anthropic.com`; no trailing slash needed.
        public var baseURL: String
        /// Where the key comes from; asked before every request, so a key file that changes
        /// takes effect at the next request. Compared by origin (the file's path), not by key.
        public var keySource: APIKeySource
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
            keySource: APIKeySource,
            authScheme: AuthScheme = .xAPIKey,
            anthropicVersion: String = "2023-06-01",
            workspaceID: String? = nil,
            pageLimit: Int = 1000,
            maxPages: Int = 10_000,
            retryPolicy: RetryPolicy = RetryPolicy()
        ) {
            self.baseURL = baseURL
            self.keySource = keySource
            self.authScheme = authScheme
            self.anthropicVersion = anthropicVersion
            self.workspaceID = workspaceID
            self.pageLimit = pageLimit
            self.maxPages = maxPages
            self.retryPolicy = retryPolicy
        }

        /// The key to send now (see ``APIKeySource/current()``).
        public var apiKey: APIKey { keySource.current() }
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
    public func listAll(
        beforeEachRequest: RequestGate = {},
        observe: (RequestObservation) -> Void
    ) async throws(BatchesAPIError) -> [MessageBatch] {
        var batches: [MessageBatch] = []
        try await walkPages(beforeEachRequest: beforeEachRequest, observe: observe) { page in
            batches.append(contentsOf: page.data)
            return true
        }
        return batches
    }

    /// Walks pages from the newest (or from after `cursor`), handing each to `visit`, until the
    /// listing ends or `visit` returns false. Stops with a `pagination` error on a repeated
    /// cursor, on `has_more` without data or `last_id`, and past `maxPages`.
    /// - Parameter firstPageLimit: batches to ask for in the first request (clamped to
    ///   1...`pageLimit`), for a caller that knows it needs only the newest few; every later
    ///   request asks for `pageLimit`. `nil` asks for `pageLimit` throughout.
    /// - Returns: how the walk ended; ``WalkEnd/stopped(next:)`` carries the cursor to resume from.
    @discardableResult
    public func walkPages(
        startingAfter cursor: String? = nil,
        firstPageLimit: Int? = nil,
        beforeEachRequest: RequestGate = {},
        observe: (RequestObservation) -> Void,
        visit: (BatchListPage) -> Bool
    ) async throws(BatchesAPIError) -> WalkEnd {
        var guardrail = PaginationGuard(maxPages: configuration.maxPages, startingAfter: cursor)
        var cursor = cursor
        var limit = firstPageLimit
        while true {
            let page = try await fetchPage(afterID: cursor, limit: limit, beforeEachRequest: beforeEachRequest, observe: observe)
            limit = nil
            let next = try guardrail.next(after: page)
            guard visit(page) else { return next.map { .stopped(next: $0) } ?? .listingEnded }
            guard let next else { return .listingEnded }
            cursor = next
        }
    }

    /// Fetches one page of `limit` batches (`pageLimit` when `nil`), retrying per the
    /// ``RetryPolicy``.
    public func fetchPage(
        afterID: String?,
        limit: Int? = nil,
        beforeEachRequest: RequestGate = {},
        observe: (RequestObservation) -> Void
    ) async throws(BatchesAPIError) -> BatchListPage {
        let url = pageURL(afterID: afterID, limit: limit)
        var retries = 0
        while true {
            // Retries pass the gate too: a request budget counts every request sent.
            try await beforeEachRequest()
            // Per attempt: a key file replaced while a request waited is used at once.
            let headers = requestHeaders()
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
                observe(
                    RequestObservation(
                        code: String(response.status),
                        duration: ContinuousClock.now - started,
                        rateLimits: RequestObservation.rateLimits(in: response.headers)
                    )
                )
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
                    "retry": "\(retries)", "delay_ms": "\(delay.inWholeMilliseconds)",
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

    func pageURL(afterID: String?, limit: Int? = nil) -> String {
        var base = configuration.baseURL
        while base.hasSuffix("/") { base.removeLast() }
        let pageLimit = max(1, configuration.pageLimit)
        let limit = min(max(limit ?? pageLimit, 1), pageLimit)
        var url = "\(base)/v1/messages/batches?limit=\(limit)"
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
        let key = configuration.keySource.current()
        switch configuration.authScheme {
        case .xAPIKey: headers.append(("x-api-key", key.revealedForRequest))
        case .bearer: headers.append(("authorization", "Bearer \(key.revealedForRequest)"))
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
