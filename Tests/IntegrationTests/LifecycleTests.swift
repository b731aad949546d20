import Foundation
import Testing

/// Per-batch series and the lifecycle counters, against simulator histories.
@Suite("Batch lifecycle metrics", .serialized)
struct LifecycleTests {
    static func info(_ scrape: Scrape, _ id: String) -> String? {
        scrape.family("anthropic_message_batch_info").first { $0.key.contains(#"batch_id="\#(id)""#) }.flatMap { entry in
            entry.key.split(separator: "processing_status=\"").last?.split(separator: "\"").first.map(String.init)
        }
    }

    static func ended(_ scrape: Scrape, _ result: String) -> Double? {
        scrape[#"anthropic_message_batches_ended_requests_total{workspace="default",result="\#(result)"}"#]
    }

    static func createBatch(_ simulator: SimulatorProcess, requests: Int) throws -> String {
        let created = try simulator.control("POST", "/_sim/batches?count=1&requests=\(requests)") as? [String: Any]
        guard let id = (created?["ids"] as? [String])?.first else { throw TestFailure("no id in \(String(describing: created))") }
        return id
    }

    @Test("Counters move by exactly the ended batches' counts, never double-count, and survive a restart without recounting")
    func countersAndRestart() async throws {
        let simulator = try await SimulatorProcess()
        var exporter = try await ExporterProcess(polling: simulator)
        defer { exporter.terminate(); simulator.terminate() }

        let first = try Self.createBatch(simulator, requests: 100)
        let second = try Self.createBatch(simulator, requests: 100)
        let third = try Self.createBatch(simulator, requests: 50)
        try await eventually("three in-progress batches") {
            let scrape = try exporter.scrape()
            return [first, second, third].allSatisfy { Self.info(scrape, $0) == "in_progress" }
        }
        #expect(try exporter.scrape()[#"anthropic_message_batch_requests{workspace="default",batch_id="\#(first)",result="processing"}"#] == 100)

        try simulator.control("POST", "/_sim/batches/\(first)/end?succeeded=90&errored=5&expired=5")
        try simulator.control("POST", "/_sim/batches/\(second)/cancel")
        try await eventually("the second batch to show canceling") { Self.info(try exporter.scrape(), second) == "canceling" }
        #expect(try exporter.scrape()[#"anthropic_message_batch_cancel_initiated_timestamp_seconds{workspace="default",batch_id="\#(second)"}"#] != nil)
        try simulator.control("POST", "/_sim/batches/\(second)/end?succeeded=40&canceled=60")
        try await eventually("two ended batches counted") {
            try exporter.scrape()[#"anthropic_message_batches_ended_total{workspace="default"}"#] == 2
        }
        try await exporter.waitForPolls(3)
        let scrape = try exporter.scrape()
        #expect(scrape[#"anthropic_message_batches_ended_total{workspace="default"}"#] == 2, "no double counting across polls")
        #expect(Self.ended(scrape, "succeeded") == 130)
        #expect(Self.ended(scrape, "errored") == 5)
        #expect(Self.ended(scrape, "expired") == 5)
        #expect(Self.ended(scrape, "canceled") == 60)
        #expect(Self.ended(scrape, "processing") == 0)
        #expect(scrape[#"anthropic_message_batch_processing_duration_seconds_count{workspace="default"}"#] == 2)
        #expect(Self.info(scrape, first) == "ended")
        #expect(Self.info(scrape, third) == "in_progress")
        #expect(scrape[#"anthropic_message_batch_ended_timestamp_seconds{workspace="default",batch_id="\#(first)"}"#] != nil)
        #expect(scrape[#"anthropic_message_batch_ended_timestamp_seconds{workspace="default",batch_id="\#(third)"}"#] == nil)

        // Restart: batches that ended before this exporter started are history, not events.
        _ = await exporter.stop()
        exporter = try await ExporterProcess(polling: simulator)
        try await exporter.waitForPolls(2)
        #expect(try exporter.scrape()[#"anthropic_message_batches_ended_total{workspace="default"}"#] == 0)

        // Simulated time moves past the new exporter's start, so what ends now is news, even a
        // batch created and ended between two polls.
        try simulator.control("POST", "/_sim/advance?seconds=600")
        try simulator.control("POST", "/_sim/batches/\(third)/end?succeeded=50")
        let quick = try Self.createBatch(simulator, requests: 10)
        try simulator.control("POST", "/_sim/batches/\(quick)/end?errored=10")
        try await eventually("both new endings counted") {
            try exporter.scrape()[#"anthropic_message_batches_ended_total{workspace="default"}"#] == 2
        }
        let afterRestart = try exporter.scrape()
        #expect(Self.ended(afterRestart, "succeeded") == 50)
        #expect(Self.ended(afterRestart, "errored") == 10)

        // A deleted batch leaves the snapshot and its series disappear; counters stay.
        try simulator.control("DELETE", "/_sim/batches/\(first)")
        try await eventually("the deleted batch's series to go") { Self.info(try exporter.scrape(), first) == nil }
        #expect(try exporter.scrape()[#"anthropic_message_batches_ended_total{workspace="default"}"#] == 2)
    }

    @Test("Ended batches keep their series for the retention, then they disappear")
    func retention() async throws {
        let simulator = try await SimulatorProcess()
        let exporter = try await ExporterProcess(polling: simulator, arguments: ["--batch-metrics.ended-retention", "8s"])
        defer { exporter.terminate(); simulator.terminate() }
        let id = try Self.createBatch(simulator, requests: 5)
        try simulator.control("POST", "/_sim/batches/\(id)/end?succeeded=5")
        try await eventually("the ended batch's series") { Self.info(try exporter.scrape(), id) == "ended" }
        try await eventually(timeout: .seconds(40), "the series to leave after the retention") { Self.info(try exporter.scrape(), id) == nil }
        let scrape = try exporter.scrape()
        #expect(scrape[#"anthropic_message_batches{workspace="default",processing_status="ended"}"#] == 1, "still counted in the aggregates")
    }

    @Test("The cap keeps the newest active batches and reports how many were left out")
    func cap() async throws {
        let simulator = try await SimulatorProcess(batches: 60, active: 10)
        let exporter = try await ExporterProcess(
            polling: simulator,
            arguments: ["--batch-metrics.max-batches", "4", "--batch-metrics.ended-retention", "0s"]
        )
        defer { exporter.terminate(); simulator.terminate() }
        try await exporter.waitForPolls(3)
        let scrape = try exporter.scrape()
        let truth = try simulator.control("GET", "/_sim/truth?batches=1") as? [String: Any]
        let batches = try #require(truth?["data"] as? [[String: Any]])
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let active = batches.filter { ($0["processing_status"] as? String) != "ended" }
            .map { (id: $0["id"] as? String ?? "", created: formatter.date(from: $0["created_at"] as? String ?? "")?.timeIntervalSince1970 ?? 0) }
        #expect(active.count == 10)
        let newestFour = Set(active.sorted { ($0.created, $0.id) > ($1.created, $1.id) }.prefix(4).map(\.id))
        let exposed = Set(
            scrape.family("anthropic_message_batch_info").keys.compactMap { key in
                key.split(separator: "batch_id=\"").last?.split(separator: "\"").first.map(String.init)
            })
        #expect(exposed == newestFour)
        #expect(scrape[#"anthropic_batches_exporter_batch_metrics_dropped{workspace="default"}"#] == 6)
        let oldest = try #require(active.map(\.created).min())
        let servedOldest = try #require(scrape[#"anthropic_message_batches_oldest_active_created_timestamp_seconds{workspace="default"}"#])
        #expect(abs(servedOldest - oldest) < 0.001)
        let servedExpiry = try #require(scrape[#"anthropic_message_batches_next_expiry_timestamp_seconds{workspace="default"}"#])
        #expect(abs(servedExpiry - (oldest + 86_400)) < 0.001)
        let warnings = exporter.process.stderr.split(separator: "\n").filter { $0.contains("More batches qualify") }
        #expect(warnings.count == 1, "warned once per change, not per poll")
    }

    @Test("--batch-metrics.max-batches 0 turns per-batch series off")
    func perBatchOff() async throws {
        let simulator = try await SimulatorProcess(batches: 20, active: 5)
        let exporter = try await ExporterProcess(polling: simulator, arguments: ["--batch-metrics.max-batches", "0"])
        defer { exporter.terminate(); simulator.terminate() }
        try await exporter.waitForPolls(2)
        let scrape = try exporter.scrape()
        #expect(scrape.family("anthropic_message_batch_info").isEmpty)
        #expect(scrape.family("anthropic_message_batch_requests").isEmpty)
        #expect(scrape[#"anthropic_batches_exporter_batch_metrics_dropped{workspace="default"}"#] == 0)
        #expect(scrape[#"anthropic_message_batches{workspace="default",processing_status="in_progress"}"#] == 5)
    }
}
