import BatchesAPI
import BatchesExporter
import BatchesSimulator
import CurlHTTP
import HTTPServing
import Logging
import NIOCore
import PrometheusExposition
import Testing

/// The simulator's responder as a poller's HTTP layer: the bytes the binary would serve,
/// without sockets.
struct ResponderHTTP: HTTPGetting {
    let responder: SimulatorResponder

    func get(url: String, headers: [(name: String, value: String)]) async throws(CurlError) -> HTTPResponse {
        // The origin is the test's own invention; the responder routes by path and query.
        let target = url.firstRange(of: "/v1/").map { String(url[$0.lowerBound...]) } ?? "/"
        let response = responder.respond(to: ServerRequest(method: "GET", target: target, headers: headers))
        let body = Array(response.body.readableBytesView) + response.bodyTail.flatMap(\.readableBytesView)
        return HTTPResponse(status: response.status, headers: response.headers.map { ($0.name.lowercased(), $0.value) }, body: body)
    }
}

@Suite("A poller replacing another for the same workspace")
struct PollerReplacementTests {
    static func poller(for workspace: SimulatedWorkspace, key: String, publisher: ExpositionPublisher) -> WorkspacePoller {
        let client = BatchesClient(
            configuration: .init(baseURL: "http://simulated.invalid", keySource: APIKeySource(key: APIKey(key))),
            http: ResponderHTTP(responder: SimulatorResponder(workspace: workspace)),
            logger: Logger(label: "test"),
            now: { 0 }
        )
        return WorkspacePoller(
            configuration: PollerConfiguration(workspace: "w", pollInterval: .seconds(60), maxRequestsPerMinute: 0),
            client: client, publisher: publisher, logger: Logger(label: "test"), exporterStartedAt: 0, now: { 0 }
        )
    }

    static func inProgress(_ store: ExpositionStore) -> String? {
        guard let body = store.latest?.response(format: .text, tail: [], gzip: false) else { return nil }
        let text = String(decoding: body.shared.flatMap(\.readableBytesView), as: UTF8.self) + String(buffer: body.perScrape)
        let prefix = #"anthropic_message_batches{workspace="w",processing_status="in_progress"} "#
        return text.split(separator: "\n").first { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) }
    }

    /// A reload that changes a workspace's API (same name) starts a new poller without removing
    /// the workspace from the publisher. The new poller's own counters start where the old
    /// one's did; if they were the groups' versions, the cached families of the old API would
    /// be served for the new one until the counters drifted apart.
    @Test("Its first poll is served, though its counters restart where the old poller's were")
    func newPollerContentIsServed() async throws {
        let store = ExpositionStore()
        let publisher = ExpositionPublisher(store: store, constantFamilies: [], minimumRenderInterval: .zero, now: { 0 })
        let before = SimulatedWorkspace(configuration: SimulatorConfiguration(apiKey: "sk-ant-old", initialBatches: 10, initialActive: 2))
        let after = SimulatedWorkspace(configuration: SimulatorConfiguration(apiKey: "sk-ant-new", initialBatches: 10, initialActive: 7))

        await Self.poller(for: before, key: "sk-ant-old", publisher: publisher).pollOnce()
        #expect(Self.inProgress(store) == "2")
        await Self.poller(for: after, key: "sk-ant-new", publisher: publisher).pollOnce()
        #expect(Self.inProgress(store) == "7", "the replacing poller's listing, not the cached one of the poller it replaced")
    }
}
