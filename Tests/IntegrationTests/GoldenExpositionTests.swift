import Foundation
import Testing

/// The exposition of a seeded simulator run, kept as `Fixtures/e2e-output.prom` (as
/// node_exporter keeps `collector/fixtures/e2e-output.txt`), and the README checked against it
/// and against `--help` (as kube-state-metrics checks its docs), so neither can drift.
///
/// The run switches on every optional part (results with prices, a key file, state storage,
/// rate-limit headers, a canceling batch, a batch ending while watched), so the fixture holds
/// every family the exporter can emit. The simulator's seed and manual clock fix batch ids,
/// statuses, request counts, durations, models and result contents, so the values of the
/// families computed from them are pinned too (``valuesFixedBySeed``); what follows the wall
/// clock or the exporter's own scheduling (timestamps, poll counts and timings, process_*) is
/// written as 0, its names, HELP, TYPE and label sets still pinned.
///
/// `UPDATE_GOLDEN=1 swift test --filter GoldenExpositionTests` rewrites the fixture.
@Suite("Golden exposition and docs", .serialized)
struct GoldenExpositionTests {
    static let fixture = Binaries.repositoryRoot.appendingPathComponent("Tests/IntegrationTests/Fixtures/e2e-output.prom")
    static let readme = Binaries.repositoryRoot.appendingPathComponent("README.md")

    /// Families that exist only in passing states a scrape cannot be made to catch reliably.
    static let transientFamilies: Set<String> = [
        // Only while a results download waits; the run waits until every download is done.
        "anthropic_batches_exporter_results_oldest_waiting_timestamp_seconds"
    ]

    /// Runs the seeded scenario and returns its normalized exposition.
    static func seededExposition() async throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("golden-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let simulator = try await SimulatorProcess(
            batches: 30, active: 5, extraArguments: ["--seed", "7", "--ratelimit-headers", "1000"])
        defer { simulator.terminate() }
        let keyFile = directory.appendingPathComponent("key").path
        try Data((simulator.apiKey + "\n").utf8).write(to: URL(fileURLWithPath: keyFile))
        let pricesFile = directory.appendingPathComponent("prices.yml").path
        // One priced prefix: the other models land in the unpriced counter, so both appear.
        try Data(
            """
            models:
              claude-sonnet*: {input: 3, output: 15, cache_read: 0.30, cache_write_5m: 3.75, cache_write_1h: 6}

            """.utf8
        ).write(to: URL(fileURLWithPath: pricesFile))
        let storage = directory.appendingPathComponent("state").path

        let active = try activeBatches(simulator)
        try #require(active.count >= 2, "the seeded workspace should have active batches")
        try simulator.control("POST", "/_sim/batches/\(active[0].id)/cancel")

        let exporter = try await ExporterProcess(
            arguments: [
                "--api-base-url", simulator.baseURL, "--poll-interval", "300ms", "--api.max-requests-per-minute", "0",
                "--api-key-file", keyFile, "--storage.path", storage,
                "--results.enabled", "--results.prices-file", pricesFile, "--results.retry-backoff", "1s",
            ],
            environment: [:]
        )
        defer { exporter.terminate() }
        try await exporter.waitForPolls(2)
        // Batches that end while watched fill the lifecycle counters and get their results read;
        // half their requests errored, so that errors by type are among the results.
        for batch in active.dropFirst() {
            let errored = batch.size / 2
            try simulator.control(
                "POST", "/_sim/batches/\(batch.id)/end?succeeded=\(batch.size - errored)&errored=\(errored)")
        }
        try await eventually(timeout: .seconds(60), "the ended batch's results counted") {
            let scrape = try exporter.scrape()
            let complete = scrape.family("anthropic_batches_exporter_results_batches_total").first {
                $0.key.contains(#"outcome="complete""#)
            }
            return (complete?.value ?? 0) >= Double(active.count - 1)
                && scrape.family("anthropic_batches_exporter_results_waiting_batches").values.allSatisfy { $0 == 0 }
                && (scrape.family("anthropic_message_batches_ended_total").values.first ?? 0) >= 1
        }
        try await exporter.waitForPolls(2)
        return normalized(try exporter.scrape().text)
    }

    /// In-progress batches with their sizes (all their requests are still `processing`).
    static func activeBatches(_ simulator: SimulatorProcess) throws -> [(id: String, size: Int)] {
        guard let truth = try simulator.control("GET", "/_sim/truth?batches=1") as? [String: Any],
            let batches = truth["data"] as? [[String: Any]]
        else { throw TestFailure("unexpected /_sim/truth?batches=1 shape") }
        return batches.filter { ($0["processing_status"] as? String) == "in_progress" }.compactMap { batch in
            guard let id = batch["id"] as? String, let counts = batch["request_counts"] as? [String: Any],
                let size = counts["processing"] as? Int
            else { return nil }
            return (id, size)
        }
    }

    /// Families whose values follow from the seed and the scenario alone: counts by status and
    /// result, lifecycle counters, per-batch request counts, processing durations in simulated
    /// time (buckets and count: the sum's last digits follow the wall-clock origin of the
    /// simulated times), and everything counted from results files.
    static let valuesFixedBySeed: Set<String> = [
        "anthropic_message_batches", "anthropic_message_batches_requests", "anthropic_message_batches_ended_total",
        "anthropic_message_batches_ended_requests_total", "anthropic_message_batches_errored_requests_total",
        "anthropic_message_batches_result_requests_total", "anthropic_message_batches_stop_reasons_total",
        "anthropic_message_batches_tokens_total", "anthropic_message_batches_unpriced_tokens_total",
        "anthropic_message_batches_web_search_requests_total", "anthropic_message_batches_estimated_cost_usd_total",
        "anthropic_message_batch_info", "anthropic_message_batch_requests",
        "anthropic_message_batch_processing_duration_seconds_bucket", "anthropic_message_batch_processing_duration_seconds_count",
        "anthropic_batches_exporter_results_batches_total",
        "anthropic_batches_exporter_results_bytes_total", "anthropic_batches_exporter_snapshot_batches",
    ]

    /// Values of ``valuesFixedBySeed`` kept; every other value written as 0: what varies with
    /// the exporter's clock and scheduling goes, its families, help, types and label sets stay.
    static func normalized(_ text: String) -> String {
        text.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            guard !line.hasPrefix("#"), let space = line.lastIndex(of: " ") else { return String(line) }
            let name = line.prefix { $0 != "{" && $0 != " " }
            return valuesFixedBySeed.contains(String(name)) ? String(line) : line[..<space] + " 0"
        }.joined(separator: "\n")
    }

    /// Family names declared by `# TYPE` lines.
    static func families(in exposition: String) -> Set<String> {
        Set(
            exposition.split(separator: "\n").compactMap { line -> String? in
                let fields = line.split(separator: " ")
                return fields.count >= 3 && fields[0] == "#" && fields[1] == "TYPE" ? String(fields[2]) : nil
            }
        )
    }

    /// Backticked names in the first cell of the table rows between `start` and the next
    /// heading of the same or a higher level.
    static func firstCellNames(inSection start: String, of markdown: String, prefix: String) -> Set<String> {
        let lines = markdown.split(separator: "\n", omittingEmptySubsequences: false)
        guard let from = lines.firstIndex(where: { $0 == start }) else { return [] }
        let level = start.prefix { $0 == "#" }.count
        var names: Set<String> = []
        for line in lines[(from + 1)...] {
            let hashes = line.prefix { $0 == "#" }.count
            if hashes > 0, hashes <= level, line.dropFirst(hashes).hasPrefix(" ") { break }
            guard line.hasPrefix("| `") else { continue }
            let cell = line.dropFirst(2).prefix { $0 != "|" }
            for (index, piece) in cell.split(separator: "`", omittingEmptySubsequences: false).enumerated()
            where index % 2 == 1 && piece.hasPrefix(prefix) {
                names.insert(String(piece))
            }
        }
        return names
    }

    @Test("A seeded run renders exactly Fixtures/e2e-output.prom, and promtool accepts it")
    func goldenExposition() async throws {
        let exposition = try await Self.seededExposition()
        if ProcessInfo.processInfo.environment["UPDATE_GOLDEN"] == "1" {
            try FileManager.default.createDirectory(
                at: Self.fixture.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(exposition.utf8).write(to: Self.fixture)
        }
        let golden = try String(contentsOf: Self.fixture, encoding: .utf8)
        if exposition != golden {
            let expected = Set(golden.split(separator: "\n")), actual = Set(exposition.split(separator: "\n"))
            Issue.record(
                """
                the exposition differs from the fixture (UPDATE_GOLDEN=1 rewrites it)
                missing: \(expected.subtracting(actual).sorted().prefix(20))
                unexpected: \(actual.subtracting(expected).sorted().prefix(20))
                """
            )
        }
        let promtool = try runTool("promtool", ["check", "metrics"], input: Array(golden.utf8))
        #expect(promtool.status == 0, "promtool: \(promtool.output)")
    }

    @Test("The README's metric tables name exactly the families in the golden exposition")
    func readmeMetricsMatchGolden() throws {
        let golden = Self.families(in: try String(contentsOf: Self.fixture, encoding: .utf8))
        try #require(!golden.isEmpty)
        let readme = try String(contentsOf: Self.readme, encoding: .utf8)
        let documented = Self.firstCellNames(inSection: "## Metrics", of: readme, prefix: "")
            .union(Self.firstCellNames(inSection: "## Results", of: readme, prefix: ""))
            .filter { $0.hasPrefix("anthropic_") || $0.hasPrefix("process_") }
        #expect(golden.subtracting(documented).sorted() == [], "emitted but not in the README")
        #expect(
            documented.subtracting(golden).subtracting(Self.transientFamilies).sorted() == [],
            "in the README but never emitted"
        )
    }

    @Test("The README's flag table names exactly the flags of --help")
    func readmeFlagsMatchHelp() async throws {
        let help = try ChildProcess(Binaries.exporter, arguments: ["--help"])
        #expect(try await help.waitForExit() == 0)
        // An option line starts, indented by two spaces, with its names (`-h, --help`,
        // `--poll-interval <poll-interval>`); help text continues further in.
        let helpFlags = Set(
            help.stdout.split(separator: "\n").flatMap { line -> [String] in
                guard line.hasPrefix("  -") else { return [] }
                let names = line.split(separator: " ").prefix { $0.hasPrefix("-") }
                return names.map { String($0.prefix { $0 != "," && $0 != "=" }) }.filter { $0.hasPrefix("--") }
            }
        )
        try #require(helpFlags.contains("--web.listen-address"), "\(help.stdout)")
        let readme = try String(contentsOf: Self.readme, encoding: .utf8)
        let documented = Self.firstCellNames(inSection: "## Command-line flags", of: readme, prefix: "--")
        #expect(helpFlags.subtracting(documented).sorted() == [], "in --help but not in the README")
        #expect(documented.subtracting(helpFlags).sorted() == [], "in the README but not in --help")
    }
}
