/// The clock the poller, the request budget and the publisher read and sleep on: the
/// continuous clock in production, a clock the test moves by hand in tests, so the logic that
/// depends on time is tested without waiting for time to pass.
///
/// Any `Clock` whose instants are `ContinuousClock`'s fits; it is type-erased here so that the
/// services taking it need no generic parameter (which would spread to every type holding
/// them), and its instants stay `ContinuousClock.Instant` so pure values such as the request
/// budget's sliding window keep their types. The monotonic counterpart of ``WallClock``.
public struct MonotonicClock: Sendable {
    public typealias Instant = ContinuousClock.Instant

    private let readNow: @Sendable () -> Instant
    private let sleepUntil: @Sendable (Instant) async throws -> Void

    public init<C: Clock>(_ clock: C) where C.Instant == ContinuousClock.Instant {
        readNow = { clock.now }
        sleepUntil = { try await clock.sleep(until: $0, tolerance: nil) }
    }

    public static let continuous = MonotonicClock(ContinuousClock())

    public var now: Instant { readNow() }

    /// Throws `CancellationError` when the task is cancelled first.
    public func sleep(until deadline: Instant) async throws {
        try await sleepUntil(deadline)
    }

    public func sleep(for duration: Duration) async throws {
        try await sleepUntil(now + duration)
    }
}
