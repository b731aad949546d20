import Basics
import BatchesExporter
import ManualClock
import Synchronization
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

    @Test("tryAcquire frees a slot when the oldest request leaves the window, on the budget's clock")
    func tryAcquireAfterWindow() {
        let clock = ManualClock()
        let budget = RequestBudget(requestsPerMinute: 2, clock: MonotonicClock(clock))
        #expect(budget.tryAcquire())
        clock.advance(by: .seconds(10))
        #expect(budget.tryAcquire())
        clock.advance(by: .seconds(49))
        #expect(!budget.tryAcquire(), "the first request is still in the window")
        clock.advance(by: .seconds(1))
        #expect(budget.tryAcquire())
        #expect(!budget.tryAcquire())
        clock.advance(by: .seconds(10))
        #expect(budget.tryAcquire(), "the second request left the window")
    }

    @Test("tryAcquire(leaving:) takes a slot only while that many more stay free")
    func reserve() {
        let clock = ManualClock()
        let budget = RequestBudget(requestsPerMinute: 3, clock: MonotonicClock(clock))
        #expect(budget.tryAcquire(leaving: 1))
        #expect(budget.tryAcquire(leaving: 1))
        #expect(!budget.tryAcquire(leaving: 1), "one slot left, kept for polls")
        #expect(budget.tryAcquire(), "a poll still gets it")
        clock.advance(by: .seconds(60))
        #expect(budget.tryAcquire(leaving: 2))
    }

    @Test("acquire waits until the oldest request leaves the window, reporting the wait once before it", .timeLimit(.minutes(1)))
    func acquireWaits() async throws {
        let clock = ManualClock()
        let budget = RequestBudget(requestsPerMinute: 2, clock: MonotonicClock(clock))
        #expect(try await budget.acquire() == false)
        clock.advance(by: .seconds(10))
        #expect(try await budget.acquire() == false)
        let waitsReported = WaitCount()
        try await withThrowingTaskGroup(of: Bool.self) { group throws in
            group.addTask { try await budget.acquire { waitsReported.increment() } }
            await clock.waitForSleepers()
            #expect(waitsReported.value == 1)
            clock.advance(by: .seconds(49))
            #expect(clock.sleeperCount == 1, "still waiting: the first request leaves the window at 60 s")
            clock.advance(by: .seconds(1))
            let waited = try await group.next()
            #expect(waited == true)
        }
        #expect(waitsReported.value == 1)
        #expect(!budget.tryAcquire(), "the request that waited took its slot at 60 s")
    }

    @Test("A wait for the budget ends when its task is cancelled", .timeLimit(.minutes(1)))
    func acquireCancelled() async throws {
        let clock = ManualClock()
        let budget = RequestBudget(requestsPerMinute: 1, clock: MonotonicClock(clock))
        #expect(budget.tryAcquire())
        let waiter = Task { try await budget.acquire() }
        await clock.waitForSleepers()
        waiter.cancel()
        await #expect(throws: CancellationError.self) { try await waiter.value }
        #expect(clock.sleeperCount == 0)
    }
}

/// How many times a wait was reported, from any task.
final class WaitCount: Sendable {
    private let count = Atomic<Int>(0)
    var value: Int { count.load(ordering: .acquiring) }
    func increment() { count.add(1, ordering: .releasing) }
}
