import CurlHTTP
import FoundationEssentials

/// Why a request or a whole listing failed, with everything an operator needs to act on it:
/// the HTTP status, the API's `error.type` and message, and the `request-id` to quote to support.
public struct BatchesAPIError: Error, Sendable, CustomStringConvertible {
    /// The failure classes the exporter counts in `poll_errors_total{reason}`.
    public enum Reason: String, Sendable, CaseIterable {
        case timeout
        case transport
        case http4xx = "http_4xx"
        case http5xx = "http_5xx"
        case rateLimited = "rate_limited"
        case auth
        case decode
        case pagination
        /// Shutdown interrupted the request; not a failure of the API.
        case cancelled
        /// The exporter's own request budget held the request back; not a failure of the API.
        case deferred
    }

    public var reason: Reason
    public var message: String
    public var status: Int?
    public var errorType: String?
    public var requestID: String?

    public init(reason: Reason, message: String, status: Int? = nil, errorType: String? = nil, requestID: String? = nil) {
        self.reason = reason
        self.message = message
        self.status = status
        self.errorType = errorType
        self.requestID = requestID
    }

    public var description: String {
        var parts = [message]
        if let status { parts.append("status=\(status)") }
        if let errorType { parts.append("error.type=\(errorType)") }
        if let requestID { parts.append("request_id=\(requestID)") }
        return parts.joined(separator: " ")
    }

    static func transport(_ error: CurlError) -> BatchesAPIError {
        let reason: Reason =
            switch error.kind {
            case .timeout: .timeout
            case .bodyTooLarge: .decode
            case .cancelled: .cancelled
            case .transport, .tls, .setup: .transport
            }
        return BatchesAPIError(reason: reason, message: error.description)
    }

    static func http(_ response: HTTPResponse) -> BatchesAPIError {
        let body = APIErrorBody.parse(response.body)
        let requestID = response.header("request-id") ?? body?.requestID
        let reason: Reason =
            switch response.status {
            case 401, 403: .auth
            case 429: .rateLimited
            case 400..<500: .http4xx
            default: .http5xx
            }
        let message: String
        if let apiMessage = body?.message {
            message = apiMessage
        } else {
            // Proxies and load balancers answer in HTML; say so rather than quoting markup.
            let contentType = response.header("content-type") ?? "no content type"
            message = "HTTP \(response.status) with a non-API body (\(contentType), \(response.body.count) bytes)"
        }
        return BatchesAPIError(
            reason: reason,
            message: message,
            status: response.status,
            errorType: body?.type,
            requestID: requestID
        )
    }
}

/// Anthropic's error body: `{"type":"error","error":{"type":..,"message":..,"details":..},"request_id":..}`.
struct APIErrorBody: Decodable, Equatable {
    var type: String?
    var message: String?
    var errorCode: String?
    var requestID: String?

    enum Keys: String, CodingKey { case error, requestID = "request_id" }
    enum ErrorKeys: String, CodingKey { case type, message, details }
    enum DetailKeys: String, CodingKey { case errorCode = "error_code" }

    init(type: String?, message: String?, errorCode: String? = nil, requestID: String? = nil) {
        self.type = type
        self.message = message
        self.errorCode = errorCode
        self.requestID = requestID
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Keys.self)
        requestID = try? container.decodeIfPresent(String.self, forKey: .requestID)
        let error = try container.nestedContainer(keyedBy: ErrorKeys.self, forKey: .error)
        type = try? error.decodeIfPresent(String.self, forKey: .type)
        message = try? error.decodeIfPresent(String.self, forKey: .message)
        let details = try? error.nestedContainer(keyedBy: DetailKeys.self, forKey: .details)
        errorCode = try? details?.decodeIfPresent(String.self, forKey: .errorCode)
    }

    /// `nil` when the body is not Anthropic's error JSON (an HTML page, say).
    static func parse(_ bytes: [UInt8]) -> APIErrorBody? {
        try? JSONDecoder().decode(APIErrorBody.self, from: Data(bytes))
    }
}
