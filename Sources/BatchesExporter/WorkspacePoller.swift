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

    public init(
        workspace: String,
        pollInterval: Duration,
        maxBatchMetrics: Int = 1000,
        endedRetention: Duration = .seconds(86_400),
        fullResyncInterval: Duration = .seconds(900),
        maxRequestsPerMinute: Int = 20
    ) {
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
public final class WorkspacePoller: Service, Sendable {
    private struct State: Sendable {
        var snapshot: WorkspaceSnapshot?
        var selection: PerBatchSelection?
        var lifecycle: BatchLifecycle
        var health = PollHealth()
        /// A completed resync waiting to become the base of the next incremental walk.
        var resyncedBase: [MessageBatch]?
        var resync: ResyncProgress?
        var lastFullReadStarted: ContinuousClock.Instant?
        var rateLimits: [String: Double] = [:]
    }

    /// A full read in progress across polls.
    private struct ResyncProgress: Sendable {
        var cursor: String?
        var batches: [MessageBatch] = []
        var guardrail: PaginationGuard
        var started: ContinuousClock.Instant
    }

    private let configuration: PollerConfiguration
    private let client: BatchesClient
    private let publisher: ExpositionPublisher
    private let budget: RequestBudget
    private let logger: Logger
    private let now: @Sendable () -> Double
    private let state: Mutex<State>

    public init(
        configuration: PollerConfiguration,
        client: BatchesClient,
        publisher: ExpositionPublisher,
        logger: Logger,
        exporterStartedAt: Double,
        now: @escaping @Sendable () -> Double
    ) {
        self.configuration = configuration
        self.client = client
        self.publisher = publisher
        budget = RequestBudget(requestsPerMinute: configuration.maxRequestsPerMinute)
        var logger = logger
        logger[metadataKey: "workspace"] = "\(configuration.workspace)"
        self.logger = logger
        self.now = now
        state = Mutex(State(lifecycle: BatchLifecycle(exporterStartedAt: exporterStartedAt)))
    }

    public func run() async throws {
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            let started = ContinuousClock.now
            await pollOnce()
            await continueResync()
            let delay = state.withLock {
                $0.health.delayBeforeNextPoll(interval: configuration.pollInterval, lastPollTook: ContinuousClock.now - started)
            }
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: delay) }
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

    /// One poll: a full read when there is no snapshot yet (or full reads are configured),
    /// else an incremental walk over the last snapshot. Publishes the outcome either way.
    public func pollOnce() async {
        let started = ContinuousClock.now
        let (base, resyncDue) = state.withLock { state -> (WorkspaceSnapshot?, Bool) in
            // A completed resync stays the base until a poll over it succeeds: a failed poll
            // must not throw away a full read that took many intervals of budget.
            let base = state.resyncedBase.map { WorkspaceSnapshot(batches: $0, takenAt: 0) } ?? state.snapshot
            let due = state.lastFullReadStarted.map { started - $0 >= configuration.fullResyncInterval } ?? true
            return (base, due)
        }
        let requests = RequestLog()
        let kind: PollKind = base == nil || configuration.fullResyncInterval == .zero ? .full : .incremental
        let budget = self.budget
        let reportedWait = Mutex(false)
        let gate: RequestGate = { [self] _ throws(BatchesAPIError) in
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

        let result: Result<[MessageBatch], BatchesAPIError>
        do {
            result = .success(
                try await cancelWhenGracefulShutdown { [client] () async throws -> [MessageBatch] in
                    switch kind {
                    case .full:
                        return try await client.listAll(beforeEachRequest: gate) { requests.record($0, kind: .full) }
                    case .incremental:
                        var merge = IncrementalMerge(previous: base ?? WorkspaceSnapshot(batches: [], takenAt: 0))
                        let end = try await client.walkPages(beforeEachRequest: gate, observe: { requests.record($0, kind: .incremental) }) {
                            merge.observe($0)
                        }
                        return merge.merged(listingEnded: end == .listingEnded)
                    }
                }
            )
        } catch let error as BatchesAPIError {
            result = .failure(error)
        } catch {
            result = .failure(BatchesAPIError(reason: .cancelled, message: "poll cancelled: \(error)"))
        }
        let duration = ContinuousClock.now - started
        let completedAt = now()

        var events = PollEvents()
        let (families, lastSuccess) = state.withLock { state -> ([MetricFamily], Double?) in
            events.previousFailures = state.health.consecutiveFailures
            events.previousDropped = state.selection?.dropped
            record(requests, into: &state)
            switch result {
            case .success(let batches):
                let snapshot = WorkspaceSnapshot(batches: batches, takenAt: completedAt)
                state.snapshot = snapshot
                state.resyncedBase = nil
                if kind == .full {
                    state.lastFullReadStarted = started
                    state.resync = nil
                } else if resyncDue, state.resync == nil {
                    state.resync = ResyncProgress(guardrail: PaginationGuard(maxPages: client.configuration.maxPages), started: started)
                }
                events.newlyEnded = state.lifecycle.observe(snapshot.batches).count
                state.selection = PerBatchSelection(
                    from: snapshot.batches,
                    now: completedAt,
                    maxBatches: configuration.maxBatchMetrics,
                    endedRetention: configuration.endedRetention
                )
                state.health.recordSuccess(at: completedAt, duration: duration)
                events.batches = snapshot.batches.count
                events.dropped = state.selection?.dropped
            case .failure(let error):
                state.health.recordFailure(error.reason, duration: duration)
                events.failure = error
            }
            events.consecutiveFailures = state.health.consecutiveFailures
            events.nextDelay = state.health.delayBeforeNextPoll(interval: configuration.pollInterval, lastPollTook: duration)
            return (renderFamilies(state), state.health.lastSuccessAt)
        }
        publisher.publish(workspace: configuration.workspace, families: families, lastSuccessAt: lastSuccess)
        log(events, kind: kind, duration: duration, requests: requests.count)
    }

    /// Reads further pages of a full resync while the budget has room right now, never
    /// waiting for it: the next poll must not be delayed by a resync.
    func continueResync() async {
        guard var progress = state.withLock({ $0.resync }), !Task.isShuttingDownGracefully else { return }
        let requests = RequestLog()
        let budget = self.budget
        let gate: RequestGate = { _ throws(BatchesAPIError) in
            guard budget.tryAcquire() else {
                throw BatchesAPIError(reason: .deferred, message: "request budget spent for now")
            }
        }
        var completed = false
        var failure: BatchesAPIError?
        do {
            while true {
                let page = try await client.fetchPage(afterID: progress.cursor, beforeEachRequest: gate) { requests.record($0, kind: .full) }
                let next = try progress.guardrail.next(after: page)
                progress.batches.append(contentsOf: page.data)
                guard let next else {
                    completed = true
                    break
                }
                progress.cursor = next
            }
        } catch {
            failure = error
        }
        if failure?.reason == .deferred { budget.noteExhausted() }
        let (families, lastSuccess) = state.withLock { state -> ([MetricFamily], Double?) in
            record(requests, into: &state)
            if completed {
                state.resyncedBase = progress.batches
                state.lastFullReadStarted = progress.started
                state.resync = nil
            } else if let failure, failure.reason != .deferred, failure.reason != .cancelled {
                // Start over next time: a half-read resync after an error cannot be trusted.
                state.health.recordFailure(failure.reason, duration: .zero)
                state.resync = nil
            } else {
                state.resync = progress
            }
            return (renderFamilies(state), state.health.lastSuccessAt)
        }
        publisher.publish(workspace: configuration.workspace, families: families, lastSuccessAt: lastSuccess)
        if completed {
            logger.debug("Full resync complete", metadata: ["batches": "\(progress.batches.count)", "requests": "\(requests.count)"])
        } else if let failure, failure.reason != .deferred, failure.reason != .cancelled {
            logger.warning("Full resync failed; it will start over", metadata: ["reason": "\(failure.reason.rawValue)", "error": "\(failure)"])
        }
    }

    /// Publishes the current state again, without a new poll result.
    private func republish() {
        let (families, lastSuccess) = state.withLock { (renderFamilies($0), $0.health.lastSuccessAt) }
        publisher.publish(workspace: configuration.workspace, families: families, lastSuccessAt: lastSuccess)
    }

    private func record(_ requests: RequestLog, into state: inout State) {
        for entry in requests.entries.withLock({ $0 }) {
            state.health.recordRequest(code: entry.code, kind: entry.kind)
            state.rateLimits.merge(entry.rateLimits) { $1 }
        }
    }

    private func renderFamilies(_ state: State) -> [MetricFamily] {
        var families = WorkspaceMetrics.families(
            WorkspaceMetrics.Inputs(
                workspace: configuration.workspace,
                snapshot: state.snapshot,
                selection: state.selection,
                lifecycle: state.lifecycle,
                health: state.health,
                pollInterval: configuration.pollInterval
            )
        )
        families += WorkspaceMetrics.budgetFamilies(
            workspace: configuration.workspace,
            exhausted: budget.exhausted,
            requestsPerMinute: configuration.maxRequestsPerMinute,
            rateLimits: state.rateLimits
        )
        return families
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
            "duration_ms": "\(Int(duration.inSeconds * 1000))", "requests": "\(requests)", "kind": "\(kind.rawValue)",
        ]
        guard let failure = events.failure else {
            if events.previousFailures > 0 {
                logger.info("Poll succeeded again; serving fresh data", metadata: timing.merging(["failed_polls": "\(events.previousFailures)"]) { $1 })
            }
            logger.debug(
                "Poll complete",
                metadata: timing.merging(["batches": "\(events.batches)", "newly_ended": "\(events.newlyEnded)"]) { $1 }
            )
            if let dropped = events.dropped, dropped != events.previousDropped, dropped > 0 {
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
