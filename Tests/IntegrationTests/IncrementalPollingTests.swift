import Foundation
import Testing

/// Polling at the cost of what changed, and the request budget, against the real binaries.
@Suite("Incremental polling and the request budget", .serialized)
struct IncrementalPollingTests {
    static func counter(_ scrape: Scrape, kind: String) -> Double {
        scrape.family("anthropic_batches_exporter_api_requests_total").filter { $0.key.contains(#"kind="\#(kind)""#) }.values.reduce(0, +)
    }

    @Test("After one full read, a steady-state poll costs one request, and the numbers stay right as batches change")
    func steadyState() async throws {
        let simulator = try await SimulatorProcess(batches: 5_000, active: 20)
        let exporter = try await ExporterProcess(polling: simulator, arguments: ["--poll-interval", "200ms"])
        defer { exporter.terminate(); simulator.terminate() }
        try await eventually("the first full read") { try ExporterEndToEndTests.expectMatchesTruth(exporter.scrape(), simulator) }
        #expect(Self.counter(try exporter.scrape(), kind: "full") == 5)

        try await exporter.waitForPolls(1)
        try simulator.control("DELETE", "/_sim/requests")
        let pollsBefore = try exporter.pollCount()
        try await exporter.waitForPolls(5)
        let pollsAfter = try exporter.pollCount()
        let requests = try simulator.requestLog().count
        // A poll can be in flight at either end of the window: allow one either way.
        #expect(abs(Double(requests) - (pollsAfter - pollsBefore)) <= 1, "\(requests) requests for \(pollsAfter - pollsBefore) polls")

        // Change things among the newest batches and check the incremental snapshots.
        try simulator.control("POST", "/_sim/batches?count=30&requests=7")
        guard let truth = try simulator.control("GET", "/_sim/truth?batches=1") as? [String: Any],
            let batches = truth["data"] as? [[String: Any]]
        else { throw TestFailure("no truth") }
        let active = batches.filter { ($0["processing_status"] as? String) == "in_progress" }.compactMap { $0["id"] as? String }
        try simulator.control("POST", "/_sim/batches/\(active[0])/cancel")
        try simulator.control("POST", "/_sim/batches/\(active[1])/end?succeeded=7")
        try simulator.control("DELETE", "/_sim/batches/\(active[2])")
        try await eventually("incremental snapshots to match the truth") {
            try ExporterEndToEndTests.expectMatchesTruth(exporter.scrape(), simulator)
        }
        #expect(Self.counter(try exporter.scrape(), kind: "full") == 5, "no further full reads within the resync interval")
        #expect(Self.counter(try exporter.scrape(), kind: "incremental") >= 5)
    }

    @Test("A deletion deep in the list is caught by the full resync, not by incremental polls")
    func resyncCatchesOldDeletions() async throws {
        let simulator = try await SimulatorProcess(batches: 3_000, active: 5)
        guard let truth = try simulator.control("GET", "/_sim/truth?batches=1") as? [String: Any],
            let oldest = (truth["data"] as? [[String: Any]])?.last?["id"] as? String
        else { throw TestFailure("no truth") }

        let incrementalOnly = try await ExporterProcess(polling: simulator, arguments: ["--api.full-resync-interval", "1h", "--poll-interval", "200ms"])
        defer { incrementalOnly.terminate() }
        let resyncing = try await ExporterProcess(polling: simulator, arguments: ["--api.full-resync-interval", "2s", "--poll-interval", "200ms"])
        defer { resyncing.terminate(); simulator.terminate() }
        for exporter in [incrementalOnly, resyncing] {
            try await eventually("first full read") {
                try exporter.scrape()[#"anthropic_batches_exporter_snapshot_batches{workspace="default"}"#] == 3_000
            }
        }
        try simulator.control("DELETE", "/_sim/batches/\(oldest)")
        try await eventually("the resyncing exporter to drop the deleted batch") {
            try resyncing.scrape()[#"anthropic_batches_exporter_snapshot_batches{workspace="default"}"#] == 2_999
        }
        #expect(Self.counter(try resyncing.scrape(), kind: "full") >= 6, "a second full read happened")
        // The folded entry the resync removed is counted as a correction, once, so drift shows.
        let deletedCorrections = #"anthropic_batches_exporter_resync_corrections_total{workspace="default",kind="deleted"}"#
        try await eventually("the resync's correction to be counted") { try resyncing.scrape()[deletedCorrections] == 1 }
        // Two full reads' worth of pages later, at least one whole resync ran after the correction.
        let fullPagesAtCorrection = Self.counter(try resyncing.scrape(), kind: "full")
        try await eventually(timeout: .seconds(60), "another whole resync") {
            Self.counter(try resyncing.scrape(), kind: "full") >= fullPagesAtCorrection + 6
        }
        #expect(try resyncing.scrape()[deletedCorrections] == 1, "later resyncs find nothing more to correct")
        try await incrementalOnly.waitForPolls(3)
        #expect(try incrementalOnly.scrape()[#"anthropic_batches_exporter_snapshot_batches{workspace="default"}"#] == 3_000)
        #expect(try incrementalOnly.scrape()[deletedCorrections] == 0, "no resync, nothing corrected")
    }

    @Test("--api.full-resync-interval 0 reads everything on every poll (the naive mode)")
    func naiveMode() async throws {
        let simulator = try await SimulatorProcess(batches: 2_500, active: 5)
        let exporter = try await ExporterProcess(polling: simulator, arguments: ["--api.full-resync-interval", "0", "--poll-interval", "200ms"])
        defer { exporter.terminate(); simulator.terminate() }
        try await exporter.waitForPolls(3)
        let scrape = try exporter.scrape()
        #expect(Self.counter(scrape, kind: "incremental") == 0)
        let polls = try #require(scrape[#"anthropic_batches_exporter_poll_duration_seconds_count{workspace="default"}"#])
        #expect(Self.counter(scrape, kind: "full") >= polls * 3 - 3, "three pages per poll")
    }

    @Test("The request budget is never exceeded, retries included, and exhaustion is counted")
    func budgetHolds() async throws {
        let simulator = try await SimulatorProcess(batches: 400, active: 5)
        // Every third request fails and is retried: retries must spend the budget too.
        try simulator.enqueueFault("kind=status&status=503")
        let exporter = try await ExporterProcess(
            polling: simulator,
            arguments: ["--api.max-requests-per-minute", "6", "--api.page-size", "100", "--poll-interval", "200ms", "--api.full-resync-interval", "1s"]
        )
        defer { exporter.terminate(); simulator.terminate() }
        try await eventually("the budget to be exhausted") {
            (try exporter.scrape()[#"anthropic_batches_exporter_api_budget_exhausted_total{workspace="default"}"#] ?? 0) >= 1
        }
        // Let the exporter keep trying for a while inside the same minute.
        try await Task.sleep(for: .seconds(5))
        let times = try simulator.requestLog().compactMap { $0["received_ms"] as? Int }
        #expect(times.count == 6, "requests in the first minute: \(times.count)")
        let scrape = try exporter.scrape()
        #expect(scrape[#"anthropic_batches_exporter_api_budget_requests_per_minute{workspace="default"}"#] == 6)
        #expect(scrape[#"anthropic_batches_exporter_api_requests_total{workspace="default",code="503",kind="full"}"#] == 1)
    }
}
