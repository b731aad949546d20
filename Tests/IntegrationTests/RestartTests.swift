import Foundation
import Testing

/// `--storage.path`: stop the exporter, end batches while it is down, start it again, and the
/// lifecycle counters equal those of an exporter that ran the whole time.
@Suite("State across restarts", .serialized)
struct RestartTests {
    /// Every lifecycle series (counters and the duration histogram) of the default workspace.
    static func lifecycle(_ scrape: Scrape) -> [String: Double] {
        scrape.samples.filter {
            $0.key.hasPrefix("anthropic_message_batches_ended_") || $0.key.hasPrefix("anthropic_message_batch_processing_duration_seconds")
        }
    }

    static func endedTotal(_ scrape: Scrape) -> Double? {
        scrape[#"anthropic_message_batches_ended_total{workspace="default"}"#]
    }

    static func restored(_ scrape: Scrape) -> Double? {
        scrape[#"anthropic_batches_exporter_state_restored{workspace="default"}"#]
    }

    static func requests(_ scrape: Scrape, kind: String) -> Double {
        scrape.family("anthropic_batches_exporter_api_requests_total").filter { $0.key.contains(#"kind="\#(kind)""#) }.values.reduce(0, +)
    }

    static func createBatch(_ simulator: SimulatorProcess, requests: Int) throws -> String {
        let created = try simulator.control("POST", "/_sim/batches?count=1&requests=\(requests)") as? [String: Any]
        guard let id = (created?["ids"] as? [String])?.first else { throw TestFailure("no id in \(String(describing: created))") }
        return id
    }

    static func makeDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("restart-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    static func stateFiles(in directory: URL) throws -> [URL] {
        try FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil).filter { $0.pathExtension == "state" }
    }

    @Test(
        "Counters after a restart equal an uninterrupted run's; a second restart counts nothing new",
        arguments: [SIGTERM, SIGKILL]
    )
    func restart(signal: Int32) async throws {
        let directory = try Self.makeDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let simulator = try await SimulatorProcess()
        // Runs the whole time, without storage: what the restarted exporter must agree with.
        let witness = try await ExporterProcess(polling: simulator)
        var exporter = try await ExporterProcess(polling: simulator, arguments: ["--storage.path", directory.path])
        defer { exporter.terminate(); witness.terminate(); simulator.terminate() }

        // Ended batches count only if they ended after the exporters started.
        try simulator.control("POST", "/_sim/advance?seconds=600")
        let first = try Self.createBatch(simulator, requests: 100)
        let second = try Self.createBatch(simulator, requests: 40)
        let third = try Self.createBatch(simulator, requests: 30)
        try await eventually("both exporters to see three running batches") {
            try [exporter, witness].allSatisfy { (try $0.scrape()[#"anthropic_message_batches{workspace="default",processing_status="in_progress"}"#]) == 3 }
        }
        try simulator.control("POST", "/_sim/advance?seconds=120")
        try simulator.control("POST", "/_sim/batches/\(first)/end?succeeded=90&errored=10")
        try await eventually("the first ending counted") { Self.endedTotal(try exporter.scrape()) == 1 }
        try await eventually("a state file") { try !Self.stateFiles(in: directory).isEmpty }
        #expect(Self.restored(try exporter.scrape()) == 0)

        if signal == SIGKILL {
            exporter.process.signal(SIGKILL)
            _ = try await exporter.process.waitForExit()
        } else {
            #expect(await exporter.stop() == 0)
        }

        // While it is down: one known batch ends, one batch is created and ends unseen. After
        // a graceful stop the counted batch is also deleted, so only the saved counters
        // remember it. (After SIGKILL its ending may postdate the last save; then it is counted
        // again from the listing, which needs it still listed: README, State across restarts.)
        if signal == SIGTERM { try simulator.control("DELETE", "/_sim/batches/\(first)") }
        try simulator.control("POST", "/_sim/advance?seconds=300")
        try simulator.control("POST", "/_sim/batches/\(second)/end?succeeded=10&canceled=30")
        let unseen = try Self.createBatch(simulator, requests: 7)
        try simulator.control("POST", "/_sim/advance?seconds=60")
        try simulator.control("POST", "/_sim/batches/\(unseen)/end?expired=7")
        try await eventually("the witness to count three endings") { Self.endedTotal(try witness.scrape()) == 3 }

        exporter = try await ExporterProcess(polling: simulator, arguments: ["--storage.path", directory.path])
        try await eventually("the restarted exporter to count three endings") { Self.endedTotal(try exporter.scrape()) == 3 }
        try await exporter.waitForPolls(3)
        try await witness.waitForPolls(1)
        var scrape = try exporter.scrape()
        #expect(Self.restored(scrape) == 1)
        #expect(Self.lifecycle(scrape) == Self.lifecycle(try witness.scrape()))
        #expect(Self.lifecycle(scrape).count > 10, "the comparison covers the counters and the histogram")
        // The restored listing made the first poll incremental: no full read since the restart.
        #expect(Self.requests(scrape, kind: "full") == 0)
        #expect(Self.requests(scrape, kind: "incremental") >= 1)
        #expect(scrape[#"anthropic_message_batches{workspace="default",processing_status="in_progress"}"#] == 1)
        #expect(exporter.process.stderr.contains("Restored the saved state"))

        // A second restart, with nothing new: nothing is counted again.
        #expect(await exporter.stop() == 0)
        exporter = try await ExporterProcess(polling: simulator, arguments: ["--storage.path", directory.path])
        try await exporter.waitForPolls(3)
        scrape = try exporter.scrape()
        #expect(Self.restored(scrape) == 1)
        #expect(Self.endedTotal(scrape) == 3)
        #expect(Self.lifecycle(scrape) == Self.lifecycle(try witness.scrape()))

        // And what ends after it is counted once, as by the witness.
        try simulator.control("POST", "/_sim/batches/\(third)/end?succeeded=30")
        try await eventually("both to count the fourth ending") {
            try Self.endedTotal(exporter.scrape()) == 4 && Self.endedTotal(witness.scrape()) == 4
        }
        #expect(Self.lifecycle(try exporter.scrape()) == Self.lifecycle(try witness.scrape()))
        #expect(try Self.stateFiles(in: directory).count == 1)
    }

    @Test("A truncated state file is refused with one warning and the exporter starts fresh")
    func truncatedFile() async throws {
        let directory = try Self.makeDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let simulator = try await SimulatorProcess(batches: 20, active: 3)
        var exporter = try await ExporterProcess(polling: simulator, arguments: ["--storage.path", directory.path])
        defer { exporter.terminate(); simulator.terminate() }
        // Simulated time stays before this exporter's start: the batch counts because the
        // exporter saw it running, and a fresh start must not count it.
        let id = try Self.createBatch(simulator, requests: 5)
        try await eventually("the batch seen running") {
            try exporter.scrape()[#"anthropic_message_batches{workspace="default",processing_status="in_progress"}"#] == 4
        }
        try simulator.control("POST", "/_sim/batches/\(id)/end?succeeded=5")
        try await eventually("the ending counted") { Self.endedTotal(try exporter.scrape()) == 1 }
        #expect(await exporter.stop() == 0)

        let file = try #require(try Self.stateFiles(in: directory).first)
        let bytes = try Data(contentsOf: file)
        try bytes.prefix(bytes.count / 2).write(to: file)

        exporter = try await ExporterProcess(polling: simulator, arguments: ["--storage.path", directory.path])
        try await exporter.waitForPolls(3)
        let scrape = try exporter.scrape()
        #expect(Self.restored(scrape) == 0)
        // Fresh: the batch ended before this start, so it is history, not an event.
        #expect(Self.endedTotal(scrape) == 0)
        #expect(Self.requests(scrape, kind: "full") >= 1)
        let warnings = exporter.process.stderr.split(separator: "\n").filter { $0.contains("Refused the saved state") }
        #expect(warnings.count == 1)
        #expect(warnings.first?.contains("truncated") == true)
        #expect(warnings.first?.contains(file.lastPathComponent) == true)
        // The next save replaces the bad file with a good one.
        #expect(await exporter.stop() == 0)
        exporter = try await ExporterProcess(polling: simulator, arguments: ["--storage.path", directory.path])
        try await exporter.waitForPolls(1)
        #expect(Self.restored(try exporter.scrape()) == 1)
    }

    @Test("An unwritable --storage.path stops the start with exit 2 and one line")
    func unwritableDirectory() async throws {
        let process = try ChildProcess(
            Binaries.exporter,
            arguments: ["--web.listen-address", "127.0.0.1:0", "--storage.path", "/proc/self/state", "--api-base-url", "http://127.0.0.1:9"],
            environment: ["ANTHROPIC_API_KEY": "sk-ant-test"],
            name: "anthropic-batches-exporter"
        )
        defer { process.terminate() }
        #expect(try await process.waitForExit() == 2)
        let lines = process.stderr.split(separator: "\n")
        #expect(lines.count == 1)
        #expect(lines.first?.contains("--storage.path /proc/self/state") == true)
    }
}
