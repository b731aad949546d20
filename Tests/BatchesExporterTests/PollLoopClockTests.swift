import BatchesAPI
import BatchesExporter
import BatchesSimulator
import CurlHTTP
import Logging
import ManualClock
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
    static func poller(_ http: CountingHTTP, key: String, clock: ManualClock) -> WorkspacePoller {
        let client = BatchesClient(
            configuration: .init(baseURL: "http://simulated.invalid", apiKey: APIKey(key), retryPolicy: RetryPolicy(maxRetries: 0)),
            http: http, logger: Logger(label: "test"), now: { 0 }
        )
        let publisher = ExpositionPublisher(store: ExpositionStore(), constantFamilies: [], minimumRenderInterval: .zero, now: { 0 })
        return WorkspacePoller(
            configuration: PollerConfiguration(workspace: "w", pollInterval: .seconds(60), maxRequestsPerMinute: 0),
            client: client, publisher: publisher, logger: Logger(label: "test"), exporterStartedAt: 0, now: { 0 },
            clock: MonotonicClock(clock)
        )
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
}
