import Basics
import RFC3339
import Synchronization

/// A simulated Anthropic workspace: its message batches, newest first, their lifecycle over
/// simulated time, the scripted faults waiting for the next list requests, and a log of the
/// API requests received. Every read first brings the state up to the current simulated time.
public final class SimulatedWorkspace: Sendable {
    public let configuration: SimulatorConfiguration
    let state: Mutex<WorkspaceState>
    /// Origin of the request log's monotonic times; survives `reset` so those times only grow.
    let origin: ContinuousClock.Instant
    /// What realtime mode measures elapsed time with.
    let timeSource: any MonotonicTimeSource
    /// The key the API accepts: `configuration.apiKey` until `POST /_sim/api_key` changes it
    /// (a rotated key). `reset` leaves it alone.
    private let acceptedKey: Mutex<String>

    /// - Parameter timeSource: the clock realtime mode scales; tests pass a ``ManualTimeSource``.
    public init(configuration: SimulatorConfiguration, timeSource: any MonotonicTimeSource = ContinuousTimeSource()) {
        self.configuration = configuration
        self.timeSource = timeSource
        origin = .now
        acceptedKey = Mutex(configuration.apiKey)
        state = Mutex(
            WorkspaceState(configuration: configuration, wallClockNow: WallClock.now(), timeSource: timeSource))
    }

    /// The key requests must carry now.
    public var apiKey: String { acceptedKey.withLock { $0 } }

    /// Accepts `key` from now on, and no longer the previous one.
    public func setAPIKey(_ key: String) {
        acceptedKey.withLock { $0 = key }
    }

    /// The current simulated time, in seconds since the Unix epoch.
    public var now: Double {
        state.withLock { $0.catchUp() }
    }

    /// Moves simulated time forward (in realtime mode too) and applies what falls due.
    @discardableResult
    public func advance(seconds: Double) -> Double {
        state.withLock { $0.advance(seconds: max(0, seconds)) }
    }

    /// One page of the list, exactly as `GET /v1/messages/batches` pages.
    public func list(limit: Int = 20, afterID: String? = nil, beforeID: String? = nil) throws(ListError) -> BatchPage {
        try state.withLock { state throws(ListError) in
            state.catchUp()
            return try state.page(limit: limit, afterID: afterID, beforeID: beforeID)
        }
    }

    public func batch(id: String) -> SimulatedBatch? {
        state.withLock { state in
            state.catchUp()
            return state.batch(id: id)
        }
    }

    /// Every batch, newest first.
    public func allBatches() -> [SimulatedBatch] {
        state.withLock { state in
            state.catchUp()
            return state.allBatches()
        }
    }

    public func truth() -> SimulationTruth {
        state.withLock { state in
            let now = state.catchUp()
            return state.truth(now: now)
        }
    }

    /// Creates batches at the top of the list; returns their ids newest first.
    @discardableResult
    public func createBatches(_ spec: BatchSpec) throws(ControlError) -> [String] {
        try state.withLock { state throws(ControlError) in try state.createBatches(spec) }
    }

    /// Ends a batch now. Without `counts`, an in-progress batch's requests all succeed and a
    /// canceling batch's are all canceled; with them, they must sum to the batch's size.
    @discardableResult
    public func endBatch(id: String, counts: RequestCounts? = nil) throws(ControlError) -> SimulatedBatch {
        try state.withLock { state throws(ControlError) in try state.endBatch(id: id, counts: counts) }
    }

    /// Starts canceling an in-progress batch (a canceling one is left as it is).
    @discardableResult
    public func cancelBatch(id: String) throws(ControlError) -> SimulatedBatch {
        try state.withLock { state throws(ControlError) in try state.cancelBatch(id: id) }
    }

    public func deleteBatch(id: String) throws(ControlError) {
        try state.withLock { state throws(ControlError) in try state.deleteBatch(id: id) }
    }

    /// Queues `count` copies of a fault for the next list requests, one per request.
    public func enqueueFault(_ fault: SimulatedFault, count: Int = 1) {
        state.withLock { $0.faults.enqueue(fault, count: max(0, count)) }
    }

    public func clearFaults() {
        state.withLock { $0.faults.removeAll() }
    }

    public var pendingFaults: [SimulatedFault] {
        state.withLock { $0.faults.pending }
    }

    public var requestLog: [RequestLogEntry] {
        state.withLock { $0.requestLog.entries }
    }

    public func clearRequestLog() {
        state.withLock { $0.requestLog.removeAll() }
    }

    /// Starts over from the configuration, with any of its seeding values replaced. A manual
    /// clock restarts at the same start time; a realtime clock without an explicit start
    /// restarts at the wall clock. Faults and the request log are cleared.
    public func reset(seed: UInt64? = nil, initialBatches: Int? = nil, initialActive: Int? = nil) {
        var configuration = configuration
        if let seed { configuration.seed = seed }
        if let initialBatches { configuration.initialBatches = initialBatches }
        if let initialActive { configuration.initialActive = initialActive }
        state.withLock { state in
            if case .manual(nil) = configuration.time {
                configuration.time = .manual(start: state.resolvedStart)
            }
            var fresh = WorkspaceState(
                configuration: configuration, wallClockNow: WallClock.now(), timeSource: timeSource)
            fresh.setResultsBaseURL(state.resultsBaseURL)
            state = fresh
        }
    }

    // MARK: - Results

    /// Where `results_url` points (`<base>/v1/messages/batches/<id>/results`). The simulator
    /// binary sets its own listening URL here once bound, so clients can follow it.
    public var resultsBaseURL: String {
        get { state.withLock { $0.resultsBaseURL } }
        set { state.withLock { $0.setResultsBaseURL(newValue) } }
    }

    /// Sets (or with `nil` clears) how one batch's results look and where its `results_url` points.
    public func setResultsProfile(_ profile: ResultsProfile?, batchID: String) throws(ControlError) {
        try state.withLock { state throws(ControlError) in try state.setResultsProfile(profile, id: batchID) }
    }

    public func resultsProfile(batchID: String) -> ResultsProfile? {
        state.withLock { $0.resultsProfile(id: batchID) }
    }

    /// The whole results file of an ended, unarchived batch, rendered at once: for tests of
    /// small batches (the endpoint streams it instead). `nil` when the batch has no results.
    public func renderedResults(batchID: String) -> [UInt8]? {
        let plan = state.withLock { state in
            state.catchUp()
            return try? state.resultsPlan(id: batchID).get()
        }
        guard let plan else { return nil }
        var stream = ResultsStream(plan: plan, pieceBytes: 1 << 16, cutAfterBytes: nil)
        var bytes: [UInt8] = []
        while let piece = stream.nextBytes().bytes {
            bytes += piece
        }
        return bytes
    }

    /// Exact totals over the results of one batch, or of every batch whose results can be
    /// downloaded now (ended, not archived); `nil` when `batchID` names no such batch. Costs a
    /// rendering of every line, outside the lock.
    public func resultsTruth(batchID: String? = nil) -> ResultsTruth? {
        let plans: [ResultsPlan]? = state.withLock { state in
            state.catchUp()
            guard let batchID else { return state.downloadablePlans() }
            return (try? state.resultsPlan(id: batchID).get()).map { [$0] }
        }
        guard let plans else { return nil }
        var truth = ResultsTruth()
        for plan in plans {
            truth.add(plan)
        }
        return truth
    }

    /// Lines the truth over every downloadable batch would have to render.
    var downloadableLines: Int {
        state.withLock { state in
            state.catchUp()
            return state.downloadablePlans().reduce(0) { $0 + $1.lineCount }
        }
    }

    /// Queues `count` copies of a fault for the next results downloads, one per request.
    public func enqueueResultsFault(_ fault: ResultsFault, count: Int = 1) {
        state.withLock { $0.resultsFaults.enqueue(fault, count: max(0, count)) }
    }

    public func clearResultsFaults() {
        state.withLock { $0.resultsFaults.removeAll() }
    }

    public var pendingResultsFaults: [ResultsFault] {
        state.withLock { $0.resultsFaults.pending }
    }

    /// The one way into the state for the responder, so that the lock stays in this file.
    func withState<Result>(_ body: (inout WorkspaceState) -> Result) -> Result {
        state.withLock { body(&$0) }
    }

    func milliseconds(since instant: ContinuousClock.Instant) -> Int64 {
        origin.duration(to: instant).inWholeMilliseconds
    }
}
