import BatchesAPI

/// The poll loop's decisions, without its work: which read a poll does, when a full resync
/// starts, where it goes on and when it is adopted or dropped, and how long to wait before the
/// next poll. A value with no I/O, no clock and no concurrency, in the manner of
/// async-http-client's `RequestBag.StateMachine`: ``WorkspacePoller`` tells it what happened
/// (with the time it read) and does what it answers, so every transition is unit-tested
/// without a network or a sleep.
///
/// The data a read produces (pages, the ledger builder) stays with the poller; this holds only
/// what the decisions need.
public struct PollStateMachine: Sendable {
    public typealias Instant = ContinuousClock.Instant

    public struct Configuration: Sendable, Equatable {
        public var pollInterval: Duration
        /// How often everything is read again; `.zero`: every poll is a full read.
        public var fullResyncInterval: Duration

        public init(pollInterval: Duration, fullResyncInterval: Duration) {
            self.pollInterval = pollInterval
            self.fullResyncInterval = fullResyncInterval
        }
    }

    /// Failed polls back off up to this many poll intervals.
    public static let maxBackoffFactor = 10

    /// One poll from its start to its outcome: what to read, and what was decided at its start.
    public struct Poll: Sendable, Equatable {
        public var kind: PollKind
        public var started: Instant
        /// Whether a resync was due when the poll started; one begins if the poll succeeds.
        public var resyncDue: Bool
    }

    /// What to do with a successful poll's reading.
    public enum PollSucceeded: Sendable, Equatable {
        /// Replace the ledger with the full read; any resync in progress is dropped, the full
        /// read having done its work.
        case adoptFullRead
        /// Merge the newest batches into the ledger; when `startResync`, a full resync begins
        /// (from the first page, on the budget the polls leave).
        case applyIncremental(startResync: Bool)
    }

    /// The next step of a full resync.
    public enum ResyncStep: Sendable, Equatable {
        /// Read the page after this cursor (`nil`: the first page).
        case readPage(after: String?)
        /// The last page was read: adopt the resync as a full read that started at `started`.
        case adopt(started: Instant)
        /// Stop for now and go on from the same page after the next poll (the budget is spent
        /// for now, or the read was cancelled); nothing is counted as failed.
        case pause
        /// The read failed: drop what was read and start over from the first page when the
        /// next poll finds the resync due (a half-read listing after an error, a cursor the API
        /// no longer knows, cannot be trusted). The failure counts for the back-off.
        case abandon
        /// No resync in progress (or shutting down): nothing to read.
        case none
    }

    /// How long to wait before the next poll.
    public struct Wait: Sendable, Equatable {
        public var duration: Duration
        /// The API refused the key: a rotated key file ends the wait early.
        public var endsOnKeyRotation: Bool

        public init(duration: Duration, endsOnKeyRotation: Bool) {
            self.duration = duration
            self.endsOnKeyRotation = endsOnKeyRotation
        }
    }

    private struct Resync: Sendable, Equatable {
        var started: Instant
        var cursor: String?
    }

    public let configuration: Configuration
    /// Whether a full read has been adopted: until then there is nothing true to say about the
    /// batches, and every poll is a full read.
    public private(set) var hasListing = false
    /// When the last full read adopted (a poll's or a resync's) started.
    public private(set) var lastFullReadStarted: Instant?
    private var resync: Resync?
    /// Failed polls and resyncs in a row, counted as ``PollHealth`` counts them.
    public private(set) var consecutiveFailures = 0
    /// Why the last counted failure happened; `nil` after a success.
    public private(set) var lastFailure: BatchesAPIError.Reason?

    public init(configuration: Configuration) {
        self.configuration = configuration
    }

    /// Whether a resync is in progress across polls.
    public var resyncInProgress: Bool { resync != nil }

    /// Continues from a saved state: a listing if a full read had been adopted, and the resync
    /// due when it would have been had the exporter kept running.
    public mutating func restore(lastFullReadStarted: Instant?) {
        hasListing = lastFullReadStarted != nil
        self.lastFullReadStarted = lastFullReadStarted
    }

    /// A poll starts at `now`: a full read while there is no listing (or full reads are
    /// configured), else an incremental read.
    public func startPoll(at now: Instant) -> Poll {
        let kind: PollKind = !hasListing || configuration.fullResyncInterval == .zero ? .full : .incremental
        let due = lastFullReadStarted.map { now - $0 >= configuration.fullResyncInterval } ?? true
        return Poll(kind: kind, started: now, resyncDue: due)
    }

    /// The poll's reading succeeded.
    public mutating func pollSucceeded(_ poll: Poll) -> PollSucceeded {
        recordSuccess()
        switch poll.kind {
        case .full:
            hasListing = true
            lastFullReadStarted = poll.started
            resync = nil
            return .adoptFullRead
        case .incremental:
            guard poll.resyncDue, resync == nil else { return .applyIncremental(startResync: false) }
            resync = Resync(started: poll.started, cursor: nil)
            return .applyIncremental(startResync: true)
        }
    }

    /// The poll failed: nothing changes but the failure streak.
    public mutating func pollFailed(_ poll: Poll, reason: BatchesAPIError.Reason) {
        recordFailure(reason)
    }

    /// What a resync does after a poll: go on from where it stopped, unless there is none or
    /// the exporter is shutting down.
    public func resumeResync(shuttingDown: Bool) -> ResyncStep {
        guard let resync, !shuttingDown else { return .none }
        return .readPage(after: resync.cursor)
    }

    /// A resync page was read; `next` is the cursor of the page after it (`nil`: the last).
    public mutating func resyncPageRead(next: String?) -> ResyncStep {
        guard let current = resync else { return .none }
        guard let next else {
            resync = nil
            lastFullReadStarted = current.started
            return .adopt(started: current.started)
        }
        resync?.cursor = next
        return .readPage(after: next)
    }

    /// A resync page could not be read.
    public mutating func resyncPageFailed(reason: BatchesAPIError.Reason) -> ResyncStep {
        guard resync != nil else { return .none }
        guard PollHealth.countedReasons.contains(reason) else { return .pause }
        resync = nil
        recordFailure(reason)
        return .abandon
    }

    /// The wait before the next poll, for a poll that started at `pollStarted`, at `now`.
    /// After a success: the rest of the interval, so polls start on a steady rhythm. After
    /// failures: the interval doubled per consecutive failure, capped at ``maxBackoffFactor``
    /// intervals, so an outage or a revoked key does not spend the account's request budget.
    public func nextPoll(pollStarted: Instant, now: Instant) -> Wait {
        Wait(duration: delayBeforeNextPoll(lastPollTook: now - pollStarted), endsOnKeyRotation: lastFailure == .auth)
    }

    /// The wait of ``nextPoll(pollStarted:now:)`` for a poll that took `lastPollTook`.
    public func delayBeforeNextPoll(lastPollTook: Duration) -> Duration {
        let interval = configuration.pollInterval
        guard consecutiveFailures > 0 else {
            return max(.zero, interval - lastPollTook)
        }
        let factor = min(1 << min(consecutiveFailures, 10), Self.maxBackoffFactor)
        return interval * factor
    }

    private mutating func recordSuccess() {
        consecutiveFailures = 0
        lastFailure = nil
    }

    /// Counts only what ``PollHealth`` counts: a shutdown or the exporter's own budget is not a
    /// failure of the API and must not lengthen the wait.
    private mutating func recordFailure(_ reason: BatchesAPIError.Reason) {
        guard PollHealth.countedReasons.contains(reason) else { return }
        consecutiveFailures += 1
        lastFailure = reason
    }
}
