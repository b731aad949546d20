import BatchesAPI
import Logging
import PrometheusExposition
import ServiceLifecycle
import Synchronization

/// Settings of one workspace's poll loop.
public struct PollerConfiguration: Sendable {
    /// The `workspace` label value.
    public var workspace: String
    public var pollInterval: Duration
    /// Cap on batches with their own series; 0 turns per-batch series off.
    public var maxBatchMetrics: Int
    /// Ended batches keep their own series this long after `ended_at`.
    public var endedRetention: Duration

    public init(workspace: String, pollInterval: Duration, maxBatchMetrics: Int = 1000, endedRetention: Duration = .seconds(86_400)) {
        self.workspace = workspace
        self.pollInterval = pollInterval
        self.maxBatchMetrics = maxBatchMetrics
        self.endedRetention = endedRetention
    }
}

/// Polls one workspace: the first poll at start, then one per interval (longer after
/// failures), each a complete listing turned into a new snapshot or, on failure, into nothing
/// but health metrics. The last good snapshot stays served until a poll succeeds again.
public final class WorkspacePoller: Service, Sendable {
    private struct State: Sendable {
        var snapshot: WorkspaceSnapshot?
        var selection: PerBatchSelection?
        var lifecycle: BatchLifecycle
        var health = PollHealth()
    }

    private let configuration: PollerConfiguration
    private let client: BatchesClient
    private let publisher: ExpositionPublisher
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

    /// One complete poll: list everything, then publish either a new snapshot or the failure.
    public func pollOnce() async {
        let started = ContinuousClock.now
        let requests = Mutex<[String]>([])
        let result: Result<[MessageBatch], BatchesAPIError>
        do {
            let batches = try await cancelWhenGracefulShutdown { [client] in
                try await client.listAll { observation in requests.withLock { $0.append(observation.code) } }
            }
            result = .success(batches)
        } catch let error as BatchesAPIError {
            result = .failure(error)
        } catch {
            result = .failure(BatchesAPIError(reason: .cancelled, message: "poll cancelled: \(error)"))
        }
        let duration = ContinuousClock.now - started
        let completedAt = now()

        let (families, lastSuccess, events) = state.withLock { state in
            var events = PollEvents(previousFailures: state.health.consecutiveFailures, previousDropped: state.selection?.dropped)
            for code in requests.withLock({ $0 }) {
                state.health.recordRequest(code: code, kind: .full)
            }
            switch result {
            case .success(let batches):
                let snapshot = WorkspaceSnapshot(batches: batches, takenAt: completedAt)
                state.snapshot = snapshot
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
            let inputs = WorkspaceMetrics.Inputs(
                workspace: configuration.workspace,
                snapshot: state.snapshot,
                selection: state.selection,
                lifecycle: state.lifecycle,
                health: state.health,
                pollInterval: configuration.pollInterval
            )
            return (WorkspaceMetrics.families(inputs), state.health.lastSuccessAt, events)
        }
        publisher.publish(workspace: configuration.workspace, families: families, lastSuccessAt: lastSuccess)
        log(events, duration: duration, requests: requests.withLock { $0.count })
    }

    private struct PollEvents {
        var previousFailures: Int
        var previousDropped: Int?
        var failure: BatchesAPIError?
        var batches = 0
        var newlyEnded = 0
        var dropped: Int?
        var consecutiveFailures = 0
        var nextDelay: Duration = .zero
    }

    private func log(_ events: PollEvents, duration: Duration, requests: Int) {
        let timing: Logger.Metadata = [
            "duration_ms": "\(Int(duration.inSeconds * 1000))", "requests": "\(requests)",
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
        guard failure.reason != .cancelled else { return }
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
