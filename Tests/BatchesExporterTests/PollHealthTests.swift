import BatchesAPI
import BatchesExporter
import PrometheusExposition
import Testing

@Suite("Poll health")
struct PollHealthTests {
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
