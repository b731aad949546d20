import BatchesExporter
import BatchesSimulator
import PrometheusExposition
import Testing

@Suite("How much a steady poll asks the API for")
struct SteadyWalkTests {
    @Test(
        "The first page asks for the newest down to the floor plus room for arrivals, never more than a page",
        arguments: [
            // floor, ledger count, recent arrivals, page limit → limit
            (Int?.none, 0, 0, 1000, 1000),  // nothing known yet: a full page
            (Int?(2995), 3000, 0, 1000, 105),  // five not ended at the top: them and 100 of room
            (Int?(2999), 3000, 0, 1000, 101),  // every batch ended: the newest and room
            (Int?(2845), 3000, 150, 1000, 455),  // 155 deep, 150 arrived last time: room for 300
            (Int?(0), 3000, 0, 1000, 1000),  // the oldest batch still running: capped at the page
            (Int?(2995), 3000, 0, 50, 50),  // --api.page-size below the estimate wins
            (Int?(3000), 3000, -4, 1000, 100),  // nonsense inputs stay in range
        ])
    func firstPageLimit(floor: Int?, count: Int, arrivals: Int, pageLimit: Int, expected: Int) {
        #expect(IncrementalWalk.firstPageLimit(floor: floor, ledgerCount: count, recentArrivals: arrivals, pageLimit: pageLimit) == expected)
    }

    static func limits(_ workspace: SimulatedWorkspace) -> [String] {
        workspace.requestLog.map { entry in
            entry.query.split(separator: "&").first { $0.hasPrefix("limit=") }.map { String($0.dropFirst(6)) } ?? "none"
        }
    }

    /// Through the real poller and client, against the simulator's responder: a steady poll
    /// is one small request; a burst of arrivals larger than the room costs one more full
    /// page (and nothing is missed); the poll after it makes room for such bursts.
    @Test("A steady poll asks for a few batches; more arrivals than room cost one more page, not a missed batch")
    func steadyPollsAskForWhatTheyNeed() async throws {
        let workspace = SimulatedWorkspace(configuration: SimulatorConfiguration(apiKey: "sk-ant-walk", initialBatches: 3000, initialActive: 5))
        let store = ExpositionStore()
        let publisher = ExpositionPublisher(store: store, constantFamilies: [], minimumRenderInterval: .zero, now: { 0 })
        let poller = PollerReplacementTests.poller(for: workspace, key: "sk-ant-walk", publisher: publisher)

        await poller.pollOnce()
        #expect(Self.limits(workspace) == ["1000", "1000", "1000"], "the first read lists everything in full pages")
        #expect(PollerReplacementTests.inProgress(store) == "5")

        workspace.clearRequestLog()
        await poller.pollOnce()
        #expect(Self.limits(workspace) == ["105"])

        _ = try workspace.createBatches(BatchSpec(count: 150))
        workspace.clearRequestLog()
        await poller.pollOnce()
        #expect(Self.limits(workspace) == ["105", "1000"], "the first page held only new batches, so the walk went on")
        #expect(PollerReplacementTests.inProgress(store) == "155", "every arrival counted")

        workspace.clearRequestLog()
        await poller.pollOnce()
        #expect(Self.limits(workspace) == ["455"], "155 deep and room for twice the 150 that arrived")
        #expect(PollerReplacementTests.inProgress(store) == "155")
    }
}
