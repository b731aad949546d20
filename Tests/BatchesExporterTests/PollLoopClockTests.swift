import Basics
import BatchesAPI
import BatchesExporter
import BatchesSimulator
import CurlHTTP
import Logging
import ManualClock
import NIOCore
import PrometheusExposition
import Synchronization
import Testing

/// The simulator's responder as the HTTP layer, counting the requests that reach it.
final class CountingHTTP: HTTPGetting {
    let inner: ResponderHTTP
    private let count = Atomic<Int>(0)

    init(_ workspace: SimulatedWorkspace) {
        inner = ResponderHTTP(responder: SimulatorResponder(workspace: workspace))
    }

    var requests: Int { count.load(ordering: .acquiring) }

    func get(url: String, headers: [(name: String, value: String)]) async throws(CurlError) -> HTTPResponse {
        count.add(1, ordering: .releasing)
        return try await inner.get(url: url, headers: headers)
    }
}

/// The poll loop as ``WorkspacePoller/run()`` drives it, on a clock the test moves: when it
/// polls and how long it waits come from ``PollStateMachine``, and are seen here in whole
/// requests without any real wait.
@Suite("The poll loop on a manual clock", .timeLimit(.minutes(2)))
struct PollLoopClockTests {
    static func poller(
        _ http: CountingHTTP, key: String, clock: ManualClock, store: ExpositionStore = ExpositionStore(),
        configuration: PollerConfiguration = PollerConfiguration(workspace: "w", pollInterval: .seconds(60), maxRequestsPerMinute: 0),
        pageLimit: Int = 1000
    ) -> WorkspacePoller {
        let client = BatchesClient(
            configuration: .init(
                baseURL: "http://simulated.invalid", keySource: APIKeySource(key: APIKey(key)), pageLimit: pageLimit, retryPolicy: RetryPolicy(maxRetries: 0)
            ),
            http: http, logger: Logger(label: "test"), now: { 0 }
        )
        let publisher = ExpositionPublisher(store: store, constantFamilies: [], minimumRenderInterval: .zero, now: { 0 })
        return WorkspacePoller(
            configuration: configuration, client: client, publisher: publisher, logger: Logger(label: "test"), exporterStartedAt: 0,
            now: { 0 }, clock: MonotonicClock(clock)
        )
    }

    /// The value of the first sample of `name` whose line contains every one of `labels`.
    static func value(_ store: ExpositionStore, _ name: String, _ labels: [String] = []) -> Double? {
        guard let body = store.latest?.response(format: .text, tail: [], gzip: false) else { return nil }
        let line = String(decoding: body.shared.flatMap(\.readableBytesView), as: UTF8.self).split(separator: "\n").first { line in
            line.hasPrefix(name + "{") && labels.allSatisfy { line.contains($0) }
        }
        return line?.split(separator: " ").last.flatMap { Double($0) }
    }

    @Test("It polls at start, then when one interval has passed since the last poll started, not before")
    func interval() async throws {
        let clock = ManualClock()
        let http = CountingHTTP(SimulatedWorkspace(configuration: SimulatorConfiguration(apiKey: "sk-ant-loop", initialBatches: 10, initialActive: 2)))
        let poller = Self.poller(http, key: "sk-ant-loop", clock: clock)
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await poller.run() }
            await clock.waitForSleepers()
            #expect(http.requests == 1)
            clock.advance(by: .seconds(59))
            #expect(clock.sleeperCount == 1, "still waiting for the next poll")
            #expect(http.requests == 1)
            clock.advance(by: .seconds(1))
            await clock.waitForSleepers()
            #expect(http.requests == 2)
            group.cancelAll()
        }
    }

    @Test("After the API refuses the key it backs off: two intervals, then four")
    func backoff() async throws {
        let clock = ManualClock()
        let http = CountingHTTP(SimulatedWorkspace(configuration: SimulatorConfiguration(apiKey: "sk-ant-right", initialBatches: 3)))
        let poller = Self.poller(http, key: "sk-ant-wrong", clock: clock)
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await poller.run() }
            await clock.waitForSleepers()
            #expect(http.requests == 1)
            clock.advance(by: .seconds(119))
            #expect(clock.sleeperCount == 1)
            #expect(http.requests == 1, "a refused key is not polled again after one interval")
            clock.advance(by: .seconds(1))
            await clock.waitForSleepers()
            #expect(http.requests == 2)
            clock.advance(by: .seconds(239))
            #expect(clock.sleeperCount == 1)
            #expect(http.requests == 2)
            clock.advance(by: .seconds(1))
            await clock.waitForSleepers()
            #expect(http.requests == 3)
            group.cancelAll()
        }
    }

    @Test("A due resync reads what the budget leaves after each poll, goes on at the next poll, and is adopted at its last page")
    func resyncUnderBudget() async throws {
        let clock = ManualClock()
        let store = ExpositionStore()
        // 12 ended batches, 4 a page: a full read is 3 requests; an incremental poll, 1.
        let http = CountingHTTP(SimulatedWorkspace(configuration: SimulatorConfiguration(apiKey: "sk-ant-loop", initialBatches: 12)))
        let configuration = PollerConfiguration(
            workspace: "w", pollInterval: .seconds(60), fullResyncInterval: .seconds(120), maxRequestsPerMinute: 3
        )
        let poller = Self.poller(http, key: "sk-ant-loop", clock: clock, store: store, configuration: configuration, pageLimit: 4)
        let requests = "anthropic_batches_exporter_api_requests_total"
        let full = [#"kind="full""#]
        let incremental = [#"kind="incremental""#]
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await poller.run() }
            // 0 s: the first full read, three pages, the whole budget.
            await clock.waitForSleepers()
            #expect(Self.value(store, requests, full) == 3)
            // 60 s: an incremental poll; no resync yet.
            clock.advance(by: .seconds(60))
            await clock.waitForSleepers()
            #expect(Self.value(store, requests, incremental) == 1)
            #expect(Self.value(store, requests, full) == 3)
            // 120 s: the resync falls due. The window holds only this poll's request (the one
            // at 60 s leaves it now), so the resync reads two pages and defers the last.
            clock.advance(by: .seconds(60))
            await clock.waitForSleepers()
            #expect(Self.value(store, requests, incremental) == 2)
            #expect(Self.value(store, requests, full) == 5)
            #expect(Self.value(store, "anthropic_batches_exporter_api_budget_exhausted_total") == 1)
            // 180 s: it goes on from the page it stopped at and reads the last one.
            clock.advance(by: .seconds(60))
            await clock.waitForSleepers()
            #expect(Self.value(store, requests, incremental) == 3)
            #expect(Self.value(store, requests, full) == 6)
            #expect(Self.value(store, "anthropic_batches_exporter_api_budget_exhausted_total") == 1)
            // 240 s: adopted as a full read that started at 120 s, so the next is due now (not
            // at 300 s) and begins from the first page.
            clock.advance(by: .seconds(60))
            await clock.waitForSleepers()
            #expect(Self.value(store, requests, full) == 8)
            #expect(Self.value(store, "anthropic_batches_exporter_api_budget_exhausted_total") == 2)
            group.cancelAll()
        }
    }
}
