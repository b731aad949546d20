import BatchesAPI
import CurlHTTP
import Testing

@Suite("Retry decisions")
struct RetryPolicyTests {
    let policy = RetryPolicy(maxRetries: 4, baseDelay: .milliseconds(500), maxDelay: .seconds(8), maxServerDelay: .seconds(60))

    func response(_ status: Int, _ headers: [(String, String)] = [], errorCode: String? = nil) -> RetryPolicy.Outcome {
        .response(status: status, headers: headers.map { (name: $0.0, value: $0.1) }, errorCode: errorCode)
    }

    @Test(
        "Statuses the SDKs retry are retried; client errors are not",
        arguments: [
            (408, true), (409, true), (429, true), (500, true), (502, true), (503, true), (504, true), (529, true),
            (400, false), (401, false), (403, false), (404, false), (413, false),
        ])
    func statusRetryability(status: Int, retried: Bool) {
        let decision = policy.decide(retriesSoFar: 0, outcome: response(status), now: 0, jitter: 0.5)
        #expect((decision != .giveUp) == retried)
    }

    @Test("x-should-retry overrides the status", arguments: [(500, "false", false), (400, "true", true), (429, "FALSE", false)])
    func shouldRetryHeader(status: Int, header: String, retried: Bool) {
        let decision = policy.decide(retriesSoFar: 0, outcome: response(status, [("x-should-retry", header)]), now: 0, jitter: 0.5)
        #expect((decision != .giveUp) == retried)
    }

    @Test(
        "Transport timeouts and drops are retried; TLS failures and cancellation are not",
        arguments: [
            (CurlError.Kind.timeout, true), (.transport, true), (.tls, false), (.cancelled, false), (.bodyTooLarge, false),
        ])
    func transportRetryability(kind: CurlError.Kind, retried: Bool) {
        let decision = policy.decide(retriesSoFar: 0, outcome: .transport(kind), now: 0, jitter: 0.5)
        #expect((decision != .giveUp) == retried)
    }

    @Test(
        "Backoff is full jitter over an exponential ceiling capped at maxDelay",
        arguments: [
            (0, 1.0, Duration.milliseconds(500)), (1, 1.0, .seconds(1)), (2, 1.0, .seconds(2)), (3, 0.5, .seconds(2)),
            (0, 0.0, .zero),
        ])
    func backoff(retries: Int, jitter: Double, expected: Duration) {
        let decision = policy.decide(retriesSoFar: retries, outcome: response(503), now: 0, jitter: jitter)
        #expect(decision == .retry(after: expected))
    }

    @Test("The ceiling never exceeds maxDelay however many retries came before")
    func backoffCap() {
        let generous = RetryPolicy(maxRetries: 20)
        #expect(generous.decide(retriesSoFar: 12, outcome: response(503), now: 0, jitter: 1) == .retry(after: .seconds(8)))
    }

    @Test("After maxRetries the request gives up")
    func giveUpAfterMax() {
        #expect(policy.decide(retriesSoFar: 4, outcome: response(503), now: 0, jitter: 0.5) == .giveUp)
        #expect(RetryPolicy(maxRetries: 0).decide(retriesSoFar: 0, outcome: response(503), now: 0, jitter: 0.5) == .giveUp)
    }

    @Test(
        "Server hints win: retry-after-ms, then retry-after in seconds or as an HTTP date",
        arguments: [
            ([("retry-after-ms", "1500")], Duration.milliseconds(1500)),
            ([("retry-after", "2")], .seconds(2)),
            ([("Retry-After", "0.25")], .milliseconds(250)),
            ([("retry-after-ms", "100"), ("retry-after", "30")], .milliseconds(100)),
            ([("retry-after", "Sun, 06 Nov 1994 08:49:40 GMT")], .seconds(3)),
        ])
    func serverHints(headers: [(String, String)], expected: Duration) {
        // 784111777 is 1994-11-06T08:49:37Z.
        let decision = policy.decide(retriesSoFar: 0, outcome: response(429, headers), now: 784_111_777, jitter: 0.9)
        #expect(decision == .retry(after: expected))
    }

    @Test("Insane hints are ignored (negative, garbage) or end the poll (too long)")
    func insaneHints() {
        let garbage = policy.decide(retriesSoFar: 1, outcome: response(429, [("retry-after", "soon")]), now: 0, jitter: 1)
        #expect(garbage == .retry(after: .seconds(1)))
        let negative = policy.decide(retriesSoFar: 1, outcome: response(429, [("retry-after", "-5")]), now: 0, jitter: 1)
        #expect(negative == .retry(after: .seconds(1)))
        let tooLong = policy.decide(retriesSoFar: 0, outcome: response(429, [("retry-after", "3600")]), now: 0, jitter: 1)
        #expect(tooLong == .giveUp)
    }

    @Test("A spend-limit 429 is not retried: it keeps failing until a human acts")
    func spendLimit() {
        let decision = policy.decide(retriesSoFar: 0, outcome: response(429, errorCode: "enforced_spend_limit_reached"), now: 0, jitter: 1)
        #expect(decision == .giveUp)
    }
}
