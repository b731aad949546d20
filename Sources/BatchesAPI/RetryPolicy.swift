import Basics
import CurlHTTP
import RFC3339

/// When to try a failed request again, and after how long: what the official SDKs do (see
/// API-NOTES), with full jitter and a cap on how long a server may make us wait.
public struct RetryPolicy: Sendable, Equatable {
    /// Retries after the first attempt; 0 disables retrying.
    public var maxRetries: Int
    /// The first retry waits up to this long; each further one up to twice as long as the last.
    public var baseDelay: Duration
    /// The computed backoff never exceeds this.
    public var maxDelay: Duration
    /// A `retry-after` longer than this is not waited for inside a poll: the poll gives up and
    /// the poll loop's own backoff takes over, instead of holding a poll open for minutes.
    public var maxServerDelay: Duration

    public init(
        maxRetries: Int = 4,
        baseDelay: Duration = .milliseconds(500),
        maxDelay: Duration = .seconds(8),
        maxServerDelay: Duration = .seconds(60)
    ) {
        self.maxRetries = maxRetries
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
        self.maxServerDelay = maxServerDelay
    }

    /// What one attempt came to.
    public enum Outcome: Sendable {
        case response(status: Int, headers: [(name: String, value: String)], errorCode: String?)
        case transport(CurlError.Kind)
    }

    public enum Decision: Sendable, Equatable {
        case retry(after: Duration)
        case giveUp
    }

    /// Decides about the attempt that just failed.
    /// - Parameters:
    ///   - retriesSoFar: retries already made for this request (0 after the first attempt).
    ///   - now: seconds since the epoch, for `retry-after` given as an HTTP date.
    ///   - jitter: a random number in `0..<1`; injected so the decision is a pure function.
    public func decide(retriesSoFar: Int, outcome: Outcome, now: Double, jitter: Double) -> Decision {
        guard retriesSoFar < maxRetries, isRetryable(outcome) else { return .giveUp }
        if case .response(_, let headers, _) = outcome, let hint = Self.serverDelay(headers, now: now) {
            return hint <= maxServerDelay ? .retry(after: hint) : .giveUp
        }
        let exponent = min(retriesSoFar, 30)
        let ceiling = min(maxDelay, baseDelay * (1 << exponent))
        return .retry(after: ceiling * jitter)
    }

    func isRetryable(_ outcome: Outcome) -> Bool {
        switch outcome {
        case .transport(let kind):
            // A TLS or setup failure will fail the same way again; a cancelled one must stop.
            return kind == .timeout || kind == .transport
        case .response(let status, let headers, let errorCode):
            // A spend cap keeps answering 429 until a human raises it: retrying only spends budget.
            if errorCode == "enforced_spend_limit_reached" { return false }
            switch Self.header("x-should-retry", in: headers)?.lowercased() {
            case "true": return true
            case "false": return false
            default: return status == 408 || status == 409 || status == 429 || status >= 500
            }
        }
    }

    /// The server's own hint: `retry-after-ms`, then `retry-after` as seconds or an HTTP date.
    /// Negative, unparseable or absent hints give `nil`.
    static func serverDelay(_ headers: [(name: String, value: String)], now: Double) -> Duration? {
        if let text = header("retry-after-ms", in: headers), let milliseconds = Double(text),
            milliseconds.isFinite, milliseconds >= 0
        {
            return .milliseconds(milliseconds)
        }
        guard let text = header("retry-after", in: headers) else { return nil }
        if let seconds = Double(text.trimmingWhitespace), seconds.isFinite, seconds >= 0 {
            return .milliseconds(seconds * 1000)
        }
        if let date = HTTPDate.parse(text.trimmingWhitespace) {
            return .milliseconds(max(0, date - now) * 1000)
        }
        return nil
    }

    private static func header(_ name: String, in headers: [(name: String, value: String)]) -> String? {
        headers.first { $0.name.lowercased() == name }?.value
    }
}
