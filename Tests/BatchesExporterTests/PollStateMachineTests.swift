import BatchesAPI
import BatchesExporter
import Testing

@Suite("The poll loop's decisions")
struct PollStateMachineTests {
    typealias Machine = PollStateMachine
    static let t0 = ContinuousClock.now
    static func at(_ seconds: Int) -> ContinuousClock.Instant { t0 + .seconds(seconds) }

    /// A poll every 60 s, a full resync every 900 s.
    static func machine(pollInterval: Duration = .seconds(60), fullResyncInterval: Duration = .seconds(900)) -> Machine {
        Machine(configuration: .init(pollInterval: pollInterval, fullResyncInterval: fullResyncInterval))
    }

    /// A machine whose first full read (started at 0 s) was adopted.
    static func listed() -> Machine {
        var machine = machine()
        let first = machine.startPoll(at: at(0))
        _ = machine.pollSucceeded(first)
        return machine
    }

    // MARK: - Polls

    @Test("The first poll reads everything, and its success gives the machine a listing")
    func firstRead() {
        var machine = Self.machine()
        #expect(!machine.hasListing)
        let poll = machine.startPoll(at: Self.at(0))
        #expect(poll.kind == .full)
        #expect(machine.pollSucceeded(poll) == .adoptFullRead)
        #expect(machine.hasListing)
        #expect(machine.lastFullReadStarted == Self.at(0))
        #expect(!machine.resyncInProgress)
    }

    @Test("Until a full read succeeds every poll is a full read")
    func fullUntilListed() {
        var machine = Self.machine()
        let first = machine.startPoll(at: Self.at(0))
        machine.pollFailed(first, reason: .http5xx)
        #expect(machine.startPoll(at: Self.at(120)).kind == .full)
        #expect(!machine.hasListing)
    }

    @Test("With a listing, polls are incremental and start no resync before it is due")
    func incremental() {
        var machine = Self.listed()
        for second in stride(from: 60, to: 900, by: 60) {
            let poll = machine.startPoll(at: Self.at(second))
            #expect(poll.kind == .incremental)
            #expect(!poll.resyncDue)
            #expect(machine.pollSucceeded(poll) == .applyIncremental(startResync: false))
        }
        #expect(!machine.resyncInProgress)
        #expect(machine.lastFullReadStarted == Self.at(0), "an incremental poll is not a full read")
    }

    @Test("A full-resync interval of zero makes every poll a full read")
    func fullReadsConfigured() {
        var machine = Self.machine(fullResyncInterval: .zero)
        for second in [0, 60, 120] {
            let poll = machine.startPoll(at: Self.at(second))
            #expect(poll.kind == .full)
            #expect(machine.pollSucceeded(poll) == .adoptFullRead)
        }
        #expect(machine.lastFullReadStarted == Self.at(120))
        #expect(!machine.resyncInProgress)
    }

    // MARK: - Resync

    @Test("A resync falls due one interval after the last full read started, and begins after a successful poll")
    func resyncDue() {
        var machine = Self.listed()
        #expect(machine.resumeResync(shuttingDown: false) == .none)
        let early = machine.startPoll(at: Self.at(899))
        #expect(!early.resyncDue)
        _ = machine.pollSucceeded(early)
        let due = machine.startPoll(at: Self.at(900))
        #expect(due.resyncDue)
        #expect(machine.pollSucceeded(due) == .applyIncremental(startResync: true))
        #expect(machine.resyncInProgress)
        #expect(machine.resumeResync(shuttingDown: false) == .readPage(after: nil))
    }

    @Test("A due resync does not begin after a failed poll")
    func resyncWaitsForSuccess() {
        var machine = Self.listed()
        let poll = machine.startPoll(at: Self.at(900))
        machine.pollFailed(poll, reason: .timeout)
        #expect(!machine.resyncInProgress)
        #expect(machine.resumeResync(shuttingDown: false) == .none)
    }

    @Test("A resync goes on across polls under the budget from the page it stopped at, and is adopted at its last page")
    func resyncAcrossPolls() {
        var machine = Self.listed()
        _ = machine.pollSucceeded(machine.startPoll(at: Self.at(900)))
        // Poll 1: two pages, then the budget is spent.
        #expect(machine.resumeResync(shuttingDown: false) == .readPage(after: nil))
        #expect(machine.resyncPageRead(next: "b_2") == .readPage(after: "b_2"))
        #expect(machine.resyncPageRead(next: "b_4") == .readPage(after: "b_4"))
        #expect(machine.resyncPageFailed(reason: .deferred) == .pause)
        #expect(machine.consecutiveFailures == 0, "the exporter's own budget is not a failure")
        // Poll 2: an incremental poll while the resync is in progress starts no second one.
        let next = machine.startPoll(at: Self.at(960))
        #expect(next.kind == .incremental)
        #expect(next.resyncDue, "still due: no full read has been adopted since")
        #expect(machine.pollSucceeded(next) == .applyIncremental(startResync: false))
        #expect(machine.resumeResync(shuttingDown: false) == .readPage(after: "b_4"))
        #expect(machine.resyncPageRead(next: nil) == .adopt(started: Self.at(900)))
        #expect(!machine.resyncInProgress)
        #expect(machine.lastFullReadStarted == Self.at(900), "the resync counts from when it started, not when it ended")
        #expect(!machine.startPoll(at: Self.at(1799)).resyncDue)
        #expect(machine.startPoll(at: Self.at(1800)).resyncDue)
    }

    @Test("A resync cancelled by shutdown pauses; while shutting down none resumes")
    func resyncCancelled() {
        var machine = Self.listed()
        _ = machine.pollSucceeded(machine.startPoll(at: Self.at(900)))
        #expect(machine.resyncPageRead(next: "b_2") == .readPage(after: "b_2"))
        #expect(machine.resyncPageFailed(reason: .cancelled) == .pause)
        #expect(machine.resyncInProgress)
        #expect(machine.resumeResync(shuttingDown: true) == .none)
        #expect(machine.resumeResync(shuttingDown: false) == .readPage(after: "b_2"))
    }

    @Test(
        "A resync page that fails (a cursor the API lost, an outage) drops the resync, counts a failure, and the next poll starts over from the first page",
        arguments: [BatchesAPIError.Reason.http4xx, .http5xx, .pagination, .decode]
    )
    func resyncFallsBack(reason: BatchesAPIError.Reason) {
        var machine = Self.listed()
        _ = machine.pollSucceeded(machine.startPoll(at: Self.at(900)))
        #expect(machine.resyncPageRead(next: "b_2") == .readPage(after: "b_2"))
        #expect(machine.resyncPageFailed(reason: reason) == .abandon)
        #expect(!machine.resyncInProgress)
        #expect(machine.consecutiveFailures == 1)
        #expect(machine.lastFailure == reason)
        #expect(machine.lastFullReadStarted == Self.at(0), "nothing was adopted")
        let next = machine.startPoll(at: Self.at(1020))
        #expect(next.resyncDue)
        #expect(machine.pollSucceeded(next) == .applyIncremental(startResync: true))
        #expect(machine.resumeResync(shuttingDown: false) == .readPage(after: nil))
    }

    @Test("A full read adopted while a resync is in progress ends the resync")
    func fullReadSupersedesResync() {
        var machine = Self.listed()
        _ = machine.pollSucceeded(machine.startPoll(at: Self.at(900)))
        #expect(machine.resyncInProgress)
        // A saved state without a listing (a reset) makes the next poll a full read.
        machine.restore(lastFullReadStarted: nil)
        let full = machine.startPoll(at: Self.at(960))
        #expect(full.kind == .full)
        #expect(machine.pollSucceeded(full) == .adoptFullRead)
        #expect(!machine.resyncInProgress)
        #expect(machine.resumeResync(shuttingDown: false) == .none)
    }

    @Test("Resync events with no resync in progress change nothing")
    func resyncEventsWithoutResync() {
        var machine = Self.listed()
        #expect(machine.resyncPageRead(next: "b_2") == .none)
        #expect(machine.resyncPageRead(next: nil) == .none)
        #expect(machine.resyncPageFailed(reason: .http5xx) == .none)
        #expect(machine.consecutiveFailures == 0)
        #expect(machine.lastFullReadStarted == Self.at(0))
    }

    // MARK: - Restoring a saved state

    @Test("A restored listing makes the first poll incremental, with the resync due as it would have been")
    func restored() {
        var machine = Self.machine()
        machine.restore(lastFullReadStarted: Self.at(-1000))
        #expect(machine.hasListing)
        let poll = machine.startPoll(at: Self.at(0))
        #expect(poll.kind == .incremental)
        #expect(poll.resyncDue)
        var fresh = Self.machine()
        fresh.restore(lastFullReadStarted: Self.at(-100))
        #expect(!fresh.startPoll(at: Self.at(0)).resyncDue)
        var empty = Self.machine()
        empty.restore(lastFullReadStarted: nil)
        #expect(empty.startPoll(at: Self.at(0)).kind == .full)
    }

    // MARK: - Waiting

    @Test("After a success the next poll starts one interval after the last one started")
    func steadyRhythm() {
        var machine = Self.machine()
        let poll = machine.startPoll(at: Self.at(0))
        _ = machine.pollSucceeded(poll)
        #expect(machine.nextPoll(pollStarted: Self.at(0), now: Self.at(2)) == .init(duration: .seconds(58), endsOnKeyRotation: false))
        #expect(machine.nextPoll(pollStarted: Self.at(0), now: Self.at(75)).duration == .zero)
    }

    @Test("Consecutive failures double the wait, capped at ten intervals; a success resets it")
    func backoff() {
        var machine = Self.machine()
        var delays: [Duration] = []
        for index in 0..<6 {
            let poll = machine.startPoll(at: Self.at(index * 1000))
            machine.pollFailed(poll, reason: .http5xx)
            delays.append(machine.nextPoll(pollStarted: poll.started, now: poll.started + .seconds(1)).duration)
        }
        #expect(delays == [.seconds(120), .seconds(240), .seconds(480), .seconds(600), .seconds(600), .seconds(600)])
        let poll = machine.startPoll(at: Self.at(9000))
        _ = machine.pollSucceeded(poll)
        #expect(machine.nextPoll(pollStarted: poll.started, now: poll.started + .seconds(1)).duration == .seconds(59))
    }

    @Test("A failed resync lengthens the wait like a failed poll; a deferred one does not")
    func resyncFailureBacksOff() {
        var machine = Self.listed()
        let poll = machine.startPoll(at: Self.at(900))
        _ = machine.pollSucceeded(poll)
        #expect(machine.resyncPageFailed(reason: .deferred) == .pause)
        #expect(machine.nextPoll(pollStarted: poll.started, now: Self.at(901)).duration == .seconds(59))
        #expect(machine.resyncPageFailed(reason: .http5xx) == .abandon)
        #expect(machine.nextPoll(pollStarted: poll.started, now: Self.at(901)).duration == .seconds(120))
    }

    @Test("Shutdown and the exporter's own budget are not failures: no back-off", arguments: [BatchesAPIError.Reason.cancelled, .deferred])
    func uncountedFailures(reason: BatchesAPIError.Reason) {
        var machine = Self.listed()
        let poll = machine.startPoll(at: Self.at(60))
        machine.pollFailed(poll, reason: reason)
        #expect(machine.consecutiveFailures == 0)
        #expect(machine.lastFailure == nil)
        #expect(machine.nextPoll(pollStarted: poll.started, now: Self.at(61)).duration == .seconds(59))
    }

    @Test("A refused key backs off and lets a rotated key end the wait; a later success or another failure does not")
    func keyRefused() {
        var machine = Self.listed()
        let refused = machine.startPoll(at: Self.at(60))
        machine.pollFailed(refused, reason: .auth)
        #expect(machine.nextPoll(pollStarted: refused.started, now: Self.at(61)) == .init(duration: .seconds(120), endsOnKeyRotation: true))
        let other = machine.startPoll(at: Self.at(180))
        machine.pollFailed(other, reason: .transport)
        #expect(machine.nextPoll(pollStarted: other.started, now: Self.at(181)) == .init(duration: .seconds(240), endsOnKeyRotation: false))
        let rotated = machine.startPoll(at: Self.at(420))
        machine.pollFailed(rotated, reason: .auth)
        _ = machine.pollSucceeded(machine.startPoll(at: Self.at(421)))
        #expect(machine.nextPoll(pollStarted: Self.at(421), now: Self.at(422)) == .init(duration: .seconds(59), endsOnKeyRotation: false))
    }
}
