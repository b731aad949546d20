import Foundation
import Testing

/// The listener's defences, tried against the real exporter binary polling the simulator
/// binary over loopback: bad requests, connection floods, slow senders, the connection cap,
/// format negotiation as Prometheus 3 asks for it, and SIGTERM while work is in flight.
@Suite("Listener hardening", .serialized)
struct ListenerHardeningTests {
    /// Prometheus 3's default scrape Accept header.
    static let prometheus3Accept =
        "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1"
    static let openMetricsContentType = "application/openmetrics-text; version=1.0.0; charset=utf-8"
    static let textContentType = "text/plain; version=0.0.4; charset=utf-8"
    /// prometheus_client's OpenMetrics parser: exits non-zero on anything it rejects.
    static let openMetricsParser =
        "import sys; from prometheus_client.openmetrics.parser import text_string_to_metric_families as p; fams=list(p(sys.stdin.read())); print(len(fams))"

    /// A simulator with a few batches and an exporter that has finished its first poll.
    static func startPair(
        batches: Int = 40, active: Int = 5, exporterArguments: [String] = []
    ) async throws -> (SimulatorProcess, ExporterProcess) {
        let simulator = try await SimulatorProcess(batches: batches, active: active)
        do {
            let exporter = try await ExporterProcess(polling: simulator, arguments: exporterArguments)
            do {
                try await eventually("the first poll") {
                    try RawHTTP.request(port: exporter.port, path: "/-/ready").status == 200
                }
            } catch {
                exporter.terminate()
                throw error
            }
            return (simulator, exporter)
        } catch {
            simulator.terminate()
            throw error
        }
    }

    /// A scrape on a fresh connection that must be answered 200 with its whole body within
    /// `timeout` (the socket's receive timeout and a wall-clock bound both). The bound is
    /// generous: a working server answers in milliseconds.
    static func timelyScrape(port: Int, timeout: Duration = .seconds(5), headers: [(String, String)] = []) throws -> RawHTTPResponse {
        let started = ContinuousClock.now
        let connection = try RawConnection(port: port, timeout: timeout)
        var request = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
        for (name, value) in headers { request += "\(name): \(value)\r\n" }
        try connection.send(request + "\r\n")
        let response = try connection.readResponse()
        let elapsed = ContinuousClock.now - started
        guard elapsed < timeout else { throw TestFailure("the scrape took \(elapsed), more than \(timeout)") }
        return response
    }

    /// A complete text-format scrape of this exporter: 200, the announced length, and the
    /// families from the start, the middle and the end of the exposition.
    static func expectCompleteScrape(_ response: RawHTTPResponse, _ context: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(response.status == 200, "\(context): status \(response.status)", sourceLocation: sourceLocation)
        #expect(
            response.body.count == Int(response.header("Content-Length") ?? "-1"), "\(context): body shorter than announced", sourceLocation: sourceLocation)
        let text = response.text
        for family in ["anthropic_message_batches{", "anthropic_batches_exporter_build_info{", "process_resident_memory_bytes "] {
            #expect(text.contains(family), "\(context): \(family) missing", sourceLocation: sourceLocation)
        }
        #expect(text.hasSuffix("\n"), "\(context): body does not end with a newline", sourceLocation: sourceLocation)
    }

    // MARK: - 1. Bad requests

    @Test("Oversized head → 431, garbage → 400, a request body → 413; each closes the connection and the next scrape works")
    func badRequestsAreAnsweredAndClosed() async throws {
        let (simulator, exporter) = try await Self.startPair()
        defer { exporter.terminate(); simulator.terminate() }
        let port = exporter.port
        let host = "Host: 127.0.0.1:\(port)\r\n"

        let cases: [(name: String, bytes: String, status: Int)] = [
            ("a 20 KiB header value", "GET /metrics HTTP/1.1\r\n\(host)X-Big: \(String(repeating: "b", count: 20 * 1024))\r\n\r\n", 431),
            (
                "many headers adding up to over 16 KiB",
                "GET /metrics HTTP/1.1\r\n\(host)" + (0..<40).map { "X-Pad-\($0): \(String(repeating: "p", count: 500))\r\n" }.joined() + "\r\n", 431
            ),
            ("garbage bytes", "\u{0}\u{1}GARBAGE\r\n\r\n", 400),
            ("a Content-Length body", "GET /metrics HTTP/1.1\r\n\(host)Content-Length: 10\r\n\r\n0123456789", 413),
            ("a chunked body", "GET /metrics HTTP/1.1\r\n\(host)Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 413),
        ]
        for (name, bytes, status) in cases {
            let connection = try RawConnection(port: port, timeout: .seconds(5))
            try connection.send(bytes)
            let response = try connection.readResponse()
            #expect(response.status == status, "\(name): answered \(response.status), expected \(status)")
            #expect(response.header("Connection")?.lowercased() == "close", "\(name): no Connection: close")
            #expect(connection.isClosedByPeer(within: .seconds(5)), "\(name): the server kept the connection open")

            let after = try Self.timelyScrape(port: port)
            Self.expectCompleteScrape(after, "scrape after \(name)")
        }
        #expect(exporter.process.isRunning)
    }

    // MARK: - 2. Floods of idle and slow connections

    /// 1,000 idle connections and 20 slow-loris senders, then scrapes on new connections.
    ///
    /// With the default cap of 512, the exporter holds at most 512 connections: every
    /// connection over the cap closes the longest-idle one (a connection that has not yet
    /// delivered a complete head counts as idle), so the oldest ~508 idle connections are
    /// closed by the server at once — long before the 10 s head timeout could have closed
    /// them — while the newest and the drippers stay open, and every scrape still gets in.
    /// With `--web.max-connections 2000` nothing is evicted: all 1,020 are held at once and
    /// the scrape still works, which shows that many held connections do not starve the
    /// event loops either. The first variant is the one that proves the cap's eviction.
    @Test("1,000 idle connections and 20 slow-loris senders do not lock a scraper out", arguments: [Int?.none, 2_000])
    func floodDoesNotLockOutScrapes(maxConnections: Int?) async throws {
        let idleCount = 1_000
        let slowCount = 20
        // Both ends of every connection plus the children's pipes, with room to spare.
        try ensureOpenFileLimit(atLeast: 2 * (idleCount + slowCount) + 512)
        let (simulator, exporter) = try await Self.startPair(
            exporterArguments: maxConnections.map { ["--web.max-connections", "\($0)"] } ?? []
        )
        defer { exporter.terminate(); simulator.terminate() }
        let cap = maxConnections ?? 512

        let baseline = try Self.timelyScrape(port: exporter.port)
        Self.expectCompleteScrape(baseline, "baseline scrape")

        // Everything below happens well within the 10 s head timeout that would otherwise
        // close silent connections on its own; the opened-at time lets the checks say so.
        // The idle connections come in two waves half a second apart: within a wave the
        // server's admission order is only roughly the connect order (connections are spread
        // over several event loops), but every connection of the first wave has been idle
        // longer than any of the second.
        let openedAt = ContinuousClock.now
        let olderCount = 600
        var older: [RawConnection] = []
        var newer: [RawConnection] = []
        for _ in 0..<olderCount { older.append(try RawConnection(port: exporter.port, timeout: .seconds(5))) }
        try await Task.sleep(for: .milliseconds(500))
        for _ in olderCount..<idleCount { newer.append(try RawConnection(port: exporter.port, timeout: .seconds(5))) }
        try await Task.sleep(for: .milliseconds(500))
        let slowLoris = try SlowLorisSenders(count: slowCount, port: exporter.port)
        defer { slowLoris.stop() }

        let expectedEvictions = max(0, idleCount + slowCount - cap)
        if expectedEvictions > 0 {
            // The server accepts asynchronously; wait for it to have made room.
            try await eventually(timeout: .seconds(5), "\(expectedEvictions) idle connections to be evicted") {
                older.filter { $0.isClosedByPeer(within: .zero) }.count >= expectedEvictions
            }
        } else {
            try await Task.sleep(for: .milliseconds(500))
        }

        let scrapes = 5
        for attempt in 1...scrapes {
            let response = try Self.timelyScrape(port: exporter.port)
            Self.expectCompleteScrape(response, "scrape \(attempt) during the flood")
            try await Task.sleep(for: .milliseconds(300))
        }

        // What the server holds now: at the cap, each connection over it (the drippers, then
        // each scrape) evicted one idle connection of the older wave; the newer wave and every
        // dripper are intact.
        let olderClosed = older.filter { $0.isClosedByPeer(within: .zero) }.count
        let newerClosed = newer.filter { $0.isClosedByPeer(within: .zero) }.count
        let elapsed = ContinuousClock.now - openedAt
        #expect(elapsed < .seconds(9), "the checks ran \(elapsed) after the flood began, too close to the 10 s head timeout to tell eviction from it")
        if expectedEvictions > 0 {
            #expect(olderClosed >= expectedEvictions, "only \(olderClosed) idle connections closed under the cap of \(cap)")
            #expect(olderClosed <= expectedEvictions + scrapes, "\(olderClosed) idle connections closed: more than the cap needs")
            #expect(newerClosed == 0, "\(newerClosed) of the more recently opened idle connections closed before older ones")
        } else {
            #expect(olderClosed + newerClosed == 0, "\(olderClosed + newerClosed) idle connections closed although the cap of \(cap) was not reached")
        }
        #expect(slowLoris.closedByServer == 0, "\(slowLoris.closedByServer) slow-loris connections closed before their head timeout")
        #expect(slowLoris.bytesSent > slowCount * 3, "the slow-loris senders never sent anything")
        #expect(exporter.process.isRunning)
        withExtendedLifetime((older, newer)) {}
    }

    // MARK: - 3. Slow-loris alone

    @Test("A connection that drips a partial head, and one that sends nothing, are closed by the 10 s head timeout")
    func slowLorisIsClosedByHeadTimeout() async throws {
        let (simulator, exporter) = try await Self.startPair()
        defer { exporter.terminate(); simulator.terminate() }

        let started = ContinuousClock.now
        let dripper = try SlowLorisSenders(count: 1, port: exporter.port)
        defer { dripper.stop() }
        let silent = try RawConnection(port: exporter.port, timeout: .seconds(15))

        try await eventually(timeout: .seconds(16), every: .milliseconds(200), "the slow-loris connection to be closed") {
            dripper.closedByServer == 1
        }
        let dripperClosedAfter = ContinuousClock.now - started
        // Dripping never resets the timer: the head has to be complete within 10 s of accept.
        // (A lower bound on the server's own timer, not a speed measurement: closing it early
        // would mean something other than the head timeout did it.)
        #expect(dripperClosedAfter >= .seconds(9), "closed after \(dripperClosedAfter), before the head timeout")
        #expect(dripper.bytesSent > 100, "the dripper sent only \(dripper.bytesSent) bytes")
        #expect(silent.isClosedByPeer(within: .seconds(3)), "a connection that sent nothing was not closed")

        Self.expectCompleteScrape(try Self.timelyScrape(port: exporter.port), "scrape after the slow-loris")
    }

    // MARK: - 4. The connection cap

    /// At the cap a new connection closes the longest-idle one. Refusing a new connection
    /// when every held one is busy needs connections that stay busy, which the exporter's
    /// instant responses never are; that case is unit-tested against a slow responder in
    /// Tests/HTTPServingTests (and ConnectionTable's admission rules directly).
    @Test("--web.max-connections 3: a 4th connection gets its scrape; the longest-idle connection is the one closed")
    func capEvictsLongestIdle() async throws {
        let (simulator, exporter) = try await Self.startPair(exporterArguments: ["--web.max-connections", "3"])
        defer { exporter.terminate(); simulator.terminate() }
        let port = exporter.port

        let first = try RawConnection(port: port, timeout: .seconds(5))
        try await Task.sleep(for: .milliseconds(100))
        let second = try RawConnection(port: port, timeout: .seconds(5))
        try await Task.sleep(for: .milliseconds(100))
        let third = try RawConnection(port: port, timeout: .seconds(5))
        try await Task.sleep(for: .milliseconds(100))
        #expect(![first, second, third].contains { $0.isClosedByPeer(within: .zero) }, "three connections fit under a cap of 3")

        // A request on the first (kept alive) makes it the most recently idle one, so the
        // second is now the longest idle: the cap must pick by idleness, not by age.
        try first.send("GET /-/healthy HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n\r\n")
        #expect(try first.readResponse().status == 200)
        try await Task.sleep(for: .milliseconds(100))

        Self.expectCompleteScrape(try Self.timelyScrape(port: port), "scrape on a 4th connection")
        #expect(second.isClosedByPeer(within: .seconds(2)), "the longest-idle connection was not closed")
        #expect(!first.isClosedByPeer(within: .milliseconds(200)), "a more recently used connection was closed")
        #expect(!third.isClosedByPeer(within: .zero), "a more recently opened connection was closed")

        // The 4th connection was closed after its response (Connection: close), which made room
        // again; fill the cap with a new idle connection, and the next scrape must evict the
        // third (opened before the first's request ended), not the first or the new one.
        let fourth = try RawConnection(port: port, timeout: .seconds(5))
        try await Task.sleep(for: .milliseconds(100))
        Self.expectCompleteScrape(try Self.timelyScrape(port: port), "scrape on a 5th connection")
        #expect(third.isClosedByPeer(within: .seconds(2)), "the next longest-idle connection was not closed")
        #expect(!fourth.isClosedByPeer(within: .milliseconds(200)), "the newest idle connection was closed")
        // The survivor still works.
        try first.send("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n\r\n")
        Self.expectCompleteScrape(try first.readResponse(), "scrape on the surviving kept-alive connection")
    }

    // MARK: - 5. Content negotiation

    static func requirePrometheusClient() throws {
        let probe = try runTool("python3", ["-c", "import prometheus_client.openmetrics.parser"], input: [])
        guard probe.status == 0 else {
            throw TestFailure(
                "python3 cannot import prometheus_client (\(probe.output.trimmingCharacters(in: .whitespacesAndNewlines))); "
                    + "scripts/install-deps --test installs it (pip package prometheus-client)"
            )
        }
    }

    /// The OpenMetrics-specific shape of an exposition: `# EOF` last, counters and info
    /// families typed by their base name while their samples carry the suffix.
    static func expectOpenMetricsShape(_ text: String, _ context: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(text.hasSuffix("# EOF\n"), "\(context): does not end with # EOF", sourceLocation: sourceLocation)
        #expect(text.components(separatedBy: "# EOF").count == 2, "\(context): # EOF more than once", sourceLocation: sourceLocation)
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines.contains("# TYPE anthropic_batches_exporter_api_requests counter"), "\(context): counter TYPE line", sourceLocation: sourceLocation)
        #expect(
            !lines.contains { $0.hasPrefix("# TYPE anthropic_batches_exporter_api_requests_total") }, "\(context): counter TYPE named with _total",
            sourceLocation: sourceLocation)
        #expect(
            lines.contains { $0.hasPrefix(#"anthropic_batches_exporter_api_requests_total{workspace="default",code="200""#) },
            "\(context): counter samples without _total", sourceLocation: sourceLocation
        )
        #expect(
            !lines.contains { $0.hasPrefix("anthropic_batches_exporter_api_requests{") }, "\(context): a counter sample without _total",
            sourceLocation: sourceLocation)
        #expect(lines.contains("# TYPE anthropic_message_batch info"), "\(context): info TYPE line", sourceLocation: sourceLocation)
        #expect(
            lines.contains { $0.hasPrefix("anthropic_message_batch_info{") && $0.hasSuffix(" 1") }, "\(context): info samples", sourceLocation: sourceLocation)
    }

    @Test("Prometheus 3's Accept header gets OpenMetrics 1.0.0 that the reference parser accepts, plain and gzip; no Accept gets promtool-clean 0.0.4")
    func contentNegotiation() async throws {
        try Self.requirePrometheusClient()
        let (simulator, exporter) = try await Self.startPair(batches: 60, active: 8)
        defer { exporter.terminate(); simulator.terminate() }

        let openMetrics = try Self.timelyScrape(port: exporter.port, headers: [("Accept", Self.prometheus3Accept)])
        #expect(openMetrics.status == 200)
        #expect(openMetrics.header("Content-Type") == Self.openMetricsContentType)
        #expect(openMetrics.header("Content-Encoding") == nil)
        Self.expectOpenMetricsShape(openMetrics.text, "OpenMetrics")
        let parsed = try runTool("python3", ["-c", Self.openMetricsParser], input: openMetrics.body)
        #expect(parsed.status == 0, "prometheus_client rejected the OpenMetrics scrape: \(parsed.output)")
        #expect((Int(String(decoding: parsed.stdout, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0) > 10)

        let compressed = try Self.timelyScrape(port: exporter.port, headers: [("Accept", Self.prometheus3Accept), ("Accept-Encoding", "gzip")])
        #expect(compressed.status == 200)
        #expect(compressed.header("Content-Type") == Self.openMetricsContentType)
        #expect(compressed.header("Content-Encoding") == "gzip")
        let inflated = try runTool(
            "python3", ["-c", "import gzip,sys; sys.stdout.buffer.write(gzip.decompress(sys.stdin.buffer.read()))"], input: compressed.body)
        #expect(inflated.status == 0, "python3 gzip could not decompress the body: \(inflated.output)")
        Self.expectOpenMetricsShape(String(decoding: inflated.stdout, as: UTF8.self), "gzip OpenMetrics")
        let parsedGzip = try runTool("python3", ["-c", Self.openMetricsParser], input: inflated.stdout)
        #expect(parsedGzip.status == 0, "prometheus_client rejected the gzip OpenMetrics scrape: \(parsedGzip.output)")

        let plain = try Self.timelyScrape(port: exporter.port)
        #expect(plain.header("Content-Type") == Self.textContentType)
        #expect(!plain.text.contains("# EOF"))
        #expect(plain.text.contains("# TYPE anthropic_batches_exporter_api_requests_total counter"))
        let promtool = try runTool("promtool", ["check", "metrics"], input: plain.body)
        #expect(promtool.status == 0, "promtool: \(promtool.output)")
        #expect(promtool.output.isEmpty, "promtool: \(promtool.output)")
    }

    // MARK: - 6. and 7. SIGTERM with work in flight

    @Test("SIGTERM during a slowly read multi-megabyte scrape: the response completes, then the exporter exits 0")
    func sigtermDuringScrape() async throws {
        let batches = 20_000
        let simulator = try await SimulatorProcess(batches: batches, active: batches)
        defer { simulator.terminate() }
        let exporter = try await ExporterProcess(
            polling: simulator,
            arguments: ["--batch-metrics.max-batches", "\(batches)", "--poll-interval", "60s"]
        )
        defer { exporter.terminate() }
        try await eventually(timeout: .seconds(60), "the first poll of \(batches) batches") {
            try RawHTTP.request(port: exporter.port, path: "/-/ready").status == 200
        }

        // OpenMetrics, so the body's last bytes (# EOF) prove by themselves that it is whole.
        let reader = try SlowReader(port: exporter.port)
        try reader.send("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:\(exporter.port)\r\nAccept: \(Self.prometheus3Accept)\r\n\r\n")
        #expect(reader.read(atLeast: 32 * 1024), "the first 32 KiB of the scrape did not arrive")
        let bodyStart = try #require(reader.bodyStart)
        #expect(reader.status == 200)
        let length = try #require(reader.header("Content-Length").flatMap { Int($0) })
        #expect(length > 4 * 1024 * 1024, "the scrape is only \(length) bytes; the test needs one far larger than the socket buffers")

        exporter.process.signal(SIGTERM)
        // Make sure the shutdown is under way before reading on: the listener is closed first.
        _ = try await exporter.process.waitForLine(containing: "Signal caught", timeout: .seconds(5))
        try await eventually(timeout: .seconds(5), every: .milliseconds(20), "the listener to stop accepting") {
            (try? RawConnection(port: exporter.port, timeout: .seconds(1))) == nil
        }
        try await Task.sleep(for: .milliseconds(300))
        #expect(exporter.process.isRunning, "the exporter exited with the response unread")

        let complete = reader.read(atLeast: bodyStart + length, chunkSize: 256 * 1024)
        let received = reader.received.count - bodyStart
        #expect(complete, "the response was cut off at \(received) of \(length) bytes")
        if complete {
            #expect(received == length, "more bytes than announced: \(received) of \(length)")
            let tail = String(decoding: reader.received.suffix(6), as: UTF8.self)
            #expect(tail == "# EOF\n", "the body ends with \(tail.debugDescription)")
        }
        #expect(try await exporter.process.waitForExit(timeout: .seconds(5)) == 0)
    }

    @Test("SIGTERM while a poll hangs on the API: the exporter exits 0 within 5 s")
    func sigtermDuringPoll() async throws {
        let simulator = try await SimulatorProcess(batches: 20, active: 2)
        defer { simulator.terminate() }
        try simulator.enqueueFault("kind=hang&count=100")
        // A request timeout far beyond the 5 s bound: only cancelling the transfer can stop it in time.
        let exporter = try await ExporterProcess(polling: simulator, arguments: ["--api.request-timeout", "120s", "--poll-interval", "60s"])
        defer { exporter.terminate() }
        try await eventually(timeout: .seconds(10), "the hung list request to reach the simulator") {
            try simulator.requestLog().contains { ($0["fault"] as? String) == "hang" }
        }
        try await Task.sleep(for: .milliseconds(200))
        #expect(exporter.process.isRunning)

        exporter.process.signal(SIGTERM)
        #expect(try await exporter.process.waitForExit(timeout: .seconds(5)) == 0, "stderr: \(exporter.process.stderr.suffix(2_000))")
    }
}
