import BatchesSimulator
import Foundation
import HTTPServing
import NIOCore
import Testing

/// Totals found by parsing a results file with Foundation, independently of the generator.
struct ParsedResults {
    var lines: [String: Int] = [:]
    var erroredByType: [String: Int] = [:]
    var tokens: [String: [String: Int]] = [:]
    var stopReasons: [String: [String: Int]] = [:]
    var webSearchRequests: [String: Int] = [:]
    var bytes = 0
    var customIDs: [String] = []
    var endsWithNewline = true
    /// Which shapes of the usage fields were seen: "absent", "null" or "int"/"object".
    var cacheFieldShapes: Set<String> = []
    var unknownFields = 0
    var maxLineBytes = 0
    var models: Set<String> = []

    static func parse(_ bytes: [UInt8]) throws -> ParsedResults {
        var parsed = ParsedResults()
        parsed.bytes = bytes.count
        parsed.endsWithNewline = bytes.last == 0x0A
        for line in bytes.split(separator: 0x0A, omittingEmptySubsequences: true) {
            parsed.maxLineBytes = max(parsed.maxLineBytes, line.count)
            let object = try #require(
                try JSONSerialization.jsonObject(with: Data(line)) as? [String: Any], "a line is not an object")
            try parsed.add(object)
        }
        return parsed
    }

    private static func int(_ value: Any?) -> Int {
        (value as? NSNumber)?.intValue ?? 0
    }

    private mutating func shape(_ name: String, _ value: Any?, present: Bool) {
        cacheFieldShapes.insert("\(name):\(!present ? "absent" : value is NSNull ? "null" : "value")")
    }

    mutating func add(_ object: [String: Any]) throws {
        let customID = try #require(object["custom_id"] as? String)
        customIDs.append(customID)
        if object.keys.contains(where: { !["custom_id", "result"].contains($0) }) { unknownFields += 1 }
        let result = try #require(object["result"] as? [String: Any])
        let type = try #require(result["type"] as? String)
        lines[type, default: 0] += 1
        switch type {
        case "succeeded":
            let message = try #require(result["message"] as? [String: Any])
            #expect(message["type"] as? String == "message" && message["role"] as? String == "assistant")
            #expect((message["id"] as? String)?.hasPrefix("msg_") == true)
            let content = try #require(message["content"] as? [[String: Any]])
            #expect(content.first?["type"] as? String == "text" && content.first?["text"] is String)
            let model = try #require(message["model"] as? String)
            models.insert(model)
            let stopReason = try #require(message["stop_reason"] as? String)
            #expect(message.keys.contains("stop_sequence"))
            stopReasons[model, default: [:]][stopReason, default: 0] += 1
            let usage = try #require(message["usage"] as? [String: Any])
            var modelTokens = tokens[model, default: [:]]
            modelTokens["input", default: 0] += Self.int(usage["input_tokens"])
            modelTokens["output", default: 0] += Self.int(usage["output_tokens"])
            modelTokens["cache_read", default: 0] += Self.int(usage["cache_read_input_tokens"])
            if let breakdown = usage["cache_creation"] as? [String: Any] {
                modelTokens["cache_write_5m", default: 0] += Self.int(breakdown["ephemeral_5m_input_tokens"])
                modelTokens["cache_write_1h", default: 0] += Self.int(breakdown["ephemeral_1h_input_tokens"])
            } else {
                modelTokens["cache_write_5m", default: 0] += Self.int(usage["cache_creation_input_tokens"])
                modelTokens["cache_write_1h", default: 0] += 0
            }
            tokens[model] = modelTokens
            for name in ["cache_creation_input_tokens", "cache_read_input_tokens", "cache_creation", "server_tool_use"] {
                shape(name, usage[name], present: usage.keys.contains(name))
            }
            let toolUse = usage["server_tool_use"] as? [String: Any]
            webSearchRequests[model, default: 0] += Self.int(toolUse?["web_search_requests"])
            let known: Set = [
                "input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens",
                "cache_creation", "server_tool_use", "service_tier",
            ]
            if usage.keys.contains(where: { !known.contains($0) }) { unknownFields += 1 }
        case "errored":
            let error = try #require(result["error"] as? [String: Any])
            #expect(error["type"] as? String == "error")
            let inner = try #require(error["error"] as? [String: Any])
            erroredByType[try #require(inner["type"] as? String), default: 0] += 1
        default:
            #expect(["canceled", "expired"].contains(type), "unexpected result type \(type)")
        }
    }

    /// Whether these totals are exactly the ground truth's (which leaves out the zero
    /// categories the parser cannot tell apart from missing ones).
    func matches(_ truth: [String: Any]) -> Bool {
        func ints(_ value: Any?) -> [String: Int] {
            ((value as? [String: Any]) ?? [:]).mapValues { ($0 as? NSNumber)?.intValue ?? -1 }
        }
        func nested(_ value: Any?) -> [String: [String: Int]] {
            ((value as? [String: Any]) ?? [:]).mapValues { ints($0) }
        }
        return ints(truth["lines"]) == lines && ints(truth["errored_by_type"]) == erroredByType
            && nested(truth["tokens"]) == tokens && nested(truth["stop_reasons"]) == stopReasons
            && ints(truth["web_search_requests"]) == webSearchRequests
            && (truth["bytes"] as? NSNumber)?.intValue == bytes
    }
}

func resultsPath(_ id: String) -> String { "/v1/messages/batches/\(id)/results" }

@Suite("Results endpoint")
struct ResultsTests {
    /// Ended batches of every kind: seeded history, plus explicit mixes with canceled and
    /// expired requests.
    static func workspaceWithEndedBatches() throws -> (SimulatedWorkspace, SimulatorResponder, [String]) {
        let workspace = makeWorkspace(batches: 40, active: 3)
        let responder = SimulatorResponder(workspace: workspace)
        var ids = try workspace.createBatches(
            BatchSpec(count: 3, status: .ended, counts: RequestCounts(succeeded: 700, errored: 90, canceled: 60, expired: 50)))
        ids += try workspace.createBatches(BatchSpec(count: 2, status: .ended, counts: RequestCounts(errored: 1)))
        ids += try workspace.createBatches(BatchSpec(count: 2, status: .ended, counts: RequestCounts(succeeded: 1)))
        ids += try workspace.createBatches(BatchSpec(count: 5, requests: 300, status: .ended))
        let seeded = workspace.allBatches().filter {
            $0.processingStatus == .ended && $0.archivedAt == nil && $0.size <= 3000
        }
        return (workspace, responder, ids + seeded.map(\.id))
    }

    @Test("every ended batch's results have one line per request, adding up to its request_counts")
    func linesAddUpToCounts() throws {
        let (workspace, responder, ids) = try Self.workspaceWithEndedBatches()
        #expect(ids.count >= 15)
        for id in ids {
            let batch = try #require(workspace.batch(id: id))
            let reply = responder.send(resultsPath(id))
            try #require(reply.status == 200, "\(reply.text)")
            let parsed = try ParsedResults.parse(reply.bytes)
            let counts = batch.requestCounts
            #expect(parsed.lines["succeeded", default: 0] == counts.succeeded)
            #expect(parsed.lines["errored", default: 0] == counts.errored)
            #expect(parsed.lines["canceled", default: 0] == counts.canceled)
            #expect(parsed.lines["expired", default: 0] == counts.expired)
            #expect(parsed.customIDs.count == batch.size)
            #expect(Set(parsed.customIDs).count == batch.size, "custom_id values repeat")
        }
    }

    @Test("the ground truth equals what parsing every served file gives, per batch and in total")
    func truthMatchesParsedFiles() throws {
        let (workspace, responder, _) = try Self.workspaceWithEndedBatches()
        var total = ParsedResults()
        var downloadable = 0
        for batch in workspace.allBatches() where batch.processingStatus == .ended && batch.archivedAt == nil {
            downloadable += 1
            let reply = responder.send(resultsPath(batch.id))
            try #require(reply.status == 200)
            let parsed = try ParsedResults.parse(reply.bytes)
            let truth = try responder.send("/_sim/results-truth?batch_id=\(batch.id)").json()
            #expect(parsed.matches(truth), "batch \(batch.id): parsed \(parsed) vs truth \(truth)")
            #expect((truth["batches"] as? Int) == 1)
            total.bytes += parsed.bytes
            for (key, value) in parsed.lines { total.lines[key, default: 0] += value }
            for (key, value) in parsed.erroredByType { total.erroredByType[key, default: 0] += value }
            for (model, values) in parsed.tokens {
                for (key, value) in values { total.tokens[model, default: [:]][key, default: 0] += value }
            }
            for (model, values) in parsed.stopReasons {
                for (key, value) in values { total.stopReasons[model, default: [:]][key, default: 0] += value }
            }
            for (key, value) in parsed.webSearchRequests { total.webSearchRequests[key, default: 0] += value }
        }
        let truth = try responder.send("/_sim/results-truth").json()
        #expect(truth["batches"] as? Int == downloadable)
        #expect(total.matches(truth), "parsed \(total) vs truth \(truth)")
    }

    @Test("results vary the way real ones do: models, stop reasons, error types, cache fields, extras")
    func variety() throws {
        let workspace = makeWorkspace()
        let responder = SimulatorResponder(workspace: workspace)
        let id = try #require(
            try workspace.createBatches(
                BatchSpec(status: .ended, counts: RequestCounts(succeeded: 4000, errored: 600, canceled: 5, expired: 5))
            ).first)
        let reply = responder.send(resultsPath(id))
        #expect(reply.status == 200)
        let parsed = try ParsedResults.parse(reply.bytes)
        #expect(
            parsed.models == [
                "claude-sonnet-4-5-20250929", "claude-opus-4-1-20250805", "claude-haiku-4-5-20251001",
                "claude-3-5-haiku-20241022",
            ])
        let reasons = Set(parsed.stopReasons.values.flatMap(\.keys))
        #expect(
            reasons == [
                "end_turn", "max_tokens", "stop_sequence", "tool_use", "pause_turn", "refusal",
                "model_context_window_exceeded",
            ])
        #expect(parsed.erroredByType.keys.contains("quota_exceeded_error"))
        #expect(parsed.erroredByType.keys.contains("invalid_request_error"))
        #expect(parsed.erroredByType.count >= 8)
        for field in ["cache_creation_input_tokens", "cache_read_input_tokens", "cache_creation", "server_tool_use"] {
            for shape in ["absent", "null", "value"] {
                #expect(parsed.cacheFieldShapes.contains("\(field):\(shape)"), "\(field) never \(shape)")
            }
        }
        #expect(parsed.unknownFields > 0)
        let tokens = parsed.tokens.values.reduce(into: [String: Int]()) { $0.merge($1, uniquingKeysWith: +) }
        #expect(tokens["cache_write_5m", default: 0] > 0 && tokens["cache_write_1h", default: 0] > 0)
        #expect(tokens["cache_read", default: 0] > 0)
        #expect(parsed.webSearchRequests.values.reduce(0, +) > 0)
    }

    @Test("some files end without a trailing newline, most with one; lines are complete either way")
    func trailingNewline() throws {
        let workspace = makeWorkspace()
        let responder = SimulatorResponder(workspace: workspace)
        let ids = try workspace.createBatches(BatchSpec(count: 40, requests: 3, status: .ended))
        var endings: [Bool] = []
        for id in ids {
            let reply = responder.send(resultsPath(id))
            let parsed = try ParsedResults.parse(reply.bytes)
            #expect(parsed.customIDs.count == 3)
            endings.append(parsed.endsWithNewline)
        }
        #expect(endings.contains(true) && endings.contains(false))
    }

    @Test("a results download is JSON Lines, an attachment, streamed, and the same bytes every time")
    func headersAndDeterminism() throws {
        let workspace = makeWorkspace()
        let responder = SimulatorResponder(workspace: workspace)
        let ids = try workspace.createBatches(BatchSpec(count: 2, requests: 2000, status: .ended))
        let first = responder.send(resultsPath(ids[0]))
        #expect(first.status == 200)
        #expect(first.header("Content-Type") == "application/x-jsonl")
        #expect(first.header("Content-Disposition")?.hasPrefix("attachment") == true)
        #expect(first.header("request-id")?.hasPrefix("req_") == true)
        #expect(first.response.stream != nil && first.response.body.readableBytes == 0)
        #expect(first.pieces > 1, "a 2,000-line file should come in several pieces")
        #expect(responder.send(resultsPath(ids[0])).bytes == first.bytes)
        #expect(responder.send(resultsPath(ids[1])).bytes != first.bytes)
        #expect(workspace.renderedResults(batchID: ids[0]) == first.bytes)
        // Another workspace with the same seed serves the same file for the same batch.
        let twin = makeWorkspace()
        let twinIDs = try twin.createBatches(BatchSpec(count: 2, requests: 2000, status: .ended))
        #expect(twinIDs == ids)
        #expect(twin.renderedResults(batchID: ids[0]) == first.bytes)
    }

    @Test("results are 404 for unknown, unfinished and archived batches, and need the key")
    func unavailable() throws {
        let workspace = makeWorkspace()
        let responder = SimulatorResponder(workspace: workspace)
        let running = try #require(workspace.createBatches(BatchSpec(requests: 5)).first)
        let canceling = try #require(workspace.createBatches(BatchSpec(requests: 5, status: .canceling)).first)
        let archived = try #require(
            workspace.createBatches(BatchSpec(requests: 5, status: .ended, ageSeconds: 30 * 86_400)).first)
        let ended = try #require(workspace.createBatches(BatchSpec(requests: 5, status: .ended)).first)
        for id in [running, canceling, archived, "msgbatch_nope"] {
            try expectAnthropicError(responder.send(resultsPath(id)), status: 404, type: "not_found_error")
        }
        try expectAnthropicError(
            responder.send(resultsPath(ended), headers: [("anthropic-version", "2023-06-01")]), status: 401,
            type: "authentication_error")
        #expect(responder.send(resultsPath(ended)).status == 200)
        let bearer = [("authorization", "Bearer \(testKey)"), ("anthropic-version", "2023-06-01")]
        #expect(responder.send(resultsPath(ended), headers: bearer).status == 200)
        // Once it ends, the same batch serves its results.
        try workspace.endBatch(id: running)
        #expect(responder.send(resultsPath(running)).status == 200)
    }

    @Test("every results request is in the request log with its path")
    func requestLog() throws {
        let workspace = makeWorkspace()
        let responder = SimulatorResponder(workspace: workspace)
        let id = try #require(workspace.createBatches(BatchSpec(requests: 5, status: .ended)).first)
        _ = responder.send(resultsPath(id))
        _ = responder.send(resultsPath("msgbatch_missing"))
        let log = try #require(try responder.send("/_sim/requests").json()["requests"] as? [[String: Any]])
        #expect(log.map { $0["path"] as? String } == [resultsPath(id), resultsPath("msgbatch_missing")])
        #expect(log.map { $0["status"] as? Int } == [200, 404])
    }

    @Test("results_url is absolute under the base URL once a batch ends, null before, and can point elsewhere")
    func resultsURL() throws {
        let workspace = makeWorkspace()
        workspace.resultsBaseURL = "http://127.0.0.1:4321"
        let responder = SimulatorResponder(workspace: workspace)
        let running = try #require(workspace.createBatches(BatchSpec(requests: 5)).first)
        let ended = try #require(workspace.createBatches(BatchSpec(requests: 5, status: .ended)).first)
        #expect(try responder.send("/v1/messages/batches/\(running)").json()["results_url"] is NSNull)
        let url = try responder.send("/v1/messages/batches/\(ended)").json()["results_url"] as? String
        #expect(url == "http://127.0.0.1:4321/v1/messages/batches/\(ended)/results")

        let moved = try responder.send(
            "/_sim/batches/\(ended)/results?base_url=http%3A%2F%2F127.0.0.2%3A9999", method: "POST"
        ).json()
        let elsewhere = "http://127.0.0.2:9999/v1/messages/batches/\(ended)/results"
        #expect(moved["results_url"] as? String == elsewhere)
        #expect(try responder.send("/v1/messages/batches/\(ended)").json()["results_url"] as? String == elsewhere)
        let listed = try responder.send("/v1/messages/batches").json()["data"] as? [[String: Any]]
        #expect(listed?.first { $0["id"] as? String == ended }?["results_url"] as? String == elsewhere)

        #expect(responder.send("/_sim/batches/\(ended)/results", method: "DELETE").status == 200)
        #expect(try responder.send("/v1/messages/batches/\(ended)").json()["results_url"] as? String == url)
        try workspace.endBatch(id: running)
        #expect(workspace.batch(id: running)?.resultsURL == "http://127.0.0.1:4321/v1/messages/batches/\(running)/results")
    }

    @Test("long-line mode puts megabytes of text on some lines, and the truth still matches")
    func longLines() throws {
        let workspace = makeWorkspace()
        let responder = SimulatorResponder(workspace: workspace)
        let id = try #require(
            workspace.createBatches(BatchSpec(status: .ended, counts: RequestCounts(succeeded: 60, errored: 4))).first)
        let set = responder.send(
            "/_sim/batches/\(id)/results?long_line_bytes=3000000&long_line_every=20", method: "POST")
        #expect(set.status == 200, "\(set.text)")
        let reply = responder.send(resultsPath(id))
        let parsed = try ParsedResults.parse(reply.bytes)
        #expect(parsed.maxLineBytes > 3_000_000)
        #expect(parsed.customIDs.count == 64)
        let truth = try responder.send("/_sim/results-truth?batch_id=\(id)").json()
        #expect(parsed.matches(truth))
    }

    @Test("large-file mode sizes every succeeded line, so 100,000 requests of 10 KiB pass 1 GB")
    func largeFileMode() throws {
        let workspace = makeWorkspace()
        let responder = SimulatorResponder(workspace: workspace)
        let id = try #require(
            workspace.createBatches(BatchSpec(status: .ended, counts: RequestCounts(succeeded: 400, errored: 20))).first)
        #expect(responder.send("/_sim/batches/\(id)/results?text_bytes=10240", method: "POST").status == 200)
        let reply = responder.send(resultsPath(id))
        let parsed = try ParsedResults.parse(reply.bytes)
        #expect(parsed.customIDs.count == 420)
        #expect(reply.bytes.count > 400 * 10_240 && reply.bytes.count < 400 * 12_000)
        // Pieces of about 64 KiB (plus at most one line): never the whole file at once.
        #expect(reply.pieces >= reply.bytes.count / (65_536 + 12_000), "large files must stream in pieces")
        #expect(parsed.matches(try responder.send("/_sim/results-truth?batch_id=\(id)").json()))
        // The per-line size is fixed, so a 100,000-request batch in this mode holds over 1 GB.
        let perLine = reply.bytes.count / 420
        #expect(perLine * 100_000 >= 1_000_000_000)
    }

    @Test("the results truth refuses an unknown batch and counts only downloadable ones")
    func truthScope() throws {
        let workspace = makeWorkspace()
        let responder = SimulatorResponder(workspace: workspace)
        try workspace.createBatches(BatchSpec(requests: 5))
        let ended = try #require(workspace.createBatches(BatchSpec(status: .ended, counts: RequestCounts(succeeded: 3))).first)
        try expectAnthropicError(
            responder.send("/_sim/results-truth?batch_id=msgbatch_nope"), status: 404, type: "not_found_error")
        let truth = try responder.send("/_sim/results-truth").json()
        #expect(truth["batches"] as? Int == 1)
        #expect(truth["lines"] as? [String: Int] == ["succeeded": 3])
        #expect(try responder.send("/_sim/results-truth?batch_id=\(ended)").json()["lines"] as? [String: Int] == ["succeeded": 3])
    }
}

@Suite("Results faults")
struct ResultsFaultTests {
    static func setUp() throws -> (SimulatedWorkspace, SimulatorResponder, String) {
        let workspace = makeWorkspace()
        let id = try #require(
            try workspace.createBatches(BatchSpec(status: .ended, counts: RequestCounts(succeeded: 900, errored: 100))).first)
        return (workspace, SimulatorResponder(workspace: workspace), id)
    }

    @Test("not_found answers 404 once, then the file is served")
    func notFoundOnce() throws {
        let (_, responder, id) = try Self.setUp()
        #expect(responder.send("/_sim/results-faults?kind=not_found", method: "POST").status == 200)
        try expectAnthropicError(responder.send(resultsPath(id)), status: 404, type: "not_found_error")
        #expect(responder.send(resultsPath(id)).status == 200)
        let log = try #require(try responder.send("/_sim/requests").json()["requests"] as? [[String: Any]])
        #expect(log.map { $0["fault"] as? String } == ["not_found", nil])
    }

    @Test("cut sends exactly the first N bytes of the real file, then drops the connection")
    func cut() throws {
        let (workspace, responder, id) = try Self.setUp()
        let full = try #require(workspace.renderedResults(batchID: id))
        #expect(responder.send("/_sim/results-faults?kind=cut&after_bytes=50000", method: "POST").status == 200)
        let reply = responder.send(resultsPath(id))
        #expect(reply.status == 200)
        #expect(reply.aborted)
        #expect(reply.bytes == Array(full.prefix(50_000)))
        let whole = responder.send(resultsPath(id))
        #expect(!whole.aborted && whole.bytes == full)
    }

    @Test("a cut beyond the end of the file still withholds the end of the stream")
    func cutPastTheEnd() throws {
        let (workspace, responder, id) = try Self.setUp()
        let full = try #require(workspace.renderedResults(batchID: id))
        workspace.enqueueResultsFault(.cut(afterBytes: full.count + 10))
        let reply = responder.send(resultsPath(id))
        #expect(reply.aborted && reply.bytes == full)
    }

    @Test("slow streams in small pieces with a pause between them")
    func slow() throws {
        let (workspace, responder, id) = try Self.setUp()
        let full = try #require(workspace.renderedResults(batchID: id))
        #expect(
            responder.send("/_sim/results-faults?kind=slow&delay_ms=25&piece_bytes=4096", method: "POST").status == 200)
        let reply = responder.send(resultsPath(id))
        #expect(WireFault(markedOn: reply.response) == .pauseBetweenBodyParts(.milliseconds(25)))
        #expect(reply.pieces >= full.count / 8192)
        #expect(reply.bytes == full)
    }

    @Test("results faults queue apart from list faults and are taken only by results requests")
    func separateQueue() throws {
        let (workspace, responder, id) = try Self.setUp()
        workspace.enqueueResultsFault(.notFound, count: 2)
        #expect(responder.send("/v1/messages/batches").status == 200)
        #expect(responder.send("/v1/messages/batches/\(id)").status == 200)
        #expect(workspace.pendingResultsFaults == [.notFound, .notFound])
        let listed = try responder.send("/_sim/results-faults").json()
        #expect(listed["kinds"] as? [String] == ["not_found", "not_found"])
        #expect(responder.send("/_sim/results-faults", method: "DELETE").status == 200)
        #expect(workspace.pendingResultsFaults.isEmpty)
        try expectAnthropicError(
            responder.send("/_sim/results-faults?kind=bogus", method: "POST"), status: 400, type: "invalid_request_error")
    }
}
