import Basics
import BatchesAPI
import Logging
import PrometheusExposition
import ServiceLifecycle
import Synchronization

/// Settings of one workspace's poll loop.
public struct PollerConfiguration: Sendable, Equatable {
    /// The `workspace` label value.
    public var workspace: String
    public var pollInterval: Duration
    /// Cap on batches with their own series; 0 turns per-batch series off.
    public var maxBatchMetrics: Int
    /// Ended batches keep their own series this long after `ended_at`.
    public var endedRetention: Duration
    /// How often everything is read again (deletions, archival); `.zero` reads everything on
    /// every poll, as a naive exporter would.
    public var fullResyncInterval: Duration
    /// Requests per minute, retries included; 0 for no budget.
    public var maxRequestsPerMinute: Int
    /// Download and count the results file of every batch seen ending.
    public var results: Bool

    public init(
        workspace: String,
        pollInterval: Duration,
        maxBatchMetrics: Int = 1000,
        endedRetention: Duration = .seconds(86_400),
        fullResyncInterval: Duration = .seconds(900),
        maxRequestsPerMinute: Int = 20,
        results: Bool = false
    ) {
        self.results = results
        self.workspace = workspace
        self.pollInterval = pollInterval
        self.maxBatchMetrics = maxBatchMetrics
        self.endedRetention = endedRetention
        self.fullResyncInterval = fullResyncInterval
        self.maxRequestsPerMinute = maxRequestsPerMinute
    }
}

/// Polls one workspace: the first poll at start, then one per interval (longer after
/// failures). Each poll ends in a complete snapshot or, on failure, changes nothing but the
/// health metrics: the last good snapshot stays served until a poll succeeds again.
///
/// After the first full read, polls are incremental (see ``IncrementalMerge``); a full resync
/// runs every `fullResyncInterval`, page by page with whatever request budget the incremental
/// polls leave, spread over as many poll intervals as that takes.
///
/// What to read and how long to wait are ``PollStateMachine``'s decisions; this class does
/// the reading, the ledger work and the waiting they call for.
public final class WorkspacePoller: Service, Sendable {
    private struct State: Sendable {
        var ledger = BatchLedger()
        /// What to read when, and how long to wait: every decision of the loop.
        var machine: PollStateMachine
        var summary: BatchSummary?
        var selection: PerBatchSelection?
        /// The ledger's listing version the summary and selection were taken at.
        var derivedFromVersion: UInt64?
        var lifecycle = BatchLifecycle()
        var lifecycleVersion: UInt64 = 0
        var corrections: [LedgerCorrection: UInt64] = [:]
        var health = PollHealth()
        /// The publisher's versions for the groups' own counters (see ``GroupVersions``).
        var groupVersions = GroupVersions()
        /// What a resync in progress has read; there while ``PollStateMachine/resyncInProgress``.
        var resync: ResyncProgress?
        /// When the last full read started, in wall time, for the state file (``StateFileStore``).
        var lastFullReadWall: Double?
        /// Batches the last incremental walk found new: room the next walk's first page leaves
        /// for arrivals (see ``IncrementalWalk/firstPageLimit(floor:ledgerCount:recentArrivals:pageLimit:)``).
        var recentArrivals = 0
        /// What the state file was last told about: see ``saveState(final:)``.
        var savedSignature: [UInt64] = []
        var rateLimits: [String: Double] = [:]
    }

    /// What a full read in progress across polls has read (where it goes on is the machine's).
    private struct ResyncProgress: Sendable {
        var builder = LedgerBuilder()
        var guardrail: PaginationGuard
        /// Batches incremental polls found deleted, and saw for the first time, since the read began.
        var deletedSince: Set<UInt64> = []
        var arrivedSince: Set<UInt64> = []
    }

    /// What one poll read, before it is folded into the ledger.
    private enum Reading: Sendable {
        case full(LedgerBuilder)
        /// The newest batches, newest first, and the oldest ledger position the walk reached
        /// (`nil`: the walk read to the end of the listing).
        case incremental(fresh: [MessageBatch], covering: Int?)
    }

    private let configuration: PollerConfiguration
    private let client: BatchesClient
    private let publisher: ExpositionPublisher
    private let budget: RequestBudget
    private let logger: Logger
    private let now: @Sendable () -> Double
    /// Times the polls, the waits between them and the request budget.
    private let clock: MonotonicClock
    private let exporterStartedAt: Double
    /// Batches first seen already ended count if they ended after this: the exporter's start,
    /// or the first run's start when the state came from `--storage.path`.
    private let countEndedAfter: Double
    private let stateStore: StateFileStore?
    private let state: Mutex<State>
    /// Downloads and counts the results of batches seen ending; `nil` unless results are on.
    private let results: ResultsCollector?

    /// Requests a results download leaves free in the budget's window: a steady-state poll
    /// needs one, and a retry or a second page should not wait behind downloads either.
    static let budgetReservedForPolls = 3

    /// - Parameter results: results downloads for this workspace (`--results.enabled`): the
    ///   collector's settings and the transport it streams files over.
    public init(
        configuration: PollerConfiguration,
        client: BatchesClient,
        publisher: ExpositionPublisher,
        logger: Logger,
        exporterStartedAt: Double,
        results: (configuration: ResultsCollector.Configuration, downloader: any ResultsDownloading)? = nil,
        now: @escaping @Sendable () -> Double,
        clock: MonotonicClock = .continuous,
        stateStore: StateFileStore? = nil
    ) {
        self.configuration = configuration
        self.client = client
        self.publisher = publisher
        self.clock = clock
        budget = RequestBudget(requestsPerMinute: configuration.maxRequestsPerMinute, clock: clock)
        var logger = logger
        logger[metadataKey: "workspace"] = "\(configuration.workspace)"
        self.logger = logger
        self.now = now
        self.exporterStartedAt = exporterStartedAt
        // Loaded here, not in run(), so the results collector below starts from its part. On a
        // reload the previous poller may still save after this: the file read here is then up
        // to one save interval old, which counts like a restart after a crash (README).
        let saved = stateStore?.load().restoredState
        countEndedAfter = saved?.countEndedAfter ?? exporterStartedAt
        self.stateStore = stateStore
        state = Mutex(
            State(
                machine: PollStateMachine(
                    configuration: .init(pollInterval: configuration.pollInterval, fullResyncInterval: configuration.fullResyncInterval)
                )
            )
        )
        let budget = self.budget
        self.results = results.map { results in
            ResultsCollector(
                configuration: results.configuration,
                downloader: results.downloader,
                requestHeaders: { client.resultsRequestHeaders() },
                // One download is one request of the workspace's budget, taken only while the
                // polls keep room: a download never makes a list poll wait.
                gate: { () throws(BatchesAPIError) in
                    guard budget.tryAcquire(leaving: Self.budgetReservedForPolls) else {
                        throw BatchesAPIError(reason: .deferred, message: "request budget kept for polls")
                    }
                },
                logger: logger,
                now: now,
                restoring: StateFile.decodeResults(saved?.results)
            )
        }
        if let saved { restore(saved) }
    }

    /// Polls until shutdown; the results collector, when on, downloads beside the polls in
    /// the same task group, so it stops with them.
    public func run() async throws {
        // Also when cancelled (a reload replacing this poller): the successor loads this file.
        // After the results collector stopped, so its last state is in it.
        defer { saveState(final: true) }
        await withDiscardingTaskGroup { group in
            if let results {
                group.addTask { await results.run() }
            }
            await pollLoop()
            group.cancelAll()
        }
    }

    private func pollLoop() async {
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            let started = clock.now
            let keyUsed = client.configuration.keySource.current()
            let fullReadBefore = state.withLock { $0.lastFullReadWall }
            await pollOnce()
            await continueResync()
            // After both return, when what a full read or resync held is gone.
            if state.withLock({ $0.lastFullReadWall }) != fullReadBefore { FreedMemory.returnToSystem() }
            saveState(final: false)
            let wait = state.withLock { $0.machine.nextPoll(pollStarted: started, now: clock.now) }
            let (delay, keyRefused) = (wait.duration, wait.endsOnKeyRotation)
            do {
                try await cancelWhenGracefulShutdown { [client, clock] in
                    guard keyRefused else { return try await clock.sleep(for: delay) }
                    // Backing off after the API refused the key: a rotated key file ends the
                    // wait at once instead of after up to ten intervals.
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        group.addTask { try await clock.sleep(for: delay) }
                        group.addTask { try await client.configuration.keySource.waitForKey(otherThan: keyUsed) }
                        try await group.next()
                        group.cancelAll()
                    }
                }
            } catch {
                return
            }
        }
    }

    /// Records what each request attempt came to, by kind, for `api_requests_total`.
    private final class RequestLog: Sendable {
        let entries = Mutex<[(code: String, kind: PollKind, rateLimits: [String: Double])]>([])
        func record(_ observation: RequestObservation, kind: PollKind) {
            entries.withLock { $0.append((observation.code, kind, observation.rateLimits)) }
        }
        var count: Int { entries.withLock { $0.count } }
    }

    /// The lifecycle and retention rules as of `now`.
    private func context(now: Double) -> LedgerContext {
        LedgerContext(
            countEndedAfter: countEndedAfter,
            now: now,
            endedRetention: configuration.maxBatchMetrics > 0 ? configuration.endedRetention.inSeconds : nil
        )
    }

    /// One poll: a full read when there is no listing yet (or full reads are configured),
    /// else an incremental walk over the ledger. Publishes the outcome either way.
    public func pollOnce() async {
        let started = clock.now
        let pageLimit = client.configuration.pageLimit
        let (poll, floor, firstPageLimit) = state.withLock { state in
            let floor = state.ledger.walkFloor
            let firstPageLimit = IncrementalWalk.firstPageLimit(
                floor: floor, ledgerCount: state.ledger.count, recentArrivals: state.recentArrivals, pageLimit: pageLimit)
            return (state.machine.startPoll(at: started), floor, firstPageLimit)
        }
        let requests = RequestLog()
        let kind = poll.kind
        let budget = self.budget
        let reportedWait = Mutex(false)
        let gate: RequestGate = { [self] () throws(BatchesAPIError) in
            do {
                try await budget.acquire {
                    // Count a poll that has to wait once, and say so now: the wait can last
                    // most of a minute, and a dashboard should not learn of it afterwards.
                    let first = reportedWait.withLock { reported in
                        defer { reported = true }
                        return !reported
                    }
                    guard first else { return }
                    budget.noteExhausted()
                    republish()
                    logger.debug("Request budget spent; the poll waits for it", metadata: ["budget_per_minute": "\(configuration.maxRequestsPerMinute)"])
                }
            } catch {
                throw BatchesAPIError(reason: .cancelled, message: "cancelled while waiting for the request budget")
            }
        }

        let result: Result<Reading, BatchesAPIError>
        do {
            result = .success(
                try await cancelWhenGracefulShutdown { [client, self] () async throws -> Reading in
                    switch kind {
                    case .full:
                        var builder = LedgerBuilder()
                        let context = self.context(now: self.now())
                        try await client.walkPages(beforeEachRequest: gate, observe: { requests.record($0, kind: .full) }) { page in
                            self.state.withLock { builder.add(page.data, comparingWith: $0.ledger, context: context) }
                            return true
                        }
                        return .full(builder)
                    case .incremental:
                        var walk = IncrementalWalk(floor: floor)
                        let end = try await client.walkPages(
                            firstPageLimit: firstPageLimit, beforeEachRequest: gate, observe: { requests.record($0, kind: .incremental) }
                        ) { page in
                            self.state.withLock { walk.observe(page.data, in: $0.ledger) }
                        }
                        return .incremental(fresh: walk.fresh, covering: walk.covering(listingEnded: end == .listingEnded))
                    }
                }
            )
        } catch let error as BatchesAPIError {
            result = .failure(error)
        } catch {
            result = .failure(BatchesAPIError(reason: .cancelled, message: "poll cancelled: \(error)"))
        }
        let duration = clock.now - started
        let completedAt = now()

        var events = PollEvents()
        let groups = state.withLock { state -> [FamilyGroup] in
            events.previousFailures = state.health.consecutiveFailures
            events.previousDropped = state.selection?.dropped
            record(requests, into: &state)
            switch result {
            case .success(let reading):
                let context = self.context(now: completedAt)
                let newlyEnded: [MessageBatch]
                switch (reading, state.machine.pollSucceeded(poll)) {
                case (.full(let builder), _):
                    let adopted = state.ledger.adopt(builder, context: context)
                    newlyEnded = adopted.newlyEnded
                    record(adopted.corrections, into: &state)
                    state.lastFullReadWall = completedAt - duration.inSeconds
                    state.resync = nil
                case (.incremental(let fresh, let covering), let decision):
                    let applied = state.ledger.apply(walk: fresh, covering: covering, context: context)
                    newlyEnded = applied.newlyEnded
                    state.recentArrivals = applied.arrived.count
                    state.resync?.deletedSince.formUnion(applied.deleted)
                    state.resync?.arrivedSince.formUnion(applied.arrived)
                    if decision == .applyIncremental(startResync: true) {
                        state.resync = ResyncProgress(guardrail: PaginationGuard(maxPages: client.configuration.maxPages))
                    }
                }
                events.newlyEnded = newlyEnded.count
                afterChange(&state, newlyEnded: newlyEnded, context: context, at: completedAt)
                state.health.recordSuccess(at: completedAt, duration: duration)
                events.batches = state.ledger.count
                events.dropped = state.selection?.dropped
            case .failure(let error):
                state.machine.pollFailed(poll, reason: error.reason)
                state.health.recordFailure(error.reason, duration: duration)
                events.failure = error
            }
            events.consecutiveFailures = state.health.consecutiveFailures
            events.nextDelay = state.machine.delayBeforeNextPoll(lastPollTook: duration)
            return familyGroups(&state)
        }
        publish(groups)
        log(events, kind: kind, duration: duration, requests: requests.count)
    }

    /// Derived state after the ledger moved: retention, lifecycle counters, and the summary and
    /// per-batch selection when (and only when) the ledger changed.
    private func afterChange(_ state: inout State, newlyEnded: [MessageBatch], context: LedgerContext, at time: Double) {
        let expired = state.ledger.expireRecords(context: context)
        if !newlyEnded.isEmpty {
            state.lifecycle.count(newlyEnded)
            state.lifecycleVersion &+= 1
            // The same rule as ended_total: each batch handed over once, none that ended before
            // the exporter knew of it.
            for batch in newlyEnded { results?.enqueue(EndedBatch(batch, fallbackEndedAt: time)) }
        }
        if state.derivedFromVersion == state.ledger.listingVersion {
            // Expired records are ended batches: the summary does not count them, and the
            // selection changes only if one of them was shown.
            guard !expired.isEmpty else { return }
            if let selection = state.selection?.removing(expired: expired) {
                state.selection = selection
                return
            }
        }
        state.derivedFromVersion = state.ledger.listingVersion
        state.summary = BatchSummary(state.ledger)
        state.selection = PerBatchSelection(ledger: state.ledger, maxBatches: configuration.maxBatchMetrics)
    }

    private func record(_ corrections: [LedgerCorrection: Int], into state: inout State) {
        for (kind, count) in corrections { state.corrections[kind, default: 0] += UInt64(count) }
        if !corrections.isEmpty {
            logger.info(
                "A full read corrected the incremental view",
                metadata: corrections.reduce(into: Logger.Metadata()) { $0[$1.key.rawValue] = "\($1.value)" }
            )
        }
    }

    /// Reads further pages of a full resync while the budget has room right now, never
    /// waiting for it: the next poll must not be delayed by a resync.
    func continueResync() async {
        let shuttingDown = Task.isShuttingDownGracefully
        var step = state.withLock { $0.machine.resumeResync(shuttingDown: shuttingDown) }
        guard case .readPage = step, var progress = state.withLock({ $0.resync }) else { return }
        // The progress now lives here alone: the state's copy goes, so the builder is not
        // copied page by page.
        state.withLock { $0.resync = nil }
        let requests = RequestLog()
        let budget = self.budget
        let gate: RequestGate = { () throws(BatchesAPIError) in
            guard budget.tryAcquire() else {
                throw BatchesAPIError(reason: .deferred, message: "request budget spent for now")
            }
        }
        var failure: BatchesAPIError?
        while case .readPage(let cursor) = step {
            do {
                let page = try await client.fetchPage(afterID: cursor, beforeEachRequest: gate) { requests.record($0, kind: .full) }
                let next = try progress.guardrail.next(after: page)
                let context = self.context(now: now())
                step = state.withLock { state in
                    progress.builder.add(page.data, comparingWith: state.ledger, context: context)
                    return state.machine.resyncPageRead(next: next)
                }
            } catch {
                failure = error
                step = state.withLock { $0.machine.resyncPageFailed(reason: error.reason) }
            }
        }
        if failure?.reason == .deferred { budget.noteExhausted() }
        let pagesRead = progress.builder.count
        let completedAt = now()
        let groups = state.withLock { state -> [FamilyGroup] in
            record(requests, into: &state)
            switch step {
            case .adopt(let started):
                let context = self.context(now: completedAt)
                let adopted = state.ledger.adopt(
                    progress.builder, deletedSince: progress.deletedSince, arrivedSince: progress.arrivedSince, context: context
                )
                record(adopted.corrections, into: &state)
                state.lastFullReadWall = completedAt - (clock.now - started).inSeconds
                afterChange(&state, newlyEnded: adopted.newlyEnded, context: context, at: completedAt)
            case .abandon:
                if let failure { state.health.recordFailure(failure.reason, duration: .zero) }
            case .pause:
                state.resync = progress
            case .readPage, .none:
                break
            }
            return familyGroups(&state)
        }
        publish(groups)
        if case .adopt = step {
            logger.debug("Full resync complete", metadata: ["batches": "\(pagesRead)", "requests": "\(requests.count)"])
        } else if case .abandon = step, let failure {
            logger.warning("Full resync failed; it will start over", metadata: ["reason": "\(failure.reason.rawValue)", "error": "\(failure)"])
        }
    }

    // MARK: - State across restarts

    /// Takes the state saved by an earlier run, if `--storage.path` has one: the ledger (so the
    /// first poll is incremental), the counters (they continue), and the first run's start (so
    /// a batch created and ended while the exporter was down counts once).
    private func restore(_ saved: SavedWorkspaceState) {
        let wallNow = now()
        let context = self.context(now: wallNow)
        state.withLock { state in
            state.ledger = saved.ledger
            state.lifecycle = saved.lifecycle
            state.lifecycleVersion &+= 1
            state.corrections = saved.corrections
            state.lastFullReadWall = saved.lastFullReadAt
            // The resync falls due when it would have had the exporter kept running.
            state.machine.restore(lastFullReadStarted: saved.lastFullReadAt.map { clock.now - .seconds(max(0, wallNow - $0)) })
            afterChange(&state, newlyEnded: [], context: context, at: wallNow)
            state.savedSignature = signature(of: state)
        }
    }

    /// Moves whenever something the state file holds has changed.
    private func signature(of state: State) -> [UInt64] {
        [state.ledger.version, state.lifecycleVersion, state.corrections.values.reduce(0, &+), results?.version ?? 0]
    }

    /// Saves the state after a poll that changed it, on the store's cadence, and always at the
    /// end of ``run()``. The copy is taken under the lock (copy-on-write: cheap); encoding and
    /// writing happen outside it.
    private func saveState(final: Bool) {
        guard let stateStore else { return }
        let wallNow = now()
        let snapshot = state.withLock { state -> SavedWorkspaceState? in
            guard state.machine.hasListing else { return nil }
            let signature = signature(of: state)
            let changed = signature != state.savedSignature
            state.savedSignature = signature
            guard stateStore.isDue(changed: changed, now: wallNow) || final else { return nil }
            return SavedWorkspaceState(
                ledger: state.ledger, lifecycle: state.lifecycle, corrections: state.corrections,
                countEndedAfter: countEndedAfter, lastFullReadAt: state.lastFullReadWall
            )
        }
        guard var snapshot else { return }
        snapshot.results = results.flatMap { StateFile.encodeResults($0.savedState) }
        stateStore.save(snapshot, now: wallNow)
    }

    /// Publishes the current state again, without a new poll result.
    private func republish() {
        publish(state.withLock { familyGroups(&$0) })
    }

    private func publish(_ groups: [FamilyGroup]) {
        let lastSuccess = state.withLock { $0.health.lastSuccessAt }
        publisher.publish(workspace: configuration.workspace, groups: groups, lastSuccessAt: lastSuccess)
    }

    private func record(_ requests: RequestLog, into state: inout State) {
        for entry in requests.entries.withLock({ $0 }) {
            state.health.recordRequest(code: entry.code, kind: entry.kind)
            state.rateLimits.merge(entry.rateLimits) { $1 }
        }
    }

    /// The workspace's families in groups, each rebuilt only when its version moved: an
    /// unchanged poll re-renders the health group alone.
    private func familyGroups(_ state: inout State) -> [FamilyGroup] {
        // The health group moves with every publish; the others when their own counters do.
        let makeVersion = { [publisher] in publisher.makeVersion() }
        let lifecycleVersion = state.groupVersions.version(of: "lifecycle", local: state.lifecycleVersion, makeVersion: makeVersion)
        let resultsVersion = results.map { state.groupVersions.version(of: "results", local: $0.version, makeVersion: makeVersion) }
        let derivedVersion = state.derivedFromVersion.map {
            state.groupVersions.version(of: "derived", local: $0, makeVersion: makeVersion)
        }
        let workspace = configuration.workspace
        let pollInterval = configuration.pollInterval
        let requestsPerMinute = configuration.maxRequestsPerMinute
        let (health, rateLimits, corrections, exhausted) = (state.health, state.rateLimits, state.corrections, budget.exhausted)
        let storage = stateStore?.families(workspace: workspace) ?? []
        var groups = [
            FamilyGroup(key: "health", version: publisher.makeVersion()) {
                WorkspaceMetrics.healthFamilies(workspace: workspace, health: health, pollInterval: pollInterval)
                    + WorkspaceMetrics.budgetFamilies(
                        workspace: workspace, exhausted: exhausted, requestsPerMinute: requestsPerMinute, rateLimits: rateLimits
                    )
                    + WorkspaceMetrics.correctionFamilies(workspace: workspace, corrections: corrections)
                    + storage
            }
        ]
        let lifecycle = state.lifecycle
        groups.append(
            FamilyGroup(key: "lifecycle", version: lifecycleVersion) {
                WorkspaceMetrics.lifecycleFamilies(workspace: workspace, lifecycle: lifecycle)
            })
        if let results, let resultsVersion {
            groups.append(FamilyGroup(key: "results", version: resultsVersion) { results.families(workspace: workspace) })
        }
        if state.machine.hasListing, let summary = state.summary, let version = derivedVersion {
            groups.append(
                FamilyGroup(key: "batches", version: version) {
                    WorkspaceMetrics.batchFamilies(workspace: workspace, summary: summary)
                })
            if let selection = state.selection {
                groups.append(
                    FamilyGroup(key: "per_batch", version: version) {
                        WorkspaceMetrics.perBatchFamilies(workspace: workspace, selection: selection, includingDropped: false)
                    })
                // A group of its own: ended batches leaving the retention move it on most polls
                // of a long retention, and re-rendering every per-batch series for it would
                // make those polls cost what the selection holds.
                let dropped = selection.dropped
                let droppedVersion = state.groupVersions.version(
                    of: "per_batch_dropped", local: UInt64(dropped), makeVersion: makeVersion
                )
                groups.append(
                    FamilyGroup(key: "per_batch_dropped", version: droppedVersion) {
                        [WorkspaceMetrics.perBatchDroppedFamily(workspace: workspace, dropped: dropped)]
                    })
            }
        }
        return groups
    }

    private struct PollEvents {
        var previousFailures = 0
        var previousDropped: Int?
        var failure: BatchesAPIError?
        var batches = 0
        var newlyEnded = 0
        var dropped: Int?
        var consecutiveFailures = 0
        var nextDelay: Duration = .zero
    }

    private func log(_ events: PollEvents, kind: PollKind, duration: Duration, requests: Int) {
        let timing: Logger.Metadata = [
            "duration_ms": "\(duration.inWholeMilliseconds)", "requests": "\(requests)", "kind": "\(kind.rawValue)",
        ]
        guard let failure = events.failure else {
            if events.previousFailures > 0 {
                logger.info("Poll succeeded again; serving fresh data", metadata: timing.merging(["failed_polls": "\(events.previousFailures)"]) { $1 })
            }
            logger.debug(
                "Poll complete",
                metadata: timing.merging(["batches": "\(events.batches)", "newly_ended": "\(events.newlyEnded)"]) { $1 }
            )
            // Once when it starts: the count then moves with nearly every batch that ends or
            // leaves the retention, and the gauge shows it.
            if let dropped = events.dropped, dropped > 0, (events.previousDropped ?? 0) == 0 {
                logger.warning(
                    "More batches qualify for per-batch series than --batch-metrics.max-batches allows; the oldest are left out",
                    metadata: ["dropped": "\(dropped)", "max_batches": "\(configuration.maxBatchMetrics)"]
                )
            }
            return
        }
        guard PollHealth.countedReasons.contains(failure.reason) else { return }
        var metadata = timing
        metadata["reason"] = "\(failure.reason.rawValue)"
        metadata["error"] = "\(failure.message)"
        if let status = failure.status { metadata["status"] = "\(status)" }
        if let type = failure.errorType { metadata["error_type"] = "\(type)" }
        if let requestID = failure.requestID { metadata["request_id"] = "\(requestID)" }
        metadata["consecutive_failures"] = "\(events.consecutiveFailures)"
        metadata["next_poll_in"] = "\(GoDuration.format(events.nextDelay))"
        if failure.reason == .auth {
            logger.error(
                "The API rejected the API key (HTTP \(failure.status.map(String.init) ?? "?")); check ANTHROPIC_API_KEY or --api-key-file. Serving the last good snapshot",
                metadata: metadata
            )
        } else {
            logger.warning("Poll failed; serving the last good snapshot", metadata: metadata)
        }
    }
}
