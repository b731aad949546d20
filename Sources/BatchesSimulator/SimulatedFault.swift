/// A scripted misbehaviour for one list request. Faults wait in a FIFO queue; each list
/// request takes the first one.
public enum SimulatedFault: Sendable, Equatable {
    /// Answer with this status and an Anthropic error body of the matching type. The header
    /// values are sent exactly as given, so malformed ones can be tested too.
    case status(Int, retryAfter: String? = nil, retryAfterMilliseconds: String? = nil, shouldRetry: String? = nil)
    /// 429 with `error.details.error_code: "enforced_spend_limit_reached"` and no `retry-after`.
    case spendCap
    /// An HTML error page, as a proxy or load balancer in front of the API sends.
    case html(status: Int = 502)
    /// 200 whose body is not JSON at all.
    case garbage
    /// 200 with JSON of the wrong shape (`"data": "nope"`).
    case wrongTypes
    /// The real page, cut off half-way through its body.
    case truncated
    /// The real page, after a wait.
    case delay(milliseconds: Int)
    /// The real page after an hour: longer than any sensible client timeout.
    case hang
    /// Close the connection without answering.
    case close
    /// The real page, but `has_more: true` and a `last_id` that repeats the request's `after_id`
    /// (or, without one, the page's first id), so a client that trusts cursors loops forever.
    case endlessCursor
    /// The real page, labelled `Content-Type: text/plain`.
    case wrongContentType

    /// The name used by the control endpoint's `kind` parameter and in the request log.
    public var kind: String {
        switch self {
        case .status: "status"
        case .spendCap: "spend_cap"
        case .html: "html"
        case .garbage: "garbage"
        case .wrongTypes: "wrong_types"
        case .truncated: "truncated"
        case .delay: "delay"
        case .hang: "hang"
        case .close: "close"
        case .endlessCursor: "endless_cursor"
        case .wrongContentType: "wrong_content_type"
        }
    }

    static let hangDuration: Duration = .seconds(3600)
}

/// A scripted misbehaviour for one results download (`GET .../results`); they wait in their
/// own FIFO queue, and each results request takes the first one.
public enum ResultsFault: Sendable, Equatable {
    /// Stream the file but close the connection after this many body bytes, without the
    /// terminating chunk (past the end of the file, the end is cut).
    case cut(afterBytes: Int)
    /// 404 `not_found_error`, as users have seen just after a batch ended.
    case notFound
    /// Stream in pieces of about `pieceBytes`, waiting between them. The listener's write
    /// timeout (30 s) applies to each piece.
    case slow(delayMilliseconds: Int, pieceBytes: Int)

    public var kind: String {
        switch self {
        case .cut: "cut"
        case .notFound: "not_found"
        case .slow: "slow"
        }
    }
}

/// Anthropic's error types by status code (see API-NOTES); unknown codes fall back by class.
enum APIErrorType {
    static func forStatus(_ status: Int) -> String {
        switch status {
        case 400: "invalid_request_error"
        case 401: "authentication_error"
        case 402: "billing_error"
        case 403: "permission_error"
        case 404: "not_found_error"
        case 409: "conflict_error"
        case 413: "request_too_large"
        case 429: "rate_limit_error"
        case 504: "timeout_error"
        case 529: "overloaded_error"
        case 500..<600: "api_error"
        default: "invalid_request_error"
        }
    }

    static func message(forStatus status: Int) -> String {
        switch status {
        case 401: "invalid x-api-key"
        case 402: "Your credit balance is too low to access the Anthropic API."
        case 403: "Your API key does not have permission to use the specified resource."
        case 404: "The requested resource could not be found."
        case 409: "Conflict."
        case 413: "Request exceeds the maximum allowed number of bytes."
        case 429: "Number of requests has exceeded your rate limit. Please try again later."
        case 500: "Internal server error"
        case 504: "Request timed out"
        case 529: "Overloaded"
        default: "Simulated error \(status)"
        }
    }
}
