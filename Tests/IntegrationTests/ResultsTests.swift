import Foundation
import Testing

/// `--results.enabled` against the simulator's results endpoint: every counter equals the
/// simulator's truth, nothing is counted twice, failed streams are retried and counted once,
/// the key never leaves the API's host, and no content reaches the logs.
@Suite("Results files", .serialized)
struct ResultsTests {
    /// The families the exporter derives from results lines, and that must equal the truth.
    static let counterFamilies = [
        "anthropic_message_batches_result_requests_total",
        "anthropic_message_batches_errored_requests_total",
        "anthropic_message_batches_tokens_total",
        "anthropic_message_batches_stop_reasons_total",
        "anthropic_message_batches_web_search_requests_total",
        "anthropic_message_batches_estimated_cost_usd_total",
        "anthropic_message_batches_unpriced_tokens_total",
    ]

    /// USD per million tokens, standard prices, for two of the simulator's four models (one by
    /// exact id, one by prefix); the other two stay unpriced. Written to the prices file and used
    /// by the test's own cost arithmetic below.
    static let prices: [String: [String: Double]] = [
        "claude-sonnet-4*": ["input": 3, "output": 15, "cache_read": 0.3, "cache_write_5m": 3.75, "cache_write_1h": 6],
        "claude-haiku-4-5-20251001": ["input": 1, "output": 5, "cache_read": 0.1, "cache_write_5m": 1.25, "cache_write_1h": 2],
    ]
    // Not 0.5, so a discount applied the wrong way round (× d instead of × (1 − d)) shows.
    static let batchDiscount = 0.4

    static var pricesFile: String {
        var text = "batch_discount: \(batchDiscount)\nmodels:\n"
        for (model, byType) in prices.sorted(by: { $0.key < $1.key }) {
            let fields = byType.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ")
            text += "  \(model): {\(fields)}\n"
        }
        return text
    }

    static func price(of model: String) -> [String: Double]? {
        if let exact = prices[model] { return exact }
        return prices.first { $0.key.hasSuffix("*") && model.hasPrefix(String($0.key.dropLast())) }?.value
    }

    // MARK: Reading the exposition and the truth

    /// Labels of a series text such as `name{a="x",b="y"}` (values here never hold quotes).
    static func labels(_ series: String) -> [String: String] {
        guard let open = series.firstIndex(of: "{"), series.last == "}" else { return [:] }
        var labels: [String: String] = [:]
        for pair in series[series.index(after: open)..<series.index(before: series.endIndex)].split(separator: ",") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { continue }
            labels[String(parts[0])] = String(parts[1].dropFirst().dropLast())
        }
        return labels
    }

    /// One family's samples of `workspace`, keyed by the values of `keys` joined with "/".
    static func values(_ scrape: Scrape, _ family: String, workspace: String, by keys: [String]) -> [String: Double] {
        var values: [String: Double] = [:]
        for (series, value) in scrape.family(family) {
            let labels = labels(series)
            guard labels["workspace"] == workspace else { continue }
            values[keys.map { labels[$0] ?? "?" }.joined(separator: "/"), default: 0] += value
        }
        return values
    }

    static func outcome(_ scrape: Scrape, _ outcome: String, workspace: String = "default") -> Double {
        scrape[#"anthropic_batches_exporter_results_batches_total{workspace="\#(workspace)",outcome="\#(outcome)"}"#] ?? 0
    }

    struct Truth {
        var lines: [String: Double] = [:]
        var erroredByType: [String: Double] = [:]
        var tokens: [String: Double] = [:]  // "model/token_type"
        var stopReasons: [String: Double] = [:]  // "model/stop_reason"
        var webSearch: [String: Double] = [:]
        var cost: [String: Double] = [:]
        var unpriced: [String: Double] = [:]

        init(_ json: Any) throws {
            guard let object = json as? [String: Any] else { throw TestFailure("results truth is not an object") }
            func flat(_ key: String) -> [String: Double] {
                ((object[key] as? [String: Int]) ?? [:]).mapValues(Double.init)
            }
            func nested(_ key: String) -> [String: Double] {
                var result: [String: Double] = [:]
                for (outer, inner) in (object[key] as? [String: [String: Int]]) ?? [:] {
                    for (name, value) in inner { result["\(outer)/\(name)"] = Double(value) }
                }
                return result
            }
            lines = flat("lines")
            erroredByType = flat("errored_by_type")
            tokens = nested("tokens")
            stopReasons = nested("stop_reasons")
            webSearch = flat("web_search_requests")
            // The expected cost, computed here from the truth's tokens and the prices above.
            for (key, count) in tokens where count > 0 {
                let parts = key.split(separator: "/").map(String.init)
                let (model, type) = (parts[0], parts[1])
                if let price = ResultsTests.price(of: model) {
                    cost[model, default: 0] += count * (price[type] ?? .nan) / 1_000_000 * (1 - ResultsTests.batchDiscount)
                } else {
                    unpriced[model, default: 0] += count
                }
            }
        }
    }

    static func truth(_ simulator: SimulatorProcess, batch: String? = nil) throws -> Truth {
        try Truth(simulator.control("GET", "/_sim/results-truth" + (batch.map { "?batch_id=\($0)" } ?? "")))
    }

    /// Compares every results counter of `workspace` with `truth` (zero counts are left out on
    /// both sides: the exporter renders no series before the first occurrence).
    static func expectCounters(_ scrape: Scrape, equal truth: Truth, workspace: String = "default", sourceLocation: SourceLocation = #_sourceLocation) {
        func nonZero(_ values: [String: Double]) -> [String: Double] { values.filter { $0.value != 0 } }
        #expect(
            nonZero(values(scrape, "anthropic_message_batches_result_requests_total", workspace: workspace, by: ["result"])) == nonZero(truth.lines),
            sourceLocation: sourceLocation)
        #expect(
            nonZero(values(scrape, "anthropic_message_batches_errored_requests_total", workspace: workspace, by: ["error_type"]))
                == nonZero(truth.erroredByType), sourceLocation: sourceLocation)
        #expect(
            nonZero(values(scrape, "anthropic_message_batches_tokens_total", workspace: workspace, by: ["model", "token_type"])) == nonZero(truth.tokens),
            sourceLocation: sourceLocation)
        #expect(
            nonZero(values(scrape, "anthropic_message_batches_stop_reasons_total", workspace: workspace, by: ["model", "stop_reason"]))
                == nonZero(truth.stopReasons), sourceLocation: sourceLocation)
        #expect(
            nonZero(values(scrape, "anthropic_message_batches_web_search_requests_total", workspace: workspace, by: ["model"])) == nonZero(truth.webSearch),
            sourceLocation: sourceLocation)
        #expect(
            nonZero(values(scrape, "anthropic_message_batches_unpriced_tokens_total", workspace: workspace, by: ["model"])) == nonZero(truth.unpriced),
            sourceLocation: sourceLocation)
        let cost = values(scrape, "anthropic_message_batches_estimated_cost_usd_total", workspace: workspace, by: ["model"])
        #expect(Set(nonZero(cost).keys) == Set(nonZero(truth.cost).keys), sourceLocation: sourceLocation)
        for (model, expected) in truth.cost {
            // The exposition prints shortest round-trip doubles; sums in another order differ
            // only in the last bits.
            #expect(abs((cost[model] ?? 0) - expected) <= 1e-9 * max(1, expected), "cost of \(model)", sourceLocation: sourceLocation)
        }
    }

    /// The results requests the simulator received, by batch id.
    static func resultsRequests(_ simulator: SimulatorProcess) throws -> [String: Int] {
        var byBatch: [String: Int] = [:]
        for entry in try simulator.requestLog() {
            guard let path = entry["path"] as? String, path.hasSuffix("/results") else { continue }
            let parts = path.split(separator: "/")
            byBatch[String(parts[parts.count - 2]), default: 0] += 1
        }
        return byBatch
    }

    static func createBatch(_ simulator: SimulatorProcess, requests: Int) throws -> String {
        try RestartTests.createBatch(simulator, requests: requests)
    }

    /// Results on, fast retries, and the prices above (written once per test run).
    static let arguments: [String] = {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("results-tests-prices-\(UUID().uuidString).yml").path
        try? ResultsTests.pricesFile.write(toFile: path, atomically: true, encoding: .utf8)
        return ["--results.enabled", "--results.retry-backoff", "100ms", "--results.prices-file", path]
    }()

    /// Starts batches after the exporter's start and waits until it has seen them running, so
    /// their ending counts (the rule of `ended_total`).
    static func startBatches(_ simulator: SimulatorProcess, _ exporter: ExporterProcess, sizes: [Int], workspace: String = "default") async throws -> [String] {
        try simulator.control("POST", "/_sim/advance?seconds=600")
        let ids = try sizes.map { try createBatch(simulator, requests: $0) }
        try await eventually("the exporter to see \(ids.count) running batches") {
            try exporter.scrape()[#"anthropic_message_batches{workspace="\#(workspace)",processing_status="in_progress"}"#] == Double(ids.count)
        }
        try simulator.control("POST", "/_sim/advance?seconds=120")
        return ids
    }

    // MARK: Tests

    @Test("Every results counter equals the simulator's truth, and stays so across polls, a full resync and a reload")
    func countersEqualTruth() async throws {
        let simulator = try await SimulatorProcess()
        let directory = try MultiWorkspaceTests.ConfigDirectory()
        let pricesPath = try directory.write("prices.yml", Self.pricesFile)
        let config = try directory.write(
            "exporter.yml", "workspaces:\n  - name: main\n    api_key_env: MAIN_KEY\n    results: true\n"
        )
        let exporter = try await ExporterProcess(
            arguments: [
                "--config.file", config, "--api-base-url", simulator.baseURL, "--poll-interval", "300ms",
                "--api.max-requests-per-minute", "0", "--api.full-resync-interval", "2s", "--log.level", "debug",
                "--results.retry-backoff", "100ms", "--results.prices-file", pricesPath,
            ],
            environment: ["MAIN_KEY": simulator.apiKey]
        )
        defer { exporter.terminate(); simulator.terminate() }

        let ids = try await Self.startBatches(simulator, exporter, sizes: [400, 250, 120], workspace: "main")
        try simulator.control("POST", "/_sim/batches/\(ids[0])/end?succeeded=300&errored=60&canceled=25&expired=15")
        try simulator.control("POST", "/_sim/batches/\(ids[1])/end?succeeded=250")
        try simulator.control("POST", "/_sim/batches/\(ids[2])/end?errored=70&expired=50")
        try await eventually(timeout: .seconds(60), "three results files counted") {
            Self.outcome(try exporter.scrape(), "complete", workspace: "main") == 3
        }
        let truth = try Self.truth(simulator)
        #expect(truth.lines.values.reduce(0, +) == 770, "the truth covers the three batches' requests")
        #expect(truth.erroredByType.count >= 2 && !truth.cost.isEmpty && !truth.unpriced.isEmpty, "the run exercises error types, priced and unpriced models")
        Self.expectCounters(try exporter.scrape(), equal: truth, workspace: "main")

        // Polls, at least one full resync and a reload later: the same counts, no new download.
        let fullReads = { (scrape: Scrape) in
            Self.values(scrape, "anthropic_batches_exporter_api_requests_total", workspace: "main", by: ["kind"])["full"] ?? 0
        }
        let fullBefore = fullReads(try exporter.scrape())
        try await eventually("a full resync") { fullReads(try exporter.scrape()) > fullBefore }
        let reloadsBefore = try exporter.scrape()["anthropic_batches_exporter_config_last_reload_success_timestamp_seconds"] ?? 0
        exporter.process.signal(SIGHUP)
        try await eventually("the reload") {
            (try exporter.scrape()["anthropic_batches_exporter_config_last_reload_success_timestamp_seconds"] ?? 0) > reloadsBefore
        }
        let pollsBefore = Self.values(try exporter.scrape(), "anthropic_batches_exporter_poll_duration_seconds_count", workspace: "main", by: [])[""] ?? 0
        try await eventually("three polls after the reload") {
            (Self.values(try exporter.scrape(), "anthropic_batches_exporter_poll_duration_seconds_count", workspace: "main", by: [])[""] ?? 0) >= pollsBefore
                + 3
        }
        let after = try exporter.scrape()
        Self.expectCounters(after, equal: truth, workspace: "main")
        #expect(Self.outcome(after, "complete", workspace: "main") == 3)
        #expect(try Self.resultsRequests(simulator) == Dictionary(uniqueKeysWithValues: ids.map { ($0, 1) }), "one download per batch")

        // Results hold model output: none of it may reach a log line, even at debug level. The
        // test reads two files itself (one with errored lines, one with text only) and looks
        // for their content in everything the exporter wrote. curl, because files come chunked.
        var content = Set<String>()
        for id in [ids[0], ids[1]] {
            let file = try runTool(
                "curl",
                [
                    "-s", "--fail", "-H", "anthropic-version: 2023-06-01", "-H", "@-",
                    "\(simulator.baseURL)/v1/messages/batches/\(id)/results",
                ],
                input: Array("x-api-key: \(simulator.apiKey)\n".utf8)
            )
            #expect(file.status == 0)
            content.formUnion(try Self.content(String(decoding: file.stdout, as: UTF8.self)))
        }
        #expect(content.filter { $0.hasPrefix("text:") }.count >= 100, "the files have output text to look for")
        #expect(content.contains { $0.hasPrefix("error:") }, "and error messages")
        #expect(content.contains { $0.hasPrefix("id:") }, "and message ids")
        let logs = exporter.process.stdout + exporter.process.stderr
        #expect(logs.contains("results"), "debug logging of downloads is on")
        for item in content {
            let text = String(item.drop { $0 != ":" }.dropFirst())
            #expect(!logs.contains(text), "result content in the logs: \(item.prefix(80))")
        }
        // custom_id values are short ("req-17"): look for them as quoted or key=value tokens.
        #expect(!logs.contains("req-"), "a custom_id in the logs")
        #expect(!logs.contains(simulator.apiKey))
    }

    /// What must never be logged, from a results file, each prefixed with its kind: the
    /// `text` of every text block (`text:`), the message of every error (`error:`) and every
    /// message id (`id:`). Short values (under 12 characters, such as "Overloaded") are left
    /// out: they could occur in a log line by chance.
    static func content(_ file: String) throws -> Set<String> {
        var content = Set<String>()
        func add(_ kind: String, _ value: Any?) {
            if let value = value as? String, value.count >= 12 { content.insert("\(kind):\(value)") }
        }
        for line in file.split(separator: "\n") {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            guard let result = object?["result"] as? [String: Any] else { continue }
            if let message = result["message"] as? [String: Any] {
                add("id", message["id"])
                for block in (message["content"] as? [[String: Any]]) ?? [] { add("text", block["text"]) }
            }
            let error = (result["error"] as? [String: Any])?["error"] as? [String: Any]
            add("error", error?["message"])
        }
        return content
    }

    @Test("A 404 on the first attempt and a cut stream count nothing; the attempt that completes counts the batch once")
    func failedAttemptsCountNothing() async throws {
        let simulator = try await SimulatorProcess()
        let exporter = try await ExporterProcess(polling: simulator, arguments: Self.arguments)
        defer { exporter.terminate(); simulator.terminate() }
        let ids = try await Self.startBatches(simulator, exporter, sizes: [300])
        // One fault per results request, in order: a 404 on the first attempt (as the API may
        // answer just after the end), then a stream cut after 4 KiB.
        try simulator.control("POST", "/_sim/results-faults?kind=not_found")
        try simulator.control("POST", "/_sim/results-faults?kind=cut&after_bytes=4096")
        try simulator.control("POST", "/_sim/batches/\(ids[0])/end?succeeded=200&errored=100")

        try await eventually(timeout: .seconds(60), "the batch counted") { Self.outcome(try exporter.scrape(), "complete") == 1 }
        try await exporter.waitForPolls(3)
        let scrape = try exporter.scrape()
        #expect(Self.outcome(scrape, "retrying") == 2, "the 404 and the cut stream were each retried")
        #expect(Self.outcome(scrape, "failed") == 0)
        #expect(try Self.resultsRequests(simulator) == [ids[0]: 3])
        Self.expectCounters(scrape, equal: try Self.truth(simulator))
        #expect(Self.values(scrape, "anthropic_message_batches_result_requests_total", workspace: "default", by: ["result"])["succeeded"] == 200)
        #expect(scrape[#"anthropic_batches_exporter_results_waiting_batches{workspace="default"}"#] == 0)
        // More than one attempt's bytes were read: the cut one's count too.
        #expect((scrape[#"anthropic_batches_exporter_results_bytes_total{workspace="default"}"#] ?? 0) > 4096)
    }

    @Test("A results_url on another host is never requested; a file over --results.max-bytes is skipped")
    func skippedFiles() async throws {
        let simulator = try await SimulatorProcess()
        // Same key, another port: a host the key must never be sent to.
        let elsewhere = try await SimulatorProcess(apiKey: simulator.apiKey)
        let exporter = try await ExporterProcess(
            polling: simulator, arguments: Self.arguments + ["--results.max-bytes", "200000"]
        )
        defer { exporter.terminate(); simulator.terminate(); elsewhere.terminate() }
        let ids = try await Self.startBatches(simulator, exporter, sizes: [50, 50, 2000, 20])
        try simulator.control("POST", "/_sim/batches/\(ids[0])/results?base_url=\(elsewhere.baseURL)")
        try simulator.control("POST", "/_sim/batches/\(ids[1])/results?base_url=\(elsewhere.baseURL)")
        try simulator.control("POST", "/_sim/batches/\(ids[2])/results?text_bytes=2000")
        for id in ids { try simulator.control("POST", "/_sim/batches/\(id)/end?succeeded=\(id == ids[2] ? 2000 : id == ids[3] ? 20 : 50)") }

        try await eventually(timeout: .seconds(60), "every batch decided") {
            let scrape = try exporter.scrape()
            return Self.outcome(scrape, "skipped_host") == 2 && Self.outcome(scrape, "skipped_size") == 1 && Self.outcome(scrape, "complete") == 1
        }
        try await exporter.waitForPolls(2)
        let scrape = try exporter.scrape()
        #expect(try Self.resultsRequests(elsewhere).isEmpty, "nothing was sent to the other host")
        #expect(try elsewhere.requestLog().isEmpty)
        #expect(try Self.resultsRequests(simulator)[ids[0]] == nil && Self.resultsRequests(simulator)[ids[1]] == nil)
        // Only the small batch's lines are counted.
        #expect(
            Self.values(scrape, "anthropic_message_batches_result_requests_total", workspace: "default", by: ["result"]).filter { $0.value != 0 } == [
                "succeeded": 20
            ])
        Self.expectCounters(scrape, equal: try Self.truth(simulator, batch: ids[3]))
        let warnings = exporter.process.stderr.split(separator: "\n").filter { $0.contains("host other than the API's") }
        #expect(warnings.count == 1, "warned once, not per batch: \(warnings)")
        #expect(!exporter.process.stderr.contains(simulator.apiKey))
    }

    @Test("Waiting results survive a restart with --storage.path and are counted once", arguments: [SIGTERM, SIGKILL])
    func queueSurvivesRestart(signal: Int32) async throws {
        let directory = try RestartTests.makeDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let simulator = try await SimulatorProcess()
        let storage = ["--storage.path", directory.path]
        var exporter = try await ExporterProcess(polling: simulator, arguments: Self.arguments + storage)
        defer { exporter.terminate(); simulator.terminate() }
        let ids = try await Self.startBatches(simulator, exporter, sizes: [80])
        // Every download fails until the faults are cleared: the batch stays waiting.
        try simulator.control("POST", "/_sim/results-faults?kind=not_found&count=1000")
        try simulator.control("POST", "/_sim/batches/\(ids[0])/end?succeeded=60&errored=20")
        try await eventually("a failed attempt") { Self.outcome(try exporter.scrape(), "retrying") >= 1 }
        // SIGTERM saves the ending with the batch waiting for its results. SIGKILL allows no
        // last save: the file may predate the ending (saves come at most every 30 s), and then
        // the restarted exporter sees the ending again in the listing. Either way the batch must
        // be downloaded and counted exactly once.
        try await exporter.waitForPolls(2)
        #expect(try exporter.scrape()[#"anthropic_batches_exporter_results_waiting_batches{workspace="default"}"#] == 1)
        if signal == SIGKILL {
            exporter.process.signal(SIGKILL)
            _ = try await exporter.process.waitForExit()
        } else {
            #expect(await exporter.stop() == 0)
        }

        let failedDownloads = try Self.resultsRequests(simulator)[ids[0]] ?? 0
        #expect(failedDownloads >= 1)
        try simulator.control("DELETE", "/_sim/results-faults")
        exporter = try await ExporterProcess(polling: simulator, arguments: Self.arguments + storage)
        try await eventually(timeout: .seconds(60), "the restored batch counted") { Self.outcome(try exporter.scrape(), "complete") == 1 }
        var scrape = try exporter.scrape()
        #expect(try Self.resultsRequests(simulator)[ids[0]] == failedDownloads + 1, "one download after the restart")
        #expect(scrape[#"anthropic_batches_exporter_state_restored{workspace="default"}"#] == 1)
        Self.expectCounters(scrape, equal: try Self.truth(simulator))
        #expect(scrape[#"anthropic_message_batches_ended_total{workspace="default"}"#] == 1)

        // A second restart downloads nothing again and keeps the counts.
        let downloads = try Self.resultsRequests(simulator)[ids[0]] ?? 0
        #expect(await exporter.stop() == 0)
        exporter = try await ExporterProcess(polling: simulator, arguments: Self.arguments + storage)
        try await exporter.waitForPolls(3)
        scrape = try exporter.scrape()
        #expect(try Self.resultsRequests(simulator)[ids[0]] == downloads)
        #expect(Self.outcome(scrape, "complete") == 1)
        Self.expectCounters(scrape, equal: try Self.truth(simulator))
    }
}
