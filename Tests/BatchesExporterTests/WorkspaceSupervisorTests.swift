import BatchesAPI
import BatchesExporter
import CurlHTTP
import Logging
import PrometheusExposition
import Synchronization
import Testing

/// A transport whose requests never answer: each stays in flight until its poller is
/// cancelled, so the count in flight says which pollers are running.
final class HangingTransport: HTTPGetting {
    let inFlight = Mutex<[String: Int]>([:])

    func get(url: String, headers: [(name: String, value: String)]) async throws(CurlError) -> HTTPResponse {
        let host = url.split(separator: "/").dropFirst().first.map(String.init) ?? url
        inFlight.withLock { $0[host, default: 0] += 1 }
        defer { inFlight.withLock { $0[host, default: 0] -= 1 } }
        do {
            try await Task.sleep(for: .seconds(3600))
        } catch {}
        throw CurlError(kind: .cancelled, code: 42, message: "cancelled")
    }

    func running(_ host: String) -> Int { inFlight.withLock { $0[host, default: 0] } }
}

@Suite struct WorkspaceSupervisorTests {
    static func settings(_ name: String, host: String) -> WorkspaceSettings {
        WorkspaceSettings(
            poller: PollerConfiguration(workspace: name, pollInterval: .seconds(60), maxRequestsPerMinute: 0),
            client: BatchesClient.Configuration(baseURL: "http://\(host)", keySource: APIKeySource(key: APIKey("k")), retryPolicy: RetryPolicy(maxRetries: 0))
        )
    }

    static func waitUntil(_ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while !condition(), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    @Test("Pollers run in the supervisor's run(); a replaced one has stopped when apply returns, and all have when run() returns")
    func structured() async throws {
        let transport = HangingTransport()
        let logger = Logger(label: "test")
        let publisher = ExpositionPublisher(store: ExpositionStore(), constantFamilies: [], minimumRenderInterval: .zero, now: { 0 })
        let supervisor = WorkspaceSupervisor(publisher: publisher, logger: logger) { settings in
            WorkspacePoller(
                configuration: settings.poller, client: BatchesClient(configuration: settings.client, http: transport, logger: logger, now: { 0 }),
                publisher: publisher, logger: logger, exporterStartedAt: 0, now: { 0 }
            )
        }
        try await supervisor.apply([Self.settings("a", host: "a-old"), Self.settings("b", host: "b")])
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await supervisor.run() }
            try await Self.waitUntil { transport.running("a-old") == 1 && transport.running("b") == 1 }
            #expect(transport.running("a-old") == 1 && transport.running("b") == 1)

            let changes = try await supervisor.apply([Self.settings("a", host: "a-new"), Self.settings("b", host: "b")])
            #expect(changes.changed == ["a"] && changes.unchanged == ["b"])
            #expect(transport.running("a-old") == 0, "the replaced poller's request ended before apply returned")
            try await Self.waitUntil { transport.running("a-new") == 1 }
            #expect(transport.running("a-new") == 1)
            group.cancelAll()
        }
        #expect(transport.running("a-new") == 0 && transport.running("b") == 0, "run() returned with every poller stopped")
    }
}
