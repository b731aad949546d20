import Synchronization

/// A clock that moves only when a test moves it, as hummingbird's `TestClock`: a sleeper
/// resumes when ``advance(by:)`` carries the clock to its deadline, never because real time
/// passed, so a test of timing logic neither waits nor depends on how busy the machine is.
///
/// Its instants are `ContinuousClock.Instant`s counted from the moment it was made, so code
/// that keeps `ContinuousClock.Instant`s (the request budget's window) takes it unchanged.
public final class ManualClock: Clock, Sendable {
    public typealias Instant = ContinuousClock.Instant
    public typealias Duration = Swift.Duration

    private struct Sleeper {
        var id: UInt64
        var deadline: Instant
        var continuation: CheckedContinuation<Void, any Error>
    }

    /// A test waiting until this many sleepers are asleep.
    private struct SleeperWaiter {
        var count: Int
        var continuation: CheckedContinuation<Void, Never>
    }

    private struct State {
        var now: Instant
        var nextID: UInt64 = 0
        var sleepers: [Sleeper] = []
        /// Sleeps started but not yet parked: a cancellation arriving in between is kept here.
        var starting: Set<UInt64> = []
        var cancelledWhileStarting: Set<UInt64> = []
        var waiters: [SleeperWaiter] = []

        /// Takes the waiters the current number of sleepers satisfies.
        mutating func satisfiedWaiters() -> [CheckedContinuation<Void, Never>] {
            let count = sleepers.count
            let ready = waiters.filter { $0.count <= count }.map(\.continuation)
            waiters.removeAll { $0.count <= count }
            return ready
        }
    }

    private let state: Mutex<State>

    public init(now: Instant = ContinuousClock.now) {
        state = Mutex(State(now: now))
    }

    public var now: Instant { state.withLock { $0.now } }

    public var minimumResolution: Duration { .zero }

    /// Sleepers parked now, waiting for the clock to reach their deadline.
    public var sleeperCount: Int { state.withLock { $0.sleepers.count } }

    /// Returns at once when `deadline` has been reached, else when ``advance(by:)`` reaches it;
    /// throws `CancellationError` when the task is cancelled first.
    public func sleep(until deadline: Instant, tolerance: Duration? = nil) async throws {
        let id = state.withLock { state in
            state.nextID += 1
            state.starting.insert(state.nextID)
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let (outcome, waiters) = state.withLock { state -> (Result<Void, any Error>?, [CheckedContinuation<Void, Never>]) in
                    state.starting.remove(id)
                    if state.cancelledWhileStarting.remove(id) != nil { return (.failure(CancellationError()), []) }
                    if deadline <= state.now { return (.success(()), []) }
                    state.sleepers.append(Sleeper(id: id, deadline: deadline, continuation: continuation))
                    return (nil, state.satisfiedWaiters())
                }
                for waiter in waiters { waiter.resume() }
                if let outcome { continuation.resume(with: outcome) }
            }
        } onCancel: {
            let parked = state.withLock { state -> CheckedContinuation<Void, any Error>? in
                if let index = state.sleepers.firstIndex(where: { $0.id == id }) {
                    return state.sleepers.remove(at: index).continuation
                }
                if state.starting.contains(id) { state.cancelledWhileStarting.insert(id) }
                return nil
            }
            parked?.resume(throwing: CancellationError())
        }
    }

    /// Moves the clock forward and resumes, earliest deadline first, every sleeper it reaches.
    public func advance(by duration: Duration) {
        precondition(duration >= .zero, "a clock does not go back")
        let due = state.withLock { state -> [Sleeper] in
            state.now += duration
            let now = state.now
            let due = state.sleepers.filter { $0.deadline <= now }.sorted { $0.deadline < $1.deadline }
            state.sleepers.removeAll { $0.deadline <= now }
            return due
        }
        for sleeper in due { sleeper.continuation.resume() }
    }

    /// Returns once at least `count` sleepers are parked: a test calls it before
    /// ``advance(by:)`` so the code under test is known to be waiting on this clock.
    public func waitForSleepers(_ count: Int = 1) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let ready = state.withLock { state -> Bool in
                guard state.sleepers.count < count else { return true }
                state.waiters.append(SleeperWaiter(count: count, continuation: continuation))
                return false
            }
            if ready { continuation.resume() }
        }
    }
}
