import Basics
import BatchesAPI
import FoundationEssentials
import Logging
import PrometheusExposition
import Synchronization
import Testing

@testable import BatchesExporter

/// Wall-clock time that moves only when the collector sleeps: back-off waits pass at once and
/// deterministically.
final class VirtualClock: Sendable {
    private let time = Mutex<Double>(1_000_000)

    func now() -> Double { time.withLock { $0 } }

    func sleep(_ duration: Duration) async throws {
        try Task.checkCancellation()
        time.withLock { $0 += duration.inSeconds }
        await Task.yield()
    }

    func advance(_ seconds: Double) { time.withLock { $0 += seconds } }
}

/// A results server in memory: per URL, a script of responses taken in order (the last one
/// repeats). Records every request and how many ran at once.
final class ScriptedDownloader: ResultsDownloading {
    enum Step: Sendable {
        /// A response; the body comes in chunks of `chunkSize`; with `cutAfter`, the transfer
        /// fails after that many body bytes.
        case respond(status: Int, body: [UInt8], headers: [(name: String, value: String)] = [], chunkSize: Int = 1000, cutAfter: Int? = nil)
        /// No response at all.
        case fail
    }

    private let script: Mutex<[String: [Step]]>
    private let log = Mutex<[(url: String, headers: [(name: String, value: String)])]>([])
    private let concurrency = Mutex<(now: Int, peak: Int)>((0, 0))
    /// While closed, every download waits before answering.
    private let barrier = Mutex<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((true, []))

    init(_ script: [String: [Step]]) {
        self.script = Mutex(script)
    }

    var requests: [(url: String, headers: [(name: String, value: String)])] { log.withLock { $0 } }
    var requestCount: Int { log.withLock { $0.count } }
    var running: Int { concurrency.withLock { $0.now } }
    var peakConcurrency: Int { concurrency.withLock { $0.peak } }

    func close() { barrier.withLock { $0.open = false } }

    func open() {
        let waiters = barrier.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.open = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    func download(
        url: String,
        headers: [(name: String, value: String)],
        onHead: @escaping @Sendable (ResultsResponseHead) -> ResultsBodyDecision,
        onChunk: @escaping @Sendable (UnsafeRawBufferPointer) -> ResultsBodyDecision
    ) async throws(ResultsTransferError) {
        log.withLock { $0.append((url, headers)) }
        concurrency.withLock { state in
            state.now += 1
            state.peak = max(state.peak, state.now)
        }
        defer { concurrency.withLock { $0.now -= 1 } }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let passNow = barrier.withLock { state -> Bool in
                if state.open { return true }
                state.waiters.append(continuation)
                return false
            }
            if passNow { continuation.resume() }
        }
        let step = script.withLock { script -> Step in
            guard var steps = script[url], let first = steps.first else { return .respond(status: 404, body: []) }
            if steps.count > 1 {
                steps.removeFirst()
                script[url] = steps
            }
            return first
        }
        switch step {
        case .fail:
            throw ResultsTransferError("connection refused")
        case .respond(let status, let body, let headers, let chunkSize, let cutAfter):
            guard onHead(ResultsResponseHead(status: status, headers: headers)) == .proceed else { return }
            let end = min(body.count, cutAfter ?? body.count)
            var offset = 0
            while offset < end {
                let chunkEnd = min(end, offset + chunkSize)
                let decision = body[offset..<chunkEnd].withUnsafeBytes { onChunk($0) }
                guard decision == .proceed else { return }
                offset = chunkEnd
                await Task.yield()
            }
            if cutAfter != nil { throw ResultsTransferError("connection reset after \(end) bytes") }
        }
    }
}

@Suite("Results collector: downloads once, counts only whole files, retries, limits")
struct ResultsCollectorTests {
    static let base = "https://api.example.test"

    static func url(_ id: String) -> String { "\(base)/v1/messages/batches/\(id)/results" }

    /// A results file: `succeeded` lines of model "m" with 10 input and 5 output tokens each,
    /// then `errored` lines.
    static func file(succeeded: Int, errored: Int = 0, trailingNewline: Bool = true) -> [UInt8] {
        var lines: [String] = []
        for index in 0..<succeeded {
            lines.append(
                #"{"custom_id":"s\#(index)","result":{"type":"succeeded","message":{"model":"m","content":[{"type":"text","text":"secret output \#(index)"}],"stop_reason":"max_tokens","usage":{"input_tokens":10,"output_tokens":5}}}}"#
            )
        }
        for index in 0..<errored {
            lines.append(
                #"{"custom_id":"e\#(index)","result":{"type":"errored","error":{"type":"error","error":{"type":"overloaded_error","message":"secret"}}}}"#)
        }
        let text = lines.joined(separator: "\n") + (trailingNewline ? "\n" : "")
        return Array(text.utf8)
    }

    static func ended(_ id: String, succeeded: Int, errored: Int = 0, url: String? = nil, endedAt: Double = 500) -> EndedBatch {
        EndedBatch(id: id, resultsURL: url ?? Self.url(id), requestCounts: RequestCounts(succeeded: succeeded, errored: errored), endedAt: endedAt)
    }

    struct Harness {
        let collector: ResultsCollector
        let downloader: ScriptedDownloader
        let clock: VirtualClock
        let logs: LogCapture
        let task: Task<Void, Never>

        func stop() async {
            task.cancel()
            await task.value
        }
    }

    static func start(
        _ script: [String: [ScriptedDownloader.Step]],
        configuration: ResultsCollector.Configuration = ResultsCollector.Configuration(baseURL: base),
        gate: @escaping RequestGate = {},
        closed: Bool = false
    ) -> Harness {
        let downloader = ScriptedDownloader(script)
        if closed { downloader.close() }
        let clock = VirtualClock()
        let logs = LogCapture()
        let collector = ResultsCollector(
            configuration: configuration,
            downloader: downloader,
            requestHeaders: { [("x-api-key", "sk-secret-key"), ("anthropic-version", "2023-06-01"), ("accept", "application/json")] },
            gate: gate,
            logger: logs.logger,
            now: { clock.now() },
            sleep: { try await clock.sleep($0) }
        )
        let task = Task { await collector.run() }
        return Harness(collector: collector, downloader: downloader, clock: clock, logs: logs, task: task)
    }

    /// Waits for a condition that follows from events the test caused. The bound counts this
    /// task's own turns (at least 90 s of them), not wall time: while CPU-heavy tests hold the
    /// cooperative threads, neither this loop nor the collector runs, and that must not count.
    static func waitUntil(_ what: String, _ condition: () -> Bool) async throws {
        var turns = 0
        while !condition() {
            turns += 1
            guard turns < 30_000 else {
                Issue.record("gave up waiting until \(what)")
                throw CancellationError()
            }
            try await Task.sleep(for: .milliseconds(3))
        }
    }

    static func value(_ families: [MetricFamily], _ name: String, _ labels: [String: String]) -> Double? {
        guard let family = families.first(where: { $0.name == name }) else { return nil }
        return family.samples.first { sample in
            labels.allSatisfy { key, value in sample.labels.contains(Label(key, value)) }
        }?.value
    }

    static func outcome(_ collector: ResultsCollector, _ outcome: String) -> Double {
        value(collector.families(workspace: "w"), "anthropic_batches_exporter_results_batches", ["outcome": outcome]) ?? -1
    }

    @Test("A batch is downloaded once, with the key, x-jsonl and nothing else, and counted once")
    func countsOnce() async throws {
        let harness = Self.start([Self.url("b1"): [.respond(status: 200, body: Self.file(succeeded: 3, errored: 1))]])
        let before = harness.collector.version
        harness.collector.enqueue(Self.ended("b1", succeeded: 3, errored: 1))
        harness.collector.enqueue(Self.ended("b1", succeeded: 3, errored: 1))
        try await Self.waitUntil("the batch is counted") { Self.outcome(harness.collector, "complete") == 1 }
        // Handed over again after completion: still not downloaded again.
        harness.collector.enqueue(Self.ended("b1", succeeded: 3, errored: 1))
        await harness.stop()

        #expect(harness.downloader.requestCount == 1)
        let request = try #require(harness.downloader.requests.first)
        #expect(request.url == Self.url("b1"))
        #expect(request.headers.filter { $0.name == "accept" }.map(\.value) == ["application/x-jsonl"])
        #expect(request.headers.contains { $0.name == "x-api-key" && $0.value == "sk-secret-key" })

        let families = harness.collector.families(workspace: "w")
        #expect(harness.collector.version > before)
        #expect(Self.value(families, "anthropic_message_batches_result_requests", ["result": "succeeded"]) == 3)
        #expect(Self.value(families, "anthropic_message_batches_result_requests", ["result": "errored"]) == 1)
        #expect(Self.value(families, "anthropic_message_batches_result_requests", ["result": "expired"]) == 0)
        #expect(Self.value(families, "anthropic_message_batches_errored_requests", ["error_type": "overloaded_error"]) == 1)
        #expect(Self.value(families, "anthropic_message_batches_tokens", ["model": "m", "token_type": "input"]) == 30)
        #expect(Self.value(families, "anthropic_message_batches_tokens", ["model": "m", "token_type": "output"]) == 15)
        #expect(Self.value(families, "anthropic_message_batches_stop_reasons", ["model": "m", "stop_reason": "max_tokens"]) == 3)
        #expect(Self.value(families, "anthropic_batches_exporter_results_bytes", [:]) == Double(Self.file(succeeded: 3, errored: 1).count))
        #expect(Self.value(families, "anthropic_batches_exporter_results_waiting_batches", [:]) == 0)
        #expect(families.contains { $0.name == "anthropic_batches_exporter_results_oldest_waiting_timestamp_seconds" } == false)
        // No prices file: no cost families.
        #expect(families.contains { $0.name.contains("cost") || $0.name.contains("unpriced") } == false)
        // Content and the key never reach the exposition or the logs.
        let rendered = String(decoding: ExpositionRenderer.render(families, format: .text), as: UTF8.self)
        #expect(!rendered.contains("secret"))
        #expect(!harness.logs.text.contains("secret"))
        #expect(harness.logs.text.contains("b1"))
    }

    @Test("A stream cut off mid-file counts nothing; a later whole download counts once")
    func cutStream() async throws {
        let body = Self.file(succeeded: 50)
        let harness = Self.start([
            Self.url("b1"): [
                .respond(status: 200, body: body, chunkSize: 97, cutAfter: body.count / 2),
                .respond(status: 200, body: body, chunkSize: 97),
            ]
        ])
        harness.collector.enqueue(Self.ended("b1", succeeded: 50))
        try await Self.waitUntil("the batch is counted") { Self.outcome(harness.collector, "complete") == 1 }
        await harness.stop()
        let families = harness.collector.families(workspace: "w")
        #expect(harness.downloader.requestCount == 2)
        #expect(Self.outcome(harness.collector, "retrying") == 1)
        #expect(Self.value(families, "anthropic_message_batches_result_requests", ["result": "succeeded"]) == 50)
        #expect(Self.value(families, "anthropic_message_batches_tokens", ["model": "m", "token_type": "input"]) == 500)
        // Bytes count what was read, the cut attempt included.
        #expect(Self.value(families, "anthropic_batches_exporter_results_bytes", [:]) == Double(body.count + body.count / 2))
    }

    @Test("A file that ends early without a transport error fails the count check and is retried")
    func shortFile() async throws {
        let harness = Self.start([
            Self.url("b1"): [
                .respond(status: 200, body: Self.file(succeeded: 4)), .respond(status: 200, body: Self.file(succeeded: 5, trailingNewline: false)),
            ]
        ])
        harness.collector.enqueue(Self.ended("b1", succeeded: 5))
        try await Self.waitUntil("the batch is counted") { Self.outcome(harness.collector, "complete") == 1 }
        await harness.stop()
        #expect(Self.outcome(harness.collector, "retrying") == 1)
        #expect(Self.value(harness.collector.families(workspace: "w"), "anthropic_message_batches_result_requests", ["result": "succeeded"]) == 5)
    }

    @Test("A 404 just after the end is retried after a back-off, then counted")
    func notFoundThenSuccess() async throws {
        let harness = Self.start([
            Self.url("b1"): [
                .respond(status: 404, body: Array(#"{"type":"error","error":{"type":"not_found_error"}}"#.utf8)), .fail,
                .respond(status: 200, body: Self.file(succeeded: 2)),
            ]
        ])
        let started = harness.clock.now()
        harness.collector.enqueue(Self.ended("b1", succeeded: 2))
        try await Self.waitUntil("the batch is counted") { Self.outcome(harness.collector, "complete") == 1 }
        await harness.stop()
        #expect(harness.downloader.requestCount == 3)
        #expect(Self.outcome(harness.collector, "retrying") == 2)
        // Back-off: 15 s after the first failure, 30 s after the second.
        #expect(harness.clock.now() - started >= 45)
        #expect(harness.logs.text.contains("404"))
    }

    @Test("A results URL on another host, scheme or port is never requested, counted and warned about once per host")
    func foreignHost() async throws {
        let harness = Self.start([:])
        harness.collector.enqueue(Self.ended("b1", succeeded: 1, url: "https://evil.example/v1/messages/batches/b1/results"))
        harness.collector.enqueue(Self.ended("b2", succeeded: 1, url: "https://evil.example/other"))
        harness.collector.enqueue(Self.ended("b3", succeeded: 1, url: "http://api.example.test/v1/messages/batches/b3/results"))
        harness.collector.enqueue(Self.ended("b4", succeeded: 1, url: "https://api.example.test:8443/v1/messages/batches/b4/results"))
        await harness.stop()
        #expect(harness.downloader.requestCount == 0)
        #expect(Self.outcome(harness.collector, "skipped_host") == 4)
        #expect(harness.logs.lines.filter { $0.contains("evil.example") }.count == 1)
    }

    @Test("A relative results URL is fetched from the API base URL")
    func relativeURL() async throws {
        let harness = Self.start([Self.url("b1"): [.respond(status: 200, body: Self.file(succeeded: 1))]])
        harness.collector.enqueue(Self.ended("b1", succeeded: 1, url: "/v1/messages/batches/b1/results"))
        try await Self.waitUntil("the batch is counted") { Self.outcome(harness.collector, "complete") == 1 }
        await harness.stop()
        #expect(harness.downloader.requests.map(\.url) == [Self.url("b1")])
    }

    @Test("A file over max bytes is skipped, by its Content-Length or while streaming, and not retried")
    func maxBytes() async throws {
        let body = Self.file(succeeded: 20)
        var configuration = ResultsCollector.Configuration(baseURL: Self.base)
        configuration.maxBytes = UInt64(body.count - 1)
        let harness = Self.start(
            [
                Self.url("declared"): [.respond(status: 200, body: body, headers: [("Content-Length", "\(body.count)")])],
                Self.url("streamed"): [.respond(status: 200, body: body, chunkSize: 100)],
            ],
            configuration: configuration
        )
        harness.collector.enqueue(Self.ended("declared", succeeded: 20))
        harness.collector.enqueue(Self.ended("streamed", succeeded: 20))
        try await Self.waitUntil("both are skipped") { Self.outcome(harness.collector, "skipped_size") == 2 }
        await harness.stop()
        #expect(harness.downloader.requestCount == 2)
        let families = harness.collector.families(workspace: "w")
        #expect(Self.value(families, "anthropic_message_batches_result_requests", ["result": "succeeded"]) == 0)
        #expect(Self.outcome(harness.collector, "complete") == 0)
        // The streamed one stopped at the limit, the declared one read nothing.
        #expect((Self.value(families, "anthropic_batches_exporter_results_bytes", [:]) ?? 0) <= Double(body.count))
    }

    @Test("Results that never match request_counts are retried, then failed after the last attempt, counting nothing")
    func inconsistentThenFailed() async throws {
        var configuration = ResultsCollector.Configuration(baseURL: Self.base)
        configuration.retry = ResultsRetryPolicy(maxAttempts: 3, baseDelay: .seconds(10), maxDelay: .seconds(60))
        let harness = Self.start([Self.url("b1"): [.respond(status: 200, body: Self.file(succeeded: 3))]], configuration: configuration)
        harness.collector.enqueue(Self.ended("b1", succeeded: 4))
        try await Self.waitUntil("the batch fails") { Self.outcome(harness.collector, "failed") == 1 }
        await harness.stop()
        #expect(harness.downloader.requestCount == 3)
        #expect(Self.outcome(harness.collector, "retrying") == 2)
        let families = harness.collector.families(workspace: "w")
        #expect(Self.value(families, "anthropic_message_batches_result_requests", ["result": "succeeded"]) == 0)
        #expect(families.contains { $0.name == "anthropic_message_batches_tokens" } == false)
        #expect(Self.value(families, "anthropic_batches_exporter_results_waiting_batches", [:]) == 0)
    }

    @Test("At most --results.concurrency downloads run at once, and waiting batches are shown meanwhile")
    func concurrencyLimit() async throws {
        var script: [String: [ScriptedDownloader.Step]] = [:]
        for index in 0..<6 { script[Self.url("b\(index)")] = [.respond(status: 200, body: Self.file(succeeded: 1))] }
        var configuration = ResultsCollector.Configuration(baseURL: Self.base)
        configuration.concurrency = 2
        let harness = Self.start(script, configuration: configuration, closed: true)
        for index in 0..<6 { harness.collector.enqueue(Self.ended("b\(index)", succeeded: 1, endedAt: 100 + Double(index))) }
        try await Self.waitUntil("two downloads are running") { harness.downloader.running == 2 }
        let families = harness.collector.families(workspace: "w")
        #expect(Self.value(families, "anthropic_batches_exporter_results_waiting_batches", [:]) == 6)
        #expect(Self.value(families, "anthropic_batches_exporter_results_oldest_waiting_timestamp_seconds", [:]) == 100)
        // Give the loop every chance to start a third while two hang.
        for _ in 0..<50 { await Task.yield() }
        #expect(harness.downloader.requestCount == 2)
        harness.downloader.open()
        try await Self.waitUntil("all are counted") { Self.outcome(harness.collector, "complete") == 6 }
        await harness.stop()
        #expect(harness.downloader.peakConcurrency == 2)
        #expect(harness.downloader.requestCount == 6)
    }

    @Test("Every download passes the request gate; a refusal holds it back without spending an attempt")
    func requestGate() async throws {
        let calls = Mutex(0)
        let gate: RequestGate = { () throws(BatchesAPIError) in
            let count = calls.withLock { calls in
                calls += 1
                return calls
            }
            if count <= 2 { throw BatchesAPIError(reason: .deferred, message: "budget needed for polls") }
        }
        var configuration = ResultsCollector.Configuration(baseURL: Self.base)
        configuration.retry = ResultsRetryPolicy(maxAttempts: 1)
        let harness = Self.start([Self.url("b1"): [.respond(status: 200, body: Self.file(succeeded: 1))]], configuration: configuration, gate: gate)
        harness.collector.enqueue(Self.ended("b1", succeeded: 1))
        try await Self.waitUntil("the batch is counted") { Self.outcome(harness.collector, "complete") == 1 }
        await harness.stop()
        // Two refusals did not use up the single attempt allowed.
        #expect(calls.withLock { $0 } == 3)
        #expect(harness.downloader.requestCount == 1)
    }

    @Test("With a price table, cost is estimated with the batch discount and unpriced models are counted")
    func costs() async throws {
        var configuration = ResultsCollector.Configuration(baseURL: Self.base)
        configuration.prices = PriceTable(
            batchDiscount: 0.5,
            prefixes: ["m": PriceTable.Prices(input: 3, output: 15, cacheRead: 0.3, cacheWrite5m: 3.75, cacheWrite1h: 6)]
        )
        let other = Array(
            #"{"custom_id":"x","result":{"type":"succeeded","message":{"model":"unknown-model","stop_reason":"end_turn","usage":{"input_tokens":7,"output_tokens":1}}}}"#
                .utf8
        )
        let harness = Self.start(
            [Self.url("b1"): [.respond(status: 200, body: Self.file(succeeded: 2))], Self.url("b2"): [.respond(status: 200, body: other)]],
            configuration: configuration
        )
        harness.collector.enqueue(Self.ended("b1", succeeded: 2))
        harness.collector.enqueue(Self.ended("b2", succeeded: 1))
        try await Self.waitUntil("both are counted") { Self.outcome(harness.collector, "complete") == 2 }
        await harness.stop()
        let families = harness.collector.families(workspace: "w")
        // 20 input at $3/M and 10 output at $15/M, half price.
        let cost = try #require(Self.value(families, "anthropic_message_batches_estimated_cost_usd", ["model": "m"]))
        #expect(abs(cost - (20 * 3 + 10 * 15) / 1e6 * 0.5) < 1e-12)
        #expect(Self.value(families, "anthropic_message_batches_unpriced_tokens", ["model": "unknown-model"]) == 8)
        #expect(Self.value(families, "anthropic_message_batches_estimated_cost_usd", ["model": "unknown-model"]) == nil)
    }

    @Test("The saved state round-trips through JSON and a restored collector resumes its queue")
    func savedState() async throws {
        let harness = Self.start([Self.url("b2"): [.respond(status: 200, body: Self.file(succeeded: 1))]], closed: true)
        harness.collector.enqueue(Self.ended("b2", succeeded: 1))
        try await Self.waitUntil("the download started") { harness.downloader.running == 1 }
        let saved = harness.collector.savedState
        harness.downloader.open()
        await harness.stop()
        let data = try JSONEncoderShim.encode(saved)
        let restored = try JSONEncoderShim.decode(data)
        #expect(restored.totals == saved.totals)
        #expect(restored.outcomes == saved.outcomes)
        #expect(restored.queue.map(\.batch) == saved.queue.map(\.batch))
        #expect(restored.queue.map(\.batch.id) == ["b2"])
        #expect(restored.queue.allSatisfy { !$0.inFlight })

        let downloader = ScriptedDownloader([Self.url("b2"): [.respond(status: 200, body: Self.file(succeeded: 1))]])
        let clock = VirtualClock()
        let collector = ResultsCollector(
            configuration: .init(baseURL: Self.base), downloader: downloader, requestHeaders: { [] }, logger: Logger(label: "test"),
            now: { clock.now() }, sleep: { try await clock.sleep($0) }, restoring: restored
        )
        let task = Task { await collector.run() }
        try await Self.waitUntil("the restored batch is counted") { Self.outcome(collector, "complete") == 1 }
        task.cancel()
        await task.value
    }
}

enum JSONEncoderShim {
    static func encode(_ state: ResultsCollectorState) throws -> Data { try JSONEncoder().encode(state) }
    static func decode(_ data: Data) throws -> ResultsCollectorState { try JSONDecoder().decode(ResultsCollectorState.self, from: data) }
}

/// Captures log lines as text, to check what they say and what they never say.
final class LogCapture: Sendable {
    private let captured = Mutex<[String]>([])

    var lines: [String] { captured.withLock { $0 } }
    var text: String { lines.joined(separator: "\n") }

    var logger: Logger {
        var logger = Logger(label: "results-test") { _ in Handler(capture: self) }
        logger.logLevel = .trace
        return logger
    }

    func append(_ line: String) { captured.withLock { $0.append(line) } }

    struct Handler: LogHandler {
        let capture: LogCapture
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let fields = (event.metadata ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            capture.append("\(event.level) \(event.message) \(fields)")
        }
    }
}

@Suite("Ended batches handed to the collector")
struct ResultsEndedBatchTests {
    @Test("An ended batch carries the listed results_url, counts and ended_at, or the fallback time")
    func fromListedBatch() {
        let listed = MessageBatch(
            id: "b", processingStatus: .ended, requestCounts: RequestCounts(succeeded: 2, expired: 1), endedAt: 42, resultsURL: "/v1/r"
        )
        let ended = EndedBatch(listed, fallbackEndedAt: 99)
        #expect(ended == EndedBatch(id: "b", resultsURL: "/v1/r", requestCounts: RequestCounts(succeeded: 2, expired: 1), endedAt: 42))
        var noTime = listed
        noTime.endedAt = nil
        #expect(EndedBatch(noTime, fallbackEndedAt: 99).endedAt == 99)
    }
}
