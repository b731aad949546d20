import Basics
import Synchronization

/// At most `limit` requests in any window of `window` (a minute): the request budget.
///
/// A sliding window rather than a token bucket: a bucket of capacity N refilling N per minute
/// lets 2N requests through in some 60-second span (a full bucket spent, then a minute of
/// refill), while the API's budget, shared with the user's real batch work, is per minute.
/// A pure value; ``RequestBudget`` is the shared, waiting shell around it.
public struct SlidingWindowBudget: Sendable {
    public let limit: Int
    public let window: Duration
    /// Send times of the requests still inside the window, oldest first.
    private var sent: [ContinuousClock.Instant] = []

    public init(limit: Int, window: Duration = .seconds(60)) {
        self.limit = limit
        self.window = window
    }

    /// When the next request may go: `now`, or the moment the oldest request in the window
    /// leaves it.
    public mutating func earliestSend(at now: ContinuousClock.Instant) -> ContinuousClock.Instant {
        sent.removeAll { $0 <= now - window }
        guard sent.count >= limit, let oldest = sent.first else { return now }
        return oldest + window
    }

    /// Requests that may still go in the window ending at `now`.
    public mutating func free(at now: ContinuousClock.Instant) -> Int {
        sent.removeAll { $0 <= now - window }
        return max(0, limit - sent.count)
    }

    /// Records a request sent at `now`. Call only when ``earliestSend(at:)`` said `now`.
    public mutating func record(at now: ContinuousClock.Instant) {
        sent.append(now)
    }
}

/// The request budget shared by every request of one workspace, retries included.
public final class RequestBudget: Sendable {
    /// `nil` inside when there is no budget.
    private let window: Mutex<SlidingWindowBudget?>
    private let exhaustedCount = Atomic<UInt64>(0)
    private let clock: MonotonicClock

    /// - Parameter requestsPerMinute: 0 means no budget.
    public init(requestsPerMinute: Int, clock: MonotonicClock = .continuous) {
        window = Mutex(requestsPerMinute > 0 ? SlidingWindowBudget(limit: requestsPerMinute) : nil)
        self.clock = clock
    }

    /// Times a poll or resync was spread out or deferred because the budget was spent.
    public var exhausted: UInt64 { exhaustedCount.load(ordering: .relaxed) }

    /// Takes a slot now if one is free, and if after taking it at least `reserve` more would
    /// still be free: work that must never delay polls (results downloads) leaves them room.
    public func tryAcquire(leaving reserve: Int = 0) -> Bool {
        window.withLock { budget in
            // Read under the lock, so the window's send times are recorded in order.
            let now = clock.now
            guard budget != nil else { return true }
            guard budget!.earliestSend(at: now) <= now, budget!.free(at: now) > reserve else { return false }
            budget!.record(at: now)
            return true
        }
    }

    /// Takes a slot, waiting for one if the window is full. `onWait` runs once, before the
    /// first wait, so the wait can be reported while it lasts. Returns whether it waited.
    @discardableResult
    public func acquire(onWait: () -> Void = {}) async throws -> Bool {
        var waited = false
        while true {
            let wait = window.withLock { budget -> ContinuousClock.Instant? in
                let now = clock.now
                guard budget != nil else { return nil }
                let earliest = budget!.earliestSend(at: now)
                guard earliest <= now else { return earliest }
                budget!.record(at: now)
                return nil
            }
            guard let wait else { return waited }
            if !waited { onWait() }
            waited = true
            try await clock.sleep(until: wait)
        }
    }

    /// Counts one poll or resync step that the budget spread out or deferred.
    public func noteExhausted() {
        exhaustedCount.add(1, ordering: .relaxed)
    }
}
