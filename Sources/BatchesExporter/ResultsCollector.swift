import Basics
import BatchesAPI
import Logging
import PrometheusExposition
import Synchronization

/// Downloads and counts the results of every batch the poller saw end, for one workspace.
///
/// The poller calls ``enqueue(_:)`` once per batch it counts in
/// `anthropic_message_batches_ended_total`; ``run()`` (a child task of the workspace's task
/// group) downloads at most `concurrency` files at a time through the injected
/// ``ResultsDownloading``, each request passing the workspace's ``RequestGate`` first, and
/// streams each body through the scanner in constant memory. A batch's counts are added to
/// the workspace totals only when its file was read whole and agrees with its
/// `request_counts`; anything else is retried with back-off a bounded number of times, then
/// counted as failed. Nothing of the files' content is kept, logged or exposed: logs carry
/// the batch id, HTTP status, attempt and outcome only.
public final class ResultsCollector: Sendable {
    public struct Configuration: Sendable {
        /// The API base URL: results are fetched only from its scheme, host and port.
        public var baseURL: String
        /// Downloads at once (`--results.concurrency`).
        public var concurrency: Int
        /// Larger files are skipped (`--results.max-bytes`).
        public var maxBytes: UInt64
        public var retry: ResultsRetryPolicy
        /// Distinct values per label in the workspace totals before `other`.
        public var labelCap: Int
        /// `--results.prices-file`; without it no cost families are exposed.
        public var prices: PriceTable?
        /// Batches waiting at most; more are counted as failed.
        public var maxQueued: Int

        public init(
            baseURL: String,
            concurrency: Int = 1,
            maxBytes: UInt64 = 8 << 30,
            retry: ResultsRetryPolicy = ResultsRetryPolicy(),
            labelCap: Int = 100,
            prices: PriceTable? = nil,
            maxQueued: Int = 100_000
        ) {
            self.baseURL = baseURL
            self.concurrency = max(1, concurrency)
            self.maxBytes = maxBytes
            self.retry = retry
            self.labelCap = max(1, labelCap)
            self.prices = prices
            self.maxQueued = max(1, maxQueued)
        }
    }

    private let configuration: Configuration
    private let downloader: any ResultsDownloading
    private let requestHeaders: @Sendable () -> [(name: String, value: String)]
    private let gate: RequestGate
    private let logger: Logger
    private let now: @Sendable () -> Double
    private let sleep: @Sendable (Duration) async throws -> Void
    private let state: Mutex<ResultsCollectorState>
    private let changes = Atomic<UInt64>(0)
    private let wake = WakeSignal()

    /// - Parameters:
    ///   - requestHeaders: authentication and version headers, asked for at each request so a
    ///     rotated key is used (``BatchesClient/resultsRequestHeaders()``); `accept` is set here.
    ///   - gate: the workspace's request budget; one download is one request. Throwing holds
    ///     the download back without counting an attempt (e.g. while polls need the budget).
    ///   - now: wall-clock seconds since the epoch; `sleep` waits; both injected for tests.
    ///   - restoring: state saved from an earlier run.
    public init(
        configuration: Configuration,
        downloader: any ResultsDownloading,
        requestHeaders: @escaping @Sendable () -> [(name: String, value: String)],
        gate: @escaping RequestGate = {},
        logger: Logger,
        now: @escaping @Sendable () -> Double,
        sleep: @escaping @Sendable (Duration) async throws -> Void = { try await Task.sleep(for: $0) },
        restoring: ResultsCollectorState? = nil
    ) {
        self.configuration = configuration
        self.downloader = downloader
        self.requestHeaders = requestHeaders
        self.gate = gate
        self.logger = logger
        self.now = now
        self.sleep = sleep
        self.state = Mutex(restoring ?? ResultsCollectorState())
    }

    // MARK: Input and output

    /// Hands over a batch that just ended. Safe to call from any task; never waits.
    public func enqueue(_ batch: EndedBatch) {
        let result = state.withLock { $0.enqueue(batch, baseURL: configuration.baseURL, now: now(), maxQueued: configuration.maxQueued) }
        switch result {
        case .queued:
            changed()
            wake.signal()
        case .duplicate:
            break
        case .skippedHost(let host, let firstTime):
            changed()
            if firstTime {
                logger.warning(
                    "Not downloading results from a host other than the API's: the key stays with the API",
                    metadata: ["batch.id": "\(batch.id)", "host": "\(host)", "outcome": "skipped_host"]
                )
            }
        case .invalidURL:
            changed()
            logger.info("Batch has no usable results_url", metadata: ["batch.id": "\(batch.id)", "outcome": "failed"])
        case .queueFull:
            changed()
            logger.info("Results queue full; batch not downloaded", metadata: ["batch.id": "\(batch.id)", "outcome": "failed"])
        }
    }

    /// Changes whenever ``families(workspace:)`` would give something different.
    public var version: UInt64 { changes.load(ordering: .acquiring) }

    /// The collector's state, for saving (`--storage.path`); downloads in flight are saved
    /// as waiting.
    public var savedState: ResultsCollectorState { state.withLock { $0 } }

    /// Every results family of this workspace.
    public func families(workspace: String) -> [MetricFamily] {
        let snapshot = state.withLock { $0 }
        return ResultsMetrics.families(snapshot, workspace: workspace, pricesConfigured: configuration.prices != nil)
    }

    private func changed() {
        changes.add(1, ordering: .releasing)
    }

    // MARK: Run loop

    /// Downloads until cancelled.
    public func run() async {
        await withDiscardingTaskGroup { group in
            while !Task.isCancelled {
                let due = state.withLock { $0.takeDue(now: now(), limit: configuration.concurrency) }
                for item in due {
                    group.addTask { await self.attempt(item) }
                }
                let next = state.withLock { $0.nextDue(limit: configuration.concurrency) }
                await waitForWork(until: next)
            }
        }
    }

    /// Waits for an enqueue or a finished download, or until `deadline` (wall-clock seconds).
    private func waitForWork(until deadline: Double?) async {
        guard let deadline else {
            await wake.wait()
            return
        }
        let delay = deadline - now()
        guard delay > 0 else { return }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.wake.wait() }
            group.addTask { try? await self.sleep(.milliseconds(Int64((delay * 1000).rounded(.up)))) }
            await group.next()
            group.cancelAll()
        }
    }

    // MARK: One attempt

    private func attempt(_ item: ResultsCollectorState.Queued) async {
        defer { wake.signal() }
        let id = item.batch.id
        let result: ResultsCollectorState.AttemptResult
        var bytes: UInt64 = 0
        var status: Int?
        do throws(BatchesAPIError) {
            try await gate()
            let sink = ResultsSink(maxBytes: configuration.maxBytes, distinctLimit: 1000)
            var headers = requestHeaders().filter { $0.name.lowercased() != "accept" }
            headers.append((name: "accept", value: "application/x-jsonl"))
            var transferError: ResultsTransferError?
            do throws(ResultsTransferError) {
                try await downloader.download(
                    url: item.url,
                    headers: headers,
                    onHead: { sink.head($0) },
                    onChunk: { sink.chunk($0) }
                )
            } catch {
                transferError = error
            }
            let finished = sink.finish()
            bytes = finished.bytes
            status = finished.status
            result = Self.judge(finished, transferError: transferError, counts: item.batch.requestCounts)
        } catch {
            result = .deferred
        }
        let decision = state.withLock {
            $0.finish(
                id: id, result: result, bytes: bytes, now: now(), policy: configuration.retry, cap: configuration.labelCap,
                prices: configuration.prices
            )
        }
        changed()
        log(decision, id: id, status: status, result: result)
    }

    /// What a finished transfer amounts to.
    static func judge(
        _ finished: ResultsSink.Finished, transferError: ResultsTransferError?, counts: RequestCounts
    ) -> ResultsCollectorState.AttemptResult {
        if finished.tooLarge { return .tooLarge }
        guard let status = finished.status else {
            return .retryable(reason: "no response: \(transferError?.message ?? "transfer ended before a status")")
        }
        guard (200..<300).contains(status) else { return .retryable(reason: "HTTP \(status)") }
        if let transferError { return .retryable(reason: "transfer cut: \(transferError.message)") }
        guard let tally = finished.tally else { return .retryable(reason: "no body") }
        guard tally.consistent(with: counts) else {
            return .retryable(
                reason:
                    "file does not match request_counts: \(tally.lines) lines (\(tally.malformedLines) malformed) for \(counts.total - counts.processing) requests"
            )
        }
        return .complete(tally)
    }

    private func log(_ decision: ResultsCollectorState.Decision, id: String, status: Int?, result: ResultsCollectorState.AttemptResult) {
        var metadata: Logger.Metadata = ["batch.id": "\(id)"]
        if let status { metadata["status"] = "\(status)" }
        switch decision {
        case .committed:
            metadata["outcome"] = "complete"
            logger.info("Counted batch results", metadata: metadata)
        case .retrying(let attempt, let delay):
            metadata["outcome"] = "retrying"
            metadata["attempt"] = "\(attempt)"
            metadata["retry_in_s"] = "\(Int(delay.inSeconds))"
            if case .retryable(let reason) = result { metadata["reason"] = "\(reason)" }
            logger.info("Results download failed; will retry", metadata: metadata)
        case .failed(let attempts):
            metadata["outcome"] = "failed"
            metadata["attempts"] = "\(attempts)"
            if case .retryable(let reason) = result { metadata["reason"] = "\(reason)" }
            logger.info("Results download failed for good; the batch is not counted", metadata: metadata)
        case .skippedSize:
            metadata["outcome"] = "skipped_size"
            metadata["max_bytes"] = "\(configuration.maxBytes)"
            logger.info("Results file larger than --results.max-bytes; skipped", metadata: metadata)
        case .deferred:
            logger.debug("Results download held back by the request budget", metadata: metadata)
        case .unknown:
            break
        }
    }
}

/// Receives one download's head and body on the transfer's thread and scans it as it comes.
/// A class behind a Mutex: the downloader's callbacks are `@Sendable` and may run on a
/// thread of its own, one at a time.
final class ResultsSink: Sendable {
    struct Finished {
        var status: Int?
        var bytes: UInt64
        var tooLarge: Bool
        /// The tally, for a 2xx response only.
        var tally: ResultsTally?
    }

    private struct State: Sendable {
        var status: Int?
        var bytes: UInt64 = 0
        var tooLarge = false
        var stream: ResultsStreamTally?
    }

    private let maxBytes: UInt64
    private let state: Mutex<State>

    init(maxBytes: UInt64, distinctLimit: Int) {
        self.maxBytes = maxBytes
        self.state = Mutex(State(stream: ResultsStreamTally(distinctLimit: distinctLimit)))
    }

    func head(_ head: ResultsResponseHead) -> ResultsBodyDecision {
        state.withLock { state in
            state.status = head.status
            guard (200..<300).contains(head.status) else {
                // An error body is not results: do not read it.
                state.stream = nil
                return .stop
            }
            if let length = head.header("content-length").flatMap(UInt64.init), length > maxBytes {
                state.tooLarge = true
                return .stop
            }
            return .proceed
        }
    }

    func chunk(_ bytes: UnsafeRawBufferPointer) -> ResultsBodyDecision {
        state.withLock { state in
            guard state.stream != nil, !state.tooLarge else { return .stop }
            state.bytes += UInt64(bytes.count)
            guard state.bytes <= maxBytes else {
                state.tooLarge = true
                state.stream = nil
                return .stop
            }
            state.stream?.feed(bytes)
            return .proceed
        }
    }

    func finish() -> Finished {
        state.withLock { state in
            var tally: ResultsTally?
            if !state.tooLarge, var stream = state.stream {
                tally = stream.finish()
            }
            state.stream = nil
            return Finished(status: state.status, bytes: state.bytes, tooLarge: state.tooLarge, tally: tally)
        }
    }
}

/// A wake-up for one waiter: a signal sent while nobody waits is kept for the next wait.
final class WakeSignal: Sendable {
    private let state = Mutex<(pending: Bool, waiter: CheckedContinuation<Void, Never>?)>((false, nil))

    func signal() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.pending = true
            return nil
        }
        waiter?.resume()
    }

    /// Returns at the next signal (or at once if one is pending), or when the task is cancelled.
    func wait() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    if state.pending || Task.isCancelled {
                        state.pending = false
                        return true
                    }
                    state.waiter = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            signal()
        }
    }
}
