import Foundation
import Testing

/// What the exporter does when the API misbehaves, driven by the simulator's scripted faults.
@Suite("When the API misbehaves", .serialized)
struct ResilienceTests {
    static func requestTimes(_ simulator: SimulatorProcess) throws -> [(ms: Int, status: Int?, fault: String?)] {
        try simulator.requestLog().compactMap { entry in
            guard let received = entry["received_ms"] as? Int else { return nil }
            return (received, entry["status"] as? Int, entry["fault"] as? String)
        }
    }

    @Test("A 429 with retry-after is retried after the server's delay; the poll succeeds and counts both codes")
    func retryAfterHonoured() async throws {
        let simulator = try await SimulatorProcess(batches: 30, active: 3)
        let exporter = try await ExporterProcess(polling: simulator, arguments: ["--poll-interval", "60s"])
        defer { exporter.terminate(); simulator.terminate() }
        try await eventually("first poll") { try exporter.pollCount() >= 1 }
        try simulator.control("DELETE", "/_sim/requests")
        try simulator.enqueueFault("kind=status&status=429&retry_after=1")
        // A fresh exporter polls at once; the first request meets the 429.
        let second = try await ExporterProcess(polling: simulator, arguments: ["--poll-interval", "60s"])
        defer { second.terminate() }
        try await eventually("the retried poll to succeed") {
            try second.scrape()[#"anthropic_batches_exporter_poll_success{workspace="default"}"#] == 1
        }
        let log = try Self.requestTimes(simulator)
        let rateLimited = try #require(log.firstIndex { $0.status == 429 })
        let retry = try #require(log.indices.first { $0 > rateLimited })
        #expect(log[retry].ms - log[rateLimited].ms >= 1000, "retry came \(log[retry].ms - log[rateLimited].ms) ms after the 429")
        let scrape = try second.scrape()
        #expect(scrape[#"anthropic_batches_exporter_api_requests_total{workspace="default",code="429",kind="full"}"#] == 1)
        #expect(scrape[#"anthropic_batches_exporter_api_requests_total{workspace="default",code="200",kind="full"}"#] == 1)
        #expect(try ExporterEndToEndTests.expectMatchesTruth(scrape, simulator))
    }

    @Test("x-should-retry: false is obeyed: one request, and the poll fails as http_5xx")
    func shouldRetryFalse() async throws {
        let simulator = try await SimulatorProcess(batches: 5, active: 1)
        try simulator.enqueueFault("kind=status&status=503&should_retry=false")
        let exporter = try await ExporterProcess(polling: simulator, arguments: ["--poll-interval", "60s"])
        defer { exporter.terminate(); simulator.terminate() }
        try await eventually("the failure to be counted") {
            try exporter.scrape()[#"anthropic_batches_exporter_poll_errors_total{workspace="default",reason="http_5xx"}"#] == 1
        }
        #expect(try simulator.requestLog().count == 1)
    }

    @Test("A failed poll keeps the last good snapshot served, says why, and the next good poll replaces it")
    func lastGoodSnapshotKept() async throws {
        let simulator = try await SimulatorProcess(batches: 200, active: 10)
        let exporter = try await ExporterProcess(polling: simulator, arguments: ["--api.page-size", "50"])
        defer { exporter.terminate(); simulator.terminate() }
        try await eventually("first snapshot") { try ExporterEndToEndTests.expectMatchesTruth(exporter.scrape(), simulator) }
        let before = try exporter.scrape()

        try simulator.enqueueFault("kind=garbage&count=100000")
        try simulator.control("POST", "/_sim/batches?count=7&requests=3")
        try await eventually("decode failures to be counted") {
            (try exporter.scrape()[#"anthropic_batches_exporter_poll_errors_total{workspace="default",reason="decode"}"#] ?? 0) >= 2
        }
        let during = try exporter.scrape()
        #expect(during[#"anthropic_batches_exporter_poll_success{workspace="default"}"#] == 0)
        for series in before.family("anthropic_message_batches").keys {
            #expect(during[series] == before[series], "\(series) changed during the outage")
        }
        #expect(during[#"anthropic_batches_exporter_snapshot_batches{workspace="default"}"#] == 200)
        #expect((during[#"anthropic_batches_exporter_snapshot_age_seconds{workspace="default"}"#] ?? 0) > 0)
        #expect(exporter.process.stderr.contains("serving the last good snapshot"))

        try simulator.control("DELETE", "/_sim/faults")
        try await eventually("recovery") { try ExporterEndToEndTests.expectMatchesTruth(exporter.scrape(), simulator) }
        let after = try exporter.scrape()
        #expect(after[#"anthropic_batches_exporter_snapshot_batches{workspace="default"}"#] == 207)
        #expect(after[#"anthropic_batches_exporter_poll_success{workspace="default"}"#] == 1)
        #expect(!exporter.process.stderr.contains(simulator.apiKey), "the key must never be logged")
    }

    @Test(
        "Each kind of bad answer fails the poll with its reason and nothing crashes",
        arguments: [
            ("kind=html&status=502", "http_5xx"),
            ("kind=garbage", "decode"),
            ("kind=wrong_types", "decode"),
            ("kind=wrong_content_type", "decode"),
            ("kind=truncated", "transport"),
            ("kind=close", "transport"),
            ("kind=hang", "timeout"),
            ("kind=endless_cursor", "pagination"),
            ("kind=spend_cap", "rate_limited"),
            ("kind=status&status=429", "rate_limited"),
            ("kind=status&status=401", "auth"),
            ("kind=status&status=403", "auth"),
            ("kind=status&status=404", "http_4xx"),
        ])
    func badAnswers(fault: String, reason: String) async throws {
        let simulator = try await SimulatorProcess(batches: 20, active: 2)
        try simulator.enqueueFault(fault + "&count=100000")
        let exporter = try await ExporterProcess(
            polling: simulator,
            arguments: ["--api.max-retries", "0", "--api.request-timeout", "500ms", "--api.page-size", "5"]
        )
        defer { exporter.terminate(); simulator.terminate() }
        try await eventually("a \(reason) failure to be counted") {
            (try exporter.scrape()[#"anthropic_batches_exporter_poll_errors_total{workspace="default",reason="\#(reason)"}"#] ?? 0) >= 1
        }
        let scrape = try exporter.scrape()
        #expect(scrape[#"anthropic_batches_exporter_poll_success{workspace="default"}"#] == 0)
        let otherReasons = scrape.family("anthropic_batches_exporter_poll_errors_total").filter { !$0.key.contains(#"reason="\#(reason)""#) }
        #expect(otherReasons.values.allSatisfy { $0 == 0 }, "other reasons counted: \(otherReasons)")
        #expect(exporter.process.isRunning)
        #expect(!exporter.process.stderr.contains(simulator.apiKey), "the key must never be logged")
    }

    @Test("An endless listing stops at --api.max-pages")
    func maxPages() async throws {
        let simulator = try await SimulatorProcess(batches: 50, active: 0)
        let exporter = try await ExporterProcess(polling: simulator, arguments: ["--api.page-size", "1", "--api.max-pages", "5", "--poll-interval", "60s"])
        defer { exporter.terminate(); simulator.terminate() }
        try await eventually("a pagination failure") {
            try exporter.scrape()[#"anthropic_batches_exporter_poll_errors_total{workspace="default",reason="pagination"}"#] == 1
        }
        #expect(try simulator.requestLog().count == 5)
        #expect(exporter.process.stderr.contains("did not end within 5 pages"))
    }

    @Test("A hung API never blocks /metrics")
    func hungAPIDoesNotBlockScrapes() async throws {
        let simulator = try await SimulatorProcess(batches: 5, active: 1)
        let exporter = try await ExporterProcess(polling: simulator, arguments: ["--api.request-timeout", "30s", "--poll-interval", "200ms"])
        defer { exporter.terminate(); simulator.terminate() }
        try await eventually("first poll") { try exporter.pollCount() >= 1 }
        try simulator.enqueueFault("kind=hang&count=10")
        try await eventually("the hang to be in progress") { try simulator.requestLog().contains { ($0["fault"] as? String) == "hang" } }
        for _ in 0..<5 {
            #expect(try RawHTTP.request(port: exporter.port, path: "/metrics").status == 200)
        }
    }

    @Test("Failed polls back off (doubling, capped at 10 intervals) and a success returns to the interval")
    func pollLoopBackoff() async throws {
        let simulator = try await SimulatorProcess(batches: 5, active: 1)
        try simulator.enqueueFault("kind=status&status=401&count=4")
        let exporter = try await ExporterProcess(polling: simulator, arguments: ["--poll-interval", "250ms", "--api.max-retries", "0"])
        defer { exporter.terminate(); simulator.terminate() }
        try await eventually(timeout: .seconds(60), "four failures and two successes") { try simulator.requestLog().count >= 6 }
        let times = try Self.requestTimes(simulator).map(\.ms)
        let gaps = zip(times.dropFirst(), times).map { $0 - $1 }
        // After failure n the wait is 250ms × 2^n: 500, 1000, 2000, 2500 (capped at 10 × 250).
        #expect(gaps[0] >= 480 && gaps[1] >= 980 && gaps[2] >= 1980 && gaps[3] >= 2480, "gaps \(gaps)")
        #expect(gaps[3] < 4000, "the cap is 10 intervals: \(gaps)")
        // After the first success the next poll comes one interval later.
        #expect(gaps[4] < 1000, "gaps \(gaps)")
        #expect(try exporter.scrape()[#"anthropic_batches_exporter_poll_success{workspace="default"}"#] == 1)
    }

    @Test("HTTP_PROXY-style environment is honoured: requests go through the proxy")
    func proxy() async throws {
        let simulator = try await SimulatorProcess(batches: 12, active: 2)
        // The simulator accepts absolute-form request targets, as a forward proxy would, so it
        // stands in for the proxy and the API at once; api.invalid cannot resolve, so only the
        // proxy can have carried the requests.
        let exporter = try await ExporterProcess(
            arguments: ["--api-base-url", "http://api.invalid", "--poll-interval", "300ms"],
            environment: ["ANTHROPIC_API_KEY": simulator.apiKey, "http_proxy": simulator.baseURL]
        )
        defer { exporter.terminate(); simulator.terminate() }
        try await eventually("polls through the proxy to match the truth") {
            try ExporterEndToEndTests.expectMatchesTruth(exporter.scrape(), simulator)
        }
    }
}

@Suite("TLS to the API and its rate-limit headers", .serialized)
struct APITransportTests {
    @Test("TLS verification is on: an unknown CA fails the poll; --api.ca-file adds it and polls succeed")
    func caFile() async throws {
        let materials = try SecureListenerTests.Materials(webConfig: "")
        let simulator = try await SimulatorProcess(
            batches: 15, active: 2,
            extraArguments: ["--tls-cert", materials.certPath, "--tls-key", materials.directory.appendingPathComponent("key.pem").path],
            caCertificate: materials.certPath
        )
        defer { simulator.terminate() }
        let httpsURL = "https://127.0.0.1:\(simulator.port)"

        let untrusting = try await ExporterProcess(
            arguments: ["--api-base-url", httpsURL, "--poll-interval", "300ms", "--api.max-retries", "0", "--api.max-requests-per-minute", "0"],
            environment: ["ANTHROPIC_API_KEY": simulator.apiKey]
        )
        defer { untrusting.terminate() }
        try await eventually("a transport failure for the unknown CA") {
            (try untrusting.scrape()[#"anthropic_batches_exporter_poll_errors_total{workspace="default",reason="transport"}"#] ?? 0) >= 1
        }
        #expect(try untrusting.scrape()[#"anthropic_batches_exporter_poll_success{workspace="default"}"#] == 0)
        #expect(try simulator.requestLog().isEmpty, "no request got past the TLS handshake")

        let trusting = try await ExporterProcess(
            arguments: [
                "--api-base-url", httpsURL, "--api.ca-file", materials.certPath, "--poll-interval", "300ms",
                "--api.max-requests-per-minute", "0",
            ],
            environment: ["ANTHROPIC_API_KEY": simulator.apiKey]
        )
        defer { trusting.terminate() }
        try await eventually("polls over TLS to match the truth") { try ExporterEndToEndTests.expectMatchesTruth(trusting.scrape(), simulator) }
    }

    @Test("anthropic-ratelimit-* response headers become gauges when the API sends them")
    func rateLimitHeaders() async throws {
        let simulator = try await SimulatorProcess(batches: 5, active: 1, extraArguments: ["--ratelimit-headers", "50"])
        let exporter = try await ExporterProcess(polling: simulator)
        defer { exporter.terminate(); simulator.terminate() }
        try await exporter.waitForPolls(2)
        let scrape = try exporter.scrape()
        #expect(scrape[#"anthropic_batches_exporter_api_ratelimit_limit{workspace="default",resource="requests"}"#] == 50)
        let remaining = try #require(scrape[#"anthropic_batches_exporter_api_ratelimit_remaining{workspace="default",resource="requests"}"#])
        #expect(remaining >= 0 && remaining < 50)
        let reset = try #require(scrape[#"anthropic_batches_exporter_api_ratelimit_reset_timestamp_seconds{workspace="default",resource="requests"}"#])
        #expect(abs(reset - Date().timeIntervalSince1970 - 60) < 30)
    }

    @Test("Without such headers there are no rate-limit gauges")
    func noRateLimitHeaders() async throws {
        let simulator = try await SimulatorProcess(batches: 5, active: 1)
        let exporter = try await ExporterProcess(polling: simulator)
        defer { exporter.terminate(); simulator.terminate() }
        try await exporter.waitForPolls(1)
        #expect(!(try exporter.scrape().text.contains("anthropic_batches_exporter_api_ratelimit_")))
    }
}
