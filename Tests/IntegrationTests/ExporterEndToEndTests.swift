import Foundation
import Testing

/// The real exporter binary, real libcurl and real loopback HTTP against the simulator binary.
@Suite("Exporter against the simulated API", .serialized)
struct ExporterEndToEndTests {
    /// Every aggregate the exporter serves equals the simulator's ground truth.
    static func expectMatchesTruth(_ scrape: Scrape, _ simulator: SimulatorProcess) throws -> Bool {
        let truth = try simulator.truth()
        for status in ["in_progress", "canceling", "ended"] {
            let served = scrape[#"anthropic_message_batches{workspace="default",processing_status="\#(status)"}"#]
            guard served == Double(truth.byStatus[status] ?? 0) else { return false }
        }
        for result in ["processing", "succeeded", "errored", "canceled", "expired"] {
            let served = scrape[#"anthropic_message_batches_requests{workspace="default",result="\#(result)"}"#]
            guard served == Double(truth.requests[result] ?? 0) else { return false }
        }
        return scrape[#"anthropic_batches_exporter_snapshot_batches{workspace="default"}"#] == Double(truth.batches)
    }

    @Test("Every metric equals the simulator's truth over 2,500 batches, before and after the data changes", arguments: [1000, 7])
    func matchesTruth(pageSize: Int) async throws {
        let simulator = try await SimulatorProcess(batches: 2_500, active: 40)
        let exporter = try await ExporterProcess(polling: simulator, arguments: ["--api.page-size", "\(pageSize)"])
        defer { exporter.terminate(); simulator.terminate() }

        try await eventually("first snapshot to match the truth") { try Self.expectMatchesTruth(exporter.scrape(), simulator) }
        let scrape = try exporter.scrape()
        #expect(scrape[#"anthropic_batches_exporter_snapshot_batches{workspace="default"}"#] == 2_500)
        #expect(scrape[#"anthropic_message_batches{workspace="default",processing_status="in_progress"}"#] == 40)
        #expect(scrape[#"anthropic_batches_exporter_poll_success{workspace="default"}"#] == 1)
        // One full read is ceil(2500 / pageSize) requests, every one answered 200.
        let pagesPerPoll = Double((2_500 + pageSize - 1) / pageSize)
        let requests = try #require(scrape[#"anthropic_batches_exporter_api_requests_total{workspace="default",code="200",kind="full"}"#])
        #expect(requests.truncatingRemainder(dividingBy: pagesPerPoll) == 0, "requests \(requests) not a multiple of \(pagesPerPoll)")

        // Change the workspace: new batches, some ended with a mix, one canceled, one deleted.
        try simulator.control("POST", "/_sim/batches?count=5&requests=20")
        let truthBefore = try simulator.truth()
        #expect(truthBefore.batches == 2_505)
        try simulator.control("POST", "/_sim/advance?seconds=90000")  // past the 24h expiry of every active batch
        try await eventually("snapshot after the change to match the truth") {
            try Self.expectMatchesTruth(exporter.scrape(), simulator)
        }
        let after = try exporter.scrape()
        #expect(after[#"anthropic_message_batches{workspace="default",processing_status="in_progress"}"#] == 0)
        #expect((after[#"anthropic_message_batches_requests{workspace="default",result="expired"}"#] ?? 0) > 0)
    }

    @Test("A live scrape passes promtool check metrics, plain and gzip-encoded")
    func promtoolClean() async throws {
        let simulator = try await SimulatorProcess(batches: 300, active: 12)
        let exporter = try await ExporterProcess(polling: simulator)
        defer { exporter.terminate(); simulator.terminate() }
        try await exporter.waitForPolls()

        let plain = try RawHTTP.request(port: exporter.port, path: "/metrics")
        #expect(plain.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8")
        let promtool = try runTool("promtool", ["check", "metrics"], input: plain.body)
        #expect(promtool.status == 0, "promtool: \(promtool.output)")
        #expect(promtool.output.isEmpty, "promtool: \(promtool.output)")

        let compressed = try RawHTTP.request(port: exporter.port, path: "/metrics", headers: [("Accept-Encoding", "gzip")])
        #expect(compressed.header("Content-Encoding") == "gzip")
        let inflated = try runTool(
            "python3", ["-c", "import gzip,sys; sys.stdout.buffer.write(gzip.decompress(sys.stdin.buffer.read()))"], input: compressed.body)
        #expect(inflated.status == 0)
        let text = String(decoding: inflated.stdout, as: UTF8.self)
        #expect(text.contains(#"anthropic_message_batches{workspace="default",processing_status="in_progress"} 12"#))
        #expect(text.contains("process_resident_memory_bytes"))
        let gzipPromtool = try runTool("promtool", ["check", "metrics"], input: inflated.stdout)
        #expect(gzipPromtool.status == 0 && gzipPromtool.output.isEmpty, "promtool: \(gzipPromtool.output)")
    }

    @Test("Endpoints: landing page, health, readiness, HEAD, 405 and 404")
    func endpoints() async throws {
        let simulator = try await SimulatorProcess(batches: 10, active: 1)
        let exporter = try await ExporterProcess(polling: simulator)
        defer { exporter.terminate(); simulator.terminate() }
        try await eventually("ready") { try RawHTTP.request(port: exporter.port, path: "/-/ready").status == 200 }

        let landing = try RawHTTP.request(port: exporter.port, path: "/")
        #expect(landing.status == 200)
        #expect(landing.text.contains(#"href="/metrics""#))
        #expect(try RawHTTP.request(port: exporter.port, path: "/-/healthy").status == 200)
        let head = try RawHTTP.request("HEAD", port: exporter.port, path: "/metrics")
        #expect(head.status == 200)
        #expect(head.body.isEmpty)
        #expect(Int(head.header("Content-Length") ?? "0") ?? 0 > 1_000)
        let post = try RawHTTP.request("POST", port: exporter.port, path: "/metrics")
        #expect(post.status == 405)
        #expect(post.header("Allow") == "GET, HEAD")
        #expect(try RawHTTP.request(port: exporter.port, path: "/nope").status == 404)
    }

    @Test("--demo needs no key, becomes ready, and serves metrics that change")
    func demo() async throws {
        let exporter = try await ExporterProcess(arguments: ["--demo", "--poll-interval", "500ms"], environment: [:])
        defer { exporter.terminate() }
        try await eventually("ready") { try RawHTTP.request(port: exporter.port, path: "/-/ready").status == 200 }
        let first = try exporter.scrape()
        #expect((first[#"anthropic_batches_exporter_snapshot_batches{workspace="default"}"#] ?? 0) > 0)
        let firstBatches = first.family("anthropic_message_batch_requests")
        try await eventually(timeout: .seconds(90), "demo metrics to change") {
            try exporter.scrape().family("anthropic_message_batch_requests") != firstBatches
        }
    }

    @Test("A wrong key keeps the exporter up, reports auth failures, and never prints the key")
    func wrongKey() async throws {
        let simulator = try await SimulatorProcess(batches: 10, active: 1)
        let wrongKey = "sk-ant-wrong-\(UInt32.random(in: 0...UInt32.max))"
        let exporter = try await ExporterProcess(polling: simulator, key: wrongKey)
        defer { exporter.terminate(); simulator.terminate() }
        try await eventually("an auth failure to be counted") {
            (try exporter.scrape()[#"anthropic_batches_exporter_poll_errors_total{workspace="default",reason="auth"}"#] ?? 0) >= 1
        }
        let scrape = try exporter.scrape()
        #expect(scrape[#"anthropic_batches_exporter_poll_success{workspace="default"}"#] == 0)
        #expect(scrape[#"anthropic_batches_exporter_api_requests_total{workspace="default",code="401",kind="full"}"#] != nil)
        #expect(scrape.family("anthropic_message_batches").isEmpty, "no batch data before a successful poll")
        #expect(try RawHTTP.request(port: exporter.port, path: "/-/ready").status == 503)
        #expect(exporter.process.isRunning)
        let logs = exporter.process.stderr
        #expect(logs.contains("rejected the API key"))
        #expect(!logs.contains(wrongKey))
        #expect(!scrape.text.contains(wrongKey))
        #expect(await exporter.stop() == 0)
    }

    @Test("SIGTERM stops the exporter cleanly with exit status 0")
    func gracefulStop() async throws {
        let simulator = try await SimulatorProcess(batches: 10, active: 1)
        let exporter = try await ExporterProcess(polling: simulator)
        defer { simulator.terminate() }
        try await exporter.waitForPolls()
        exporter.process.signal(SIGTERM)
        #expect(try await exporter.process.waitForExit(timeout: .seconds(10)) == 0)
    }
}

@Suite("Command line")
struct CommandLineTests {
    @Test(
        "A bad flag or value exits 2 with one line that says what is wrong",
        arguments: [
            (["--bogus"], "Unknown option '--bogus'"),
            (["--poll-interval", "soon"], "--poll-interval"),
            (["--web.listen-address", "nowhere"], "--web.listen-address"),
            (["--api.page-size", "0"], "--api.page-size"),
            (["--log.level", "loud"], "--log.level"),
            (["--log.format", "xml"], "--log.format"),
            (["--api-base-url", "ftp://x"], "--api-base-url"),
            (["--api-key-file", "/nonexistent/key"], "--api-key-file"),
            (["--results.max-attempts", "0"], "--results.max-attempts"),
            (["--results.retry-backoff", "later"], "--results.retry-backoff"),
            (["--results.concurrency", "0"], "--results.concurrency"),
            (["--results.prices-file", "/nonexistent/prices.yml"], "--results.prices-file"),
        ])
    func badFlags(arguments: [String], message: String) async throws {
        let process = try ChildProcess(Binaries.exporter, arguments: arguments, environment: ["ANTHROPIC_API_KEY": "sk-ant-x"])
        #expect(try await process.waitForExit() == 2)
        let lines = process.stderr.split(separator: "\n")
        #expect(lines.count == 1, "stderr: \(process.stderr)")
        #expect(process.stderr.contains(message), "stderr: \(process.stderr)")
    }

    @Test("Without a key and without --demo it exits 2 saying how to give one")
    func noKey() async throws {
        let process = try ChildProcess(Binaries.exporter, arguments: [])
        #expect(try await process.waitForExit() == 2)
        #expect(process.stderr.split(separator: "\n").count == 1)
        #expect(process.stderr.contains("ANTHROPIC_API_KEY"))
        #expect(process.stderr.contains("--api-key-file"))
    }

    @Test("--help documents every flag, --version prints the version")
    func helpAndVersion() async throws {
        let help = try ChildProcess(Binaries.exporter, arguments: ["--help"])
        #expect(try await help.waitForExit() == 0)
        for flag in [
            "--web.listen-address", "--web.telemetry-path", "--api-base-url", "--anthropic-version", "--api-key-file",
            "--poll-interval", "--log.level", "--log.format", "--demo", "--version", "--workspace-name",
        ] {
            #expect(help.stdout.contains(flag), "\(flag) missing from --help")
        }
        let version = try ChildProcess(Binaries.exporter, arguments: ["--version"])
        #expect(try await version.waitForExit() == 0)
        #expect(version.stdout.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ".").count == 3)
    }
}

/// Runs a command-line tool with `input` on stdin.
func runTool(_ tool: String, _ arguments: [String], input: [UInt8]) throws -> (status: Int32, stdout: [UInt8], output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = [tool] + arguments
    let stdin = Pipe()
    let stdout = Pipe()
    let stderr = Pipe()
    process.standardInput = stdin
    process.standardOutput = stdout
    process.standardError = stderr
    try process.run()
    let writer = Thread {
        stdin.fileHandleForWriting.write(Data(input))
        try? stdin.fileHandleForWriting.close()
    }
    writer.start()
    let out = stdout.fileHandleForReading.readDataToEndOfFile()
    let err = stderr.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let combined = String(decoding: out, as: UTF8.self) + String(decoding: err, as: UTF8.self)
    return (process.terminationStatus, Array(out), tool == "python3" ? String(decoding: err, as: UTF8.self) : combined)
}
