import BatchesExporter
import Testing

@Suite("The request budget's sliding window")
struct SlidingWindowBudgetTests {
    @Test("At most limit requests in any window; the next may go when the oldest leaves it")
    func window() {
        var budget = SlidingWindowBudget(limit: 3, window: .seconds(60))
        let start = ContinuousClock.now
        for offset in [0, 10, 20] {
            let now = start + .seconds(offset)
            #expect(budget.earliestSend(at: now) == now)
            budget.record(at: now)
        }
        #expect(budget.earliestSend(at: start + .seconds(30)) == start + .seconds(60))
        #expect(budget.earliestSend(at: start + .seconds(60)) == start + .seconds(60))
        budget.record(at: start + .seconds(60))
        #expect(budget.earliestSend(at: start + .seconds(61)) == start + .seconds(70))
    }

    @Test("No budget never waits")
    func unlimited() async throws {
        let budget = RequestBudget(requestsPerMinute: 0)
        for _ in 0..<1000 { #expect(budget.tryAcquire()) }
        #expect(try await budget.acquire() == false)
    }

    @Test("tryAcquire refuses once the window is full")
    func tryAcquire() {
        let budget = RequestBudget(requestsPerMinute: 2)
        #expect(budget.tryAcquire())
        #expect(budget.tryAcquire())
        #expect(!budget.tryAcquire())
    }
}
