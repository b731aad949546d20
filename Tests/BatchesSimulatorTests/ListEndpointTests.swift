import BatchesSimulator
import Foundation
import RFC3339
import Testing

@Suite("GET /v1/messages/batches")
struct ListEndpointTests {
    static let workspace = makeWorkspace(batches: 2_345, active: 17)

    @Test("paging with after_id = last_id yields every batch exactly once, newest first", arguments: [1000, 20, 7, 1])
    func pagingYieldsEveryBatchOnce(limit: Int) throws {
        let workspace = Self.workspace
        let responder = SimulatorResponder(workspace: workspace)
        let (ids, pages, objects) = try responder.listAll(limit: limit)

        let expected = workspace.allBatches().map(\.id)
        #expect(ids == expected)
        #expect(Set(ids).count == 2_345)
        #expect(pages == (2_345 + limit - 1) / limit)
        let created = objects.compactMap { ($0["created_at"] as? String).flatMap(RFC3339.parse) }
        #expect(created.count == ids.count)
        #expect(zip(created, created.dropFirst()).allSatisfy { $0 >= $1 }, "created_at must not increase down the list")
    }

    @Test("the default page holds 20 batches")
    func defaultLimitIsTwenty() throws {
        let reply = SimulatorResponder(workspace: Self.workspace).send("/v1/messages/batches")
        let body = try reply.json()
        #expect((body["data"] as? [Any])?.count == 20)
        #expect(body["has_more"] as? Bool == true)
    }

    @Test("each batch object has exactly the ten documented keys")
    func batchObjectHasTenKeys() throws {
        let reply = SimulatorResponder(workspace: Self.workspace).send("/v1/messages/batches?limit=1000")
        let data = try #require(try reply.json()["data"] as? [[String: Any]])
        let keys: Set = [
            "id", "type", "processing_status", "request_counts", "created_at", "expires_at", "ended_at",
            "cancel_initiated_at", "archived_at", "results_url",
        ]
        for object in data {
            #expect(Set(object.keys) == keys)
            #expect(object["type"] as? String == "message_batch")
            let counts = counts(object)
            #expect(Set(counts.keys) == ["processing", "succeeded", "errored", "canceled", "expired"])
            let created = try #require((object["created_at"] as? String).flatMap(RFC3339.parse))
            let expires = try #require((object["expires_at"] as? String).flatMap(RFC3339.parse))
            #expect(abs(expires - created - 86_400) < 0.001)
        }
    }

    @Test("the active batches are the newest ones and have all requests processing")
    func activeBatchesAreNewest() throws {
        let reply = SimulatorResponder(workspace: Self.workspace).send("/v1/messages/batches?limit=30")
        let data = try #require(try reply.json()["data"] as? [[String: Any]])
        for (index, object) in data.enumerated() {
            let status = object["processing_status"] as? String
            let counts = counts(object)
            if index < 17 {
                #expect(status == "in_progress")
                #expect(counts["processing"]! > 0 && counts["processing"] == counts.values.reduce(0, +))
                #expect(object["ended_at"] is NSNull && object["results_url"] is NSNull)
            } else {
                #expect(status == "ended")
                #expect(counts["processing"] == 0)
                let id = try #require(object["id"] as? String)
                #expect(
                    object["results_url"] as? String == "https://api.anthropic.com/v1/messages/batches/\(id)/results")
            }
        }
    }

    @Test("list responses carry application/json, a request-id and the organization header")
    func listResponseHeaders() {
        let reply = SimulatorResponder(workspace: Self.workspace).send("/v1/messages/batches?limit=2")
        #expect(reply.status == 200)
        #expect(reply.header("content-type") == "application/json")
        #expect(reply.header("request-id")?.hasPrefix("req_") == true)
        #expect(reply.header("anthropic-organization-id")?.count == 36)
    }

    @Test("before_id = first_id walks back towards newer batches")
    func beforeIDWalksToNewer() throws {
        let responder = SimulatorResponder(workspace: Self.workspace)
        let all = Self.workspace.allBatches().map(\.id)
        let page = try responder.send("/v1/messages/batches?limit=5&before_id=\(all[12])").json()
        #expect((page["data"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == Array(all[7..<12]))
        #expect(page["first_id"] as? String == all[7])
        #expect(page["last_id"] as? String == all[11])
        #expect(page["has_more"] as? Bool == true)

        let top = try responder.send("/v1/messages/batches?limit=20&before_id=\(all[3])").json()
        #expect((top["data"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == Array(all[0..<3]))
        #expect(top["has_more"] as? Bool == false)
    }

    @Test("after_id on the oldest batch gives an empty page with null ids")
    func emptyPageShape() throws {
        let oldest = try #require(Self.workspace.allBatches().last?.id)
        let body = try SimulatorResponder(workspace: Self.workspace).send("/v1/messages/batches?after_id=\(oldest)")
            .json()
        #expect((body["data"] as? [Any])?.isEmpty == true)
        #expect(body["has_more"] as? Bool == false)
        #expect(body["first_id"] is NSNull)
        #expect(body["last_id"] is NSNull)
    }

    @Test("an empty workspace lists as one empty page")
    func emptyWorkspace() throws {
        let body = try SimulatorResponder(workspace: makeWorkspace()).send("/v1/messages/batches").json()
        #expect((body["data"] as? [Any])?.isEmpty == true)
        #expect(body["has_more"] as? Bool == false)
        #expect(body["first_id"] is NSNull && body["last_id"] is NSNull)
    }

    @Test(
        "a limit outside 1...1000 or not an integer is a 400 invalid_request_error",
        arguments: ["0", "1001", "abc", "", "-5", "1.5", "99999999999999999999"])
    func invalidLimit(limit: String) throws {
        let reply = SimulatorResponder(workspace: Self.workspace).send("/v1/messages/batches?limit=\(limit)")
        try expectAnthropicError(reply, status: 400, type: "invalid_request_error")
    }

    @Test("limits at both ends of the range are accepted", arguments: [1, 1000])
    func boundaryLimits(limit: Int) throws {
        let body = try SimulatorResponder(workspace: Self.workspace).send("/v1/messages/batches?limit=\(limit)").json()
        #expect((body["data"] as? [Any])?.count == limit)
    }

    @Test("after_id and before_id together are a 400")
    func bothCursors() throws {
        let ids = Self.workspace.allBatches().prefix(2).map(\.id)
        let reply = SimulatorResponder(workspace: Self.workspace).send(
            "/v1/messages/batches?after_id=\(ids[0])&before_id=\(ids[1])"
        )
        try expectAnthropicError(reply, status: 400, type: "invalid_request_error")
    }

    @Test(
        "a cursor naming no batch is a 400 (the real API's answer is unconfirmed)",
        arguments: ["after_id", "before_id"])
    func unknownCursor(parameter: String) throws {
        let reply = SimulatorResponder(workspace: Self.workspace).send(
            "/v1/messages/batches?\(parameter)=msgbatch_doesnotexist000000000"
        )
        try expectAnthropicError(reply, status: 400, type: "invalid_request_error")
    }

    @Test("a cursor with quotes and control characters comes back as valid JSON")
    func errorMessagesAreEscaped() throws {
        let reply = SimulatorResponder(workspace: Self.workspace).send(
            "/v1/messages/batches?after_id=a%22b%5C%0A%01%E2%9C%93")
        let error = try expectAnthropicError(reply, status: 400, type: "invalid_request_error")
        #expect((error["message"] as? String)?.contains("a\"b\\\n\u{1}✓") == true)
    }

    @Test("a wrong key is a 401 authentication_error")
    func wrongKey() throws {
        let reply = SimulatorResponder(workspace: Self.workspace).send(
            "/v1/messages/batches", headers: [("x-api-key", "sk-ant-wrong"), ("anthropic-version", "2023-06-01")]
        )
        try expectAnthropicError(reply, status: 401, type: "authentication_error")
    }

    @Test("no key at all is a 401 authentication_error")
    func missingKey() throws {
        let reply = SimulatorResponder(workspace: Self.workspace).send(
            "/v1/messages/batches", headers: [("anthropic-version", "2023-06-01")]
        )
        try expectAnthropicError(reply, status: 401, type: "authentication_error")
    }

    @Test("Authorization: Bearer with the key is accepted, with a wrong key refused")
    func bearerAuthorization() throws {
        let responder = SimulatorResponder(workspace: Self.workspace)
        let good = responder.send(
            "/v1/messages/batches",
            headers: [("Authorization", "Bearer \(testKey)"), ("anthropic-version", "2026-10-21")]
        )
        #expect(good.status == 200)
        let bad = responder.send(
            "/v1/messages/batches", headers: [("Authorization", "Bearer nope"), ("anthropic-version", "2026-10-21")]
        )
        try expectAnthropicError(bad, status: 401, type: "authentication_error")
    }

    @Test("header names match case-insensitively")
    func headerCase() {
        let reply = SimulatorResponder(workspace: Self.workspace).send(
            "/v1/messages/batches", headers: [("X-Api-Key", testKey), ("Anthropic-Version", "2023-06-01")]
        )
        #expect(reply.status == 200)
    }

    @Test("a missing anthropic-version header is a 400")
    func missingVersion() throws {
        let reply = SimulatorResponder(workspace: Self.workspace).send(
            "/v1/messages/batches", headers: [("x-api-key", testKey)]
        )
        try expectAnthropicError(reply, status: 400, type: "invalid_request_error")
    }

    @Test("other methods on the list are a 405")
    func wrongMethod() throws {
        let reply = SimulatorResponder(workspace: Self.workspace).send("/v1/messages/batches", method: "POST")
        try expectAnthropicError(reply, status: 405, type: "invalid_request_error")
        #expect(reply.header("allow") == "GET")
    }

    @Test(
        "unknown paths are a 404 in the API's error shape",
        arguments: ["/v1/messages", "/v1/nope/batches", "/", "/metrics"])
    func unknownPath(path: String) throws {
        let reply = SimulatorResponder(workspace: Self.workspace).send(path)
        try expectAnthropicError(reply, status: 404, type: "not_found_error")
    }

    @Test("a batch can be retrieved by id, and an unknown id is a 404")
    func retrieve() throws {
        let responder = SimulatorResponder(workspace: Self.workspace)
        let batch = try #require(Self.workspace.allBatches().dropFirst(40).first)
        let body = try responder.send("/v1/messages/batches/\(batch.id)").json()
        #expect(body["id"] as? String == batch.id)
        #expect(counts(body)["succeeded"] == batch.requestCounts.succeeded)

        let missing = responder.send("/v1/messages/batches/msgbatch_nope")
        try expectAnthropicError(missing, status: 404, type: "not_found_error")
    }

    @Test("a page-size cap serves fewer batches than asked for, and paging still covers all")
    func pageSizeCap() throws {
        let workspace = makeWorkspace(batches: 250, maxPageSize: 100)
        let responder = SimulatorResponder(workspace: workspace)
        let first = try responder.send("/v1/messages/batches?limit=1000").json()
        #expect((first["data"] as? [Any])?.count == 100)
        #expect(first["has_more"] as? Bool == true)
        let (ids, pages, _) = try responder.listAll(limit: 1000)
        #expect(ids.count == 250 && Set(ids).count == 250)
        #expect(pages == 3)
    }

    @Test("archived_at can be left out while null, as some documented examples do")
    func omittedArchivedAt() throws {
        let workspace = makeWorkspace(batches: 50, active: 5, omitNullArchivedAt: true)
        let data = try #require(
            try SimulatorResponder(workspace: workspace).send("/v1/messages/batches?limit=50").json()["data"]
                as? [[String: Any]]
        )
        #expect(data.allSatisfy { $0["archived_at"] == nil })
    }

    @Test("a full read of 100,000 batches at limit 1000 takes 100 pages, twice")
    func largeWorkspacePagesQuickly() throws {
        let clock = ContinuousClock()
        var workspace: SimulatedWorkspace?
        let seeding = clock.measure { workspace = makeWorkspace(batches: 100_000, active: 300) }
        let responder = SimulatorResponder(workspace: try #require(workspace))

        var pages = 0
        var seen = 0
        var bytes = 0
        func readAll() {
            var after: String?
            pages = 0
            seen = 0
            while true {
                let reply = responder.send("/v1/messages/batches?limit=1000" + (after.map { "&after_id=\($0)" } ?? ""))
                pages += 1
                bytes += reply.bytes.count
                // Cheap cursor extraction: decoding 100 MB with JSONSerialization would measure
                // Foundation, not the simulator.
                guard let body = try? reply.json(), let data = body["data"] as? [Any] else { return }
                seen += data.count
                guard body["has_more"] as? Bool == true else { return }
                after = body["last_id"] as? String
            }
        }
        let cold = clock.measure(readAll)
        #expect(pages == 100 && seen == 100_000)
        let warm = clock.measure(readAll)
        #expect(pages == 100 && seen == 100_000)
        // Figures only: a timed assertion would fail whenever the machine is busy.
        print("100k batches: seeding \(seeding), first full read \(cold), second \(warm), \(bytes / 2) bytes per read")
    }
}
