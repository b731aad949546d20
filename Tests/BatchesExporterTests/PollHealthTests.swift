import BatchesAPI
import BatchesExporter
import PrometheusExposition
import Testing

@Suite("Poll health and the poll loop's backoff")
struct PollHealthTests {
    @Test("After a success the next poll starts one interval after the last one started")
    func steadyRhythm() {
        var health = PollHealth()
        health.recordSuccess(at: 100, duration: .seconds(2))
        #expect(health.delayBeforeNextPoll(interval: .seconds(60), lastPollTook: .seconds(2)) == .seconds(58))
        #expect(health.delayBeforeNextPoll(interval: .seconds(60), lastPollTook: .seconds(75)) == .zero)
    }

    @Test("Consecutive failures double the wait, capped at ten intervals; a success resets it")
    func backoff() {
        var health = PollHealth()
        var delays: [Duration] = []
        for _ in 0..<6 {
            health.recordFailure(.http5xx, duration: .seconds(1))
            delays.append(health.delayBeforeNextPoll(interval: .seconds(60), lastPollTook: .seconds(1)))
        }
        #expect(delays == [.seconds(120), .seconds(240), .seconds(480), .seconds(600), .seconds(600), .seconds(600)])
        health.recordSuccess(at: 1, duration: .seconds(1))
        #expect(health.delayBeforeNextPoll(interval: .seconds(60), lastPollTook: .seconds(1)) == .seconds(59))
    }

    @Test("Failures are counted by reason, cancellation is not a failure")
    func reasons() {
        var health = PollHealth()
        health.recordFailure(.auth, duration: .zero)
        health.recordFailure(.auth, duration: .zero)
        health.recordFailure(.cancelled, duration: .zero)
        #expect(health.pollErrors[.auth] == 2)
        #expect(health.pollErrors[.cancelled] == nil)
        #expect(health.pollErrors[.decode] == 0)
        #expect(health.consecutiveFailures == 2)
        #expect(health.lastPollSucceeded == false)
        #expect(health.pollDurations.count == 2)
    }
}
