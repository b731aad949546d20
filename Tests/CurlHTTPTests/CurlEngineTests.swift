import HTTPServing
import Logging
import Synchronization
import Testing

@testable import CurlHTTP

/// Polls `condition` every 10 ms until it holds or `timeout` passes. Waits for an event; the
/// timeout is only a bound for a broken build, not a speed claim.
func eventually(timeout: Duration = .seconds(60), _ condition: () -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try await Task.sleep(for: .milliseconds(10))
    }
    return condition()
}

private final class Counter: Sendable {
    private let value = Atomic<Int>(0)
    var current: Int { value.load(ordering: .relaxed) }
    func increment() { value.add(1, ordering: .relaxed) }
}

private struct ConsumerGaveUp: Error {}

@Suite("libcurl engine: many transfers on one thread, streaming with backpressure", .serialized)
struct CurlEngineTests {
    static func client(requestTimeout: Duration = .seconds(120), maxBodyBytes: Int = 1 << 20) throws -> CurlClient {
        try CurlClient(configuration: .init(connectTimeout: .seconds(5), requestTimeout: requestTimeout, maxBodyBytes: maxBodyBytes, userAgent: "test-agent/1"))
    }

    @Test("A healthy request completes while 20 others hang, and cancelling the 20 ends them as cancelled")
    func hungTransfersDoNotBlockAHealthyOne() async throws {
        try await RawTestServer.withServer { server in
            // One client for the hung workspace, another for the healthy one, as in the exporter.
            let hungClient = try Self.client()
            let healthyClient = try Self.client()
            let ended = Counter()
            let hung = (0..<20).map { _ in
                Task {
                    defer { ended.increment() }
                    return try await hungClient.get(url: "http://127.0.0.1:\(server.port)/hang", headers: [])
                }
            }
            #expect(try await eventually { server.stats.hangingRequests == 20 })
            #expect(hungClient.stats.activeTransfers == 20)

            let healthy = try await healthyClient.get(url: "http://127.0.0.1:\(server.port)/ok", headers: [])
            #expect(healthy.status == 200)
            #expect(healthy.body == Array("ok".utf8))
            // The same client is not blocked by its own hung transfers either.
            let sameClient = try await hungClient.get(url: "http://127.0.0.1:\(server.port)/ok", headers: [])
            #expect(sameClient.status == 200)
            #expect(ended.current == 0)
            #expect(hungClient.stats.activeTransfers == 20)

            for task in hung { task.cancel() }
            for task in hung {
                // With a 120 s request timeout, only the cancellation can end these as `.cancelled`.
                let result = await task.result
                guard case .failure(let error) = result else {
                    Issue.record("a hung transfer returned a response")
                    continue
                }
                #expect((error as? CurlError)?.kind == .cancelled)
            }
            #expect(try await eventually { hungClient.stats.activeTransfers == 0 })
            // Each cancelled transfer's connection is closed rather than kept for reuse.
            #expect(try await eventually { server.stats.connectionsClosed == 20 })
        }
    }

    @Test("A cancelled task's transfer that has not started yet never starts")
    func cancelledBeforeStart() async throws {
        try await RawTestServer.withServer { server in
            let client = try Self.client()
            let task = Task {
                withUnsafeCurrentTask { $0?.cancel() }
                return try await client.get(url: "http://127.0.0.1:\(server.port)/hang", headers: [])
            }
            let result = await task.result
            guard case .failure(let error) = result else {
                Issue.record("expected cancellation")
                return
            }
            #expect((error as? CurlError)?.kind == .cancelled)
            #expect(server.stats.hangingRequests == 0)
            #expect(client.stats.activeTransfers == 0)
        }
    }

    @Test("Fifty concurrent GETs on one client all succeed, and later requests reuse connections and handles")
    func manyConcurrentGets() async throws {
        try await CurlClientTests.withServer { port in
            let client = try Self.client()
            let statuses = try await withThrowingTaskGroup(of: (Int, [UInt8]).self) { group in
                for _ in 0..<50 {
                    group.addTask {
                        let response = try await client.get(url: "http://127.0.0.1:\(port)/", headers: [])
                        return (response.status, response.body)
                    }
                }
                var all: [(Int, [UInt8])] = []
                for try await result in group { all.append(result) }
                return all
            }
            #expect(statuses.count == 50)
            #expect(statuses.allSatisfy { $0.0 == 200 && $0.1 == Array("hello".utf8) })
            #expect(client.stats.handlesCreated >= 2)
            let handlesAfterBurst = client.stats.handlesCreated

            for _ in 0..<3 {
                let again = try await client.get(url: "http://127.0.0.1:\(port)/", headers: [])
                #expect(again.status == 200)
                #expect(again.connectionsOpened == 0)
            }
            #expect(client.stats.handlesCreated == handlesAfterBurst)
        }
    }

    @Test("A per-request timeout overrides the configured one and classifies as timeout")
    func perRequestTimeout() async throws {
        try await RawTestServer.withServer { server in
            let client = try Self.client(requestTimeout: .seconds(120))
            await #expect {
                _ = try await client.get(url: "http://127.0.0.1:\(server.port)/hang", headers: [], timeout: .milliseconds(300))
            } throws: { error in
                (error as? CurlError)?.kind == .timeout
            }
        }
    }

    @Test("Streaming 200 MB to a slow consumer delivers every byte in order while the buffer stays bounded")
    func streamLargeBodyWithBackpressure() async throws {
        try await RawTestServer.withServer { server in
            let client = try Self.client()
            let total = 200_000_000
            let stallEvery = 40_000_000
            let (received, highWaterMark, pauses, mismatches) = try await client.stream(
                url: "http://127.0.0.1:\(server.port)/generate?bytes=\(total)",
                headers: []
            ) { head, body in
                #expect(head.status == 200)
                #expect(head.header("content-length") == "\(total)")
                var received = 0
                var mismatches = 0
                var nextStall = 0
                for try await chunk in body {
                    // First and last byte of each chunk against the pattern: a lost, repeated
                    // or reordered chunk shifts the offsets and shows here.
                    if let first = chunk.first, first != RawTestServer.patternByte(at: received) { mismatches += 1 }
                    if let last = chunk.last, last != RawTestServer.patternByte(at: received + chunk.count - 1) { mismatches += 1 }
                    received += chunk.count
                    if received >= nextStall, received < total {
                        // A slow consumer: read nothing more until the buffer is full and the
                        // engine has paused the transfer.
                        #expect(try await eventually { body.isPaused })
                        nextStall += stallEvery
                    }
                }
                return (received, body.highWaterMark, body.pauseCount, mismatches)
            }
            #expect(received == total)
            #expect(mismatches == 0)
            #expect(pauses >= total / stallEvery)
            // Bounded by the pause threshold plus at most one write callback's worth.
            #expect(highWaterMark >= StreamState.pauseThreshold)
            #expect(highWaterMark <= StreamState.pauseThreshold + 256 << 10)
            #expect(server.stats.completedBodies == 1)
            #expect(client.stats.activeTransfers == 0)
        }
    }

    @Test("A connection cut in the middle of a streamed body is thrown by the iterator after the bytes that came")
    func streamCutMidBody() async throws {
        try await RawTestServer.withServer { server in
            let client = try Self.client()
            let (received, failure) = try await client.stream(
                url: "http://127.0.0.1:\(server.port)/cut?bytes=3000000&total=10000000",
                headers: []
            ) { head, body -> (Int, CurlError?) in
                #expect(head.status == 200)
                var received = 0
                do throws(CurlError) {
                    for try await chunk in body { received += chunk.count }
                } catch {
                    return (received, error)
                }
                return (received, nil)
            }
            #expect(received == 3_000_000)
            #expect(failure?.kind == .transport)
        }
    }

    @Test("A stream that stalls below the low-speed limit ends with a timeout from the iterator")
    func streamLowSpeedTimeout() async throws {
        try await RawTestServer.withServer { server in
            let client = try Self.client()
            let options = StreamOptions(lowSpeedLimit: LowSpeedLimit(bytesPerSecond: 100, duration: .seconds(1)))
            let (received, failure) = try await client.stream(
                url: "http://127.0.0.1:\(server.port)/stall?bytes=50",
                headers: [],
                options: options
            ) { _, body -> (Int, CurlError?) in
                var received = 0
                do throws(CurlError) {
                    for try await chunk in body { received += chunk.count }
                } catch {
                    return (received, error)
                }
                return (received, nil)
            }
            #expect(received == 50)
            #expect(failure?.kind == .timeout)
        }
    }

    @Test("A stream's total timeout before any response is thrown by stream itself as a timeout")
    func streamTotalTimeout() async throws {
        try await RawTestServer.withServer { server in
            let client = try Self.client()
            let consumed = Counter()
            await #expect {
                try await client.stream(
                    url: "http://127.0.0.1:\(server.port)/hang",
                    headers: [],
                    options: StreamOptions(totalTimeout: .milliseconds(300), lowSpeedLimit: nil)
                ) { _, _ in consumed.increment() }
            } throws: { error in
                (error as? CurlError)?.kind == .timeout
            }
            #expect(consumed.current == 0)
        }
    }

    @Test("A consumer that stops early or throws aborts the transfer and closes its connection")
    func consumerStopsEarly() async throws {
        try await RawTestServer.withServer { server in
            let client = try Self.client()
            let url = "http://127.0.0.1:\(server.port)/generate?bytes=500000000"
            let firstChunk = try await client.stream(url: url, headers: []) { _, body in
                var iterator = body.makeAsyncIterator()
                return try await iterator.next()?.count ?? 0
            }
            #expect(firstChunk > 0)
            #expect(try await eventually { client.stats.activeTransfers == 0 && server.stats.connectionsClosed == 1 })

            await #expect(throws: ConsumerGaveUp.self) {
                try await client.stream(url: url, headers: []) { _, _ in throw ConsumerGaveUp() }
            }
            #expect(try await eventually { client.stats.activeTransfers == 0 && server.stats.connectionsClosed == 2 })
            #expect(server.stats.completedBodies == 0)
        }
    }

    @Test("Cancelling the task of a consumer waiting for body bytes throws cancelled from the iterator")
    func streamCancellation() async throws {
        try await RawTestServer.withServer { server in
            let client = try Self.client()
            let gotHead = Counter()
            let task = Task {
                try await client.stream(url: "http://127.0.0.1:\(server.port)/stall?bytes=1000", headers: []) { _, body in
                    gotHead.increment()
                    var received = 0
                    for try await chunk in body { received += chunk.count }
                    return received
                }
            }
            #expect(try await eventually { gotHead.current == 1 })
            task.cancel()
            let result = await task.result
            guard case .failure(let error) = result else {
                Issue.record("expected cancellation")
                return
            }
            #expect((error as? CurlError)?.kind == .cancelled)
            #expect(try await eventually { client.stats.activeTransfers == 0 })
        }
    }

    @Test("A stream that cannot connect throws from stream before consuming anything")
    func streamRefused() async throws {
        let client = try Self.client()
        let consumed = Counter()
        await #expect {
            try await client.stream(url: "http://127.0.0.1:1/", headers: []) { _, _ in consumed.increment() }
        } throws: { error in
            (error as? CurlError)?.kind == .transport
        }
        #expect(consumed.current == 0)
    }

    @Test("A streamed response's head carries status and headers, and an empty body ends at once")
    func streamSmallResponses() async throws {
        try await CurlClientTests.withServer { port in
            let client = try Self.client()
            let (status, multi, text) = try await client.stream(url: "http://127.0.0.1:\(port)/echo-headers", headers: [("x-api-key", "k1")]) { head, body in
                var bytes: [UInt8] = []
                for try await chunk in body { bytes += chunk }
                return (head.status, head.headers.filter { $0.name == "x-multi" }.map(\.value), String(decoding: bytes, as: UTF8.self))
            }
            #expect(status == 200)
            #expect(multi == ["one", "two"])
            #expect(text.contains("x-api-key=k1"))
            let (teapot, teapotBody) = try await client.stream(url: "http://127.0.0.1:\(port)/teapot", headers: []) { head, body in
                var bytes: [UInt8] = []
                for try await chunk in body { bytes += chunk }
                return (head.status, bytes)
            }
            #expect(teapot == 418)
            #expect(teapotBody == Array("short and stout".utf8))
        }
    }

    @Test("A streamed body over its optional bound ends as bodyTooLarge")
    func streamBodyTooLarge() async throws {
        try await RawTestServer.withServer { server in
            let client = try Self.client()
            let failure = try await client.stream(
                url: "http://127.0.0.1:\(server.port)/generate?bytes=5000000",
                headers: [],
                options: StreamOptions(maxBodyBytes: 1_000_000)
            ) { _, body -> CurlError? in
                do throws(CurlError) {
                    for try await _ in body {}
                } catch {
                    return error
                }
                return nil
            }
            #expect(failure?.kind == .bodyTooLarge)
        }
    }
}

extension CurlEngineTests {
    @Test("A released client's handles and connection cache are cleaned up, also right after an aborted stream")
    func clientRelease() async throws {
        try await RawTestServer.withServer { server in
            let live = { CurlEngineDiagnostics.liveClientSlots.load(ordering: .relaxed) }
            let before = live()
            do {
                let client = try Self.client()
                #expect(try await client.get(url: "http://127.0.0.1:\(server.port)/ok", headers: []).status == 200)
                #expect(live() >= before + 1)
            }
            #expect(try await eventually { live() <= before })

            do {
                // Released right after its stream was aborted: the abort and the release reach
                // the engine thread back to back.
                let client = try Self.client()
                let first = try await client.stream(url: "http://127.0.0.1:\(server.port)/generate?bytes=100000000", headers: []) { _, body in
                    var iterator = body.makeAsyncIterator()
                    return try await iterator.next()?.count ?? 0
                }
                #expect(first > 0)
            }
            #expect(try await eventually { live() <= before })
            // The engine goes on serving new clients.
            let fresh = try Self.client()
            #expect(try await fresh.get(url: "http://127.0.0.1:\(server.port)/ok", headers: []).status == 200)
        }
    }
}
