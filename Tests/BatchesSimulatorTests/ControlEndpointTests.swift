import BatchesSimulator
import Foundation
import RFC3339
import Testing

@Suite("Control endpoints")
struct ControlEndpointTests {
    @Test("the truth endpoint equals the sum over a full listing")
    func truthMatchesListing() throws {
        let workspace = makeWorkspace(batches: 3_000, active: 40, dynamics: .standard)
        let responder = SimulatorResponder(workspace: workspace)
        workspace.advance(seconds: 5 * 3600)
        _ = try workspace.cancelBatch(
            id: try #require(workspace.allBatches().first { $0.processingStatus == .inProgress }?.id))

        let (_, _, objects) = try responder.listAll(limit: 1000)
        var byStatus: [String: Int] = [:]
        var requests: [String: Int] = [:]
        var archived = 0
        for object in objects {
            byStatus[object["processing_status"] as? String ?? "?", default: 0] += 1
            for (key, value) in counts(object) { requests[key, default: 0] += value }
            if !(object["archived_at"] is NSNull) { archived += 1 }
        }

        let truth = try responder.send("/_sim/truth").json()
        #expect(truth["batches"] as? Int == objects.count)
        #expect(
            truth["by_status"] as? [String: Int]
                == byStatus.merging(["in_progress": 0, "canceling": 0, "ended": 0]) { a, _ in a })
        #expect(truth["requests"] as? [String: Int] == requests)
        #expect(truth["archived"] as? Int == archived)
        #expect(byStatus["canceling"] == 1)
        let now = try #require((truth["now"] as? String).flatMap(RFC3339.parse))
        #expect(abs(now - workspace.now) < 0.001)
        #expect(abs((truth["now_unix"] as? Double ?? 0) - workspace.now) < 0.001)
    }

    @Test("truth with batches=1 includes the full list, newest first")
    func truthWithBatches() throws {
        let workspace = makeWorkspace(batches: 30, active: 3)
        let body = try SimulatorResponder(workspace: workspace).send("/_sim/truth?batches=1").json()
        let data = try #require(body["data"] as? [[String: Any]])
        #expect(data.compactMap { $0["id"] as? String } == workspace.allBatches().map(\.id))
    }

    @Test("created batches appear at the top, newest first, with the asked-for status and counts")
    func createBatches() throws {
        let workspace = makeWorkspace(batches: 10)
        let responder = SimulatorResponder(workspace: workspace)
        let created = try responder.send(
            "/_sim/batches?count=3&status=ended&succeeded=7&errored=2&canceled=1&expired=0", method: "POST"
        ).json()
        let ids = try #require(created["ids"] as? [String])
        #expect(ids.count == 3)
        let page = try responder.send("/v1/messages/batches?limit=3").json()
        let data = try #require(page["data"] as? [[String: Any]])
        #expect(data.compactMap { $0["id"] as? String } == ids)
        for object in data {
            #expect(object["processing_status"] as? String == "ended")
            #expect(counts(object) == ["processing": 0, "succeeded": 7, "errored": 2, "canceled": 1, "expired": 0])
        }

        let active = try responder.send("/_sim/batches?count=2&requests=12&status=canceling", method: "POST").json()
        let activeIDs = try #require(active["ids"] as? [String])
        let batch = try #require(workspace.batch(id: activeIDs[0]))
        #expect(batch.processingStatus == .canceling && batch.requestCounts.processing == 12)
        #expect(batch.cancelInitiatedAt != nil)
        #expect(workspace.allBatches().prefix(2).map(\.id) == activeIDs)
    }

    @Test("batches created with an age go to their place in creation order")
    func createWithAge() throws {
        let workspace = makeWorkspace(batches: 200, active: 10)
        let responder = SimulatorResponder(workspace: workspace)
        let created = try responder.send("/_sim/batches?count=4&status=ended&age_seconds=7200", method: "POST").json()
        let ids = try #require(created["ids"] as? [String])
        let batches = workspace.allBatches()
        #expect(zip(batches, batches.dropFirst()).allSatisfy { $0.createdAt >= $1.createdAt })
        let positions = ids.compactMap { id in batches.firstIndex { $0.id == id } }
        #expect(positions.count == 4 && positions == positions.sorted())
        #expect(positions.first! > 0)

        let (listed, _, _) = try responder.listAll(limit: 37)
        #expect(listed == batches.map(\.id))
    }

    @Test("an in-progress batch created more than a day ago has already expired")
    func createOldActive() throws {
        let workspace = makeWorkspace()
        let ids = try workspace.createBatches(BatchSpec(count: 1, requests: 9, ageSeconds: 2 * 86_400))
        let batch = try #require(workspace.batch(id: ids[0]))
        #expect(batch.processingStatus == .ended)
        #expect(batch.requestCounts.expired > 0 && batch.size == 9)
    }

    @Test(
        "bad creation parameters are refused",
        arguments: [
            "count=0", "count=abc", "requests=0", "requests=100001", "status=done", "status=in_progress&succeeded=3",
            "status=ended&requests=5&succeeded=3", "age_seconds=-1",
        ])
    func badCreation(query: String) throws {
        let workspace = makeWorkspace(batches: 3)
        let reply = SimulatorResponder(workspace: workspace).send("/_sim/batches?\(query)", method: "POST")
        try expectAnthropicError(reply, status: 400, type: "invalid_request_error")
        #expect(workspace.truth().batches == 3)
    }

    @Test("a deleted batch leaves the list, and its id stops working as a cursor")
    func deleteBatch() throws {
        let workspace = makeWorkspace(batches: 50, active: 5)
        let responder = SimulatorResponder(workspace: workspace)
        let victim = workspace.allBatches()[20].id
        let deleted = try responder.send("/_sim/batches/\(victim)", method: "DELETE").json()
        #expect(deleted["deleted"] as? Bool == true)
        let (ids, _, _) = try responder.listAll(limit: 7)
        #expect(ids.count == 49 && !ids.contains(victim))
        try expectAnthropicError(
            responder.send("/v1/messages/batches?after_id=\(victim)"), status: 400, type: "invalid_request_error"
        )
        try expectAnthropicError(
            responder.send("/_sim/batches/\(victim)", method: "DELETE"), status: 404, type: "not_found_error"
        )
    }

    @Test("advance moves manual time and reports it")
    func advance() throws {
        let workspace = makeWorkspace()
        let responder = SimulatorResponder(workspace: workspace)
        let body = try responder.send("/_sim/advance?seconds=90.5", method: "POST").json()
        #expect(body["now_unix"] as? Double == 1_750_000_090.5)
        #expect(body["now"] as? String == RFC3339.format(1_750_000_090.5))
        try expectAnthropicError(
            responder.send("/_sim/advance?seconds=-3", method: "POST"), status: 400, type: "invalid_request_error"
        )
        try expectAnthropicError(
            responder.send("/_sim/advance", method: "POST"), status: 400, type: "invalid_request_error")
    }

    @Test("the request log records each API request and never the key")
    func requestLogOmitsKey() throws {
        let workspace = makeWorkspace(batches: 5)
        let responder = SimulatorResponder(workspace: workspace)
        _ = responder.send(
            "/v1/messages/batches?limit=2",
            headers: apiHeaders + [("anthropic-workspace-id", "wrkspc_01")]
        )
        _ = responder.send(
            "/v1/messages/batches?after_id=x%20y",
            headers: [("Authorization", "Bearer \(testKey)"), ("anthropic-version", "2026-10-21")]
        )
        _ = responder.send("/v1/messages/batches", headers: [("x-api-key", "sk-ant-wrong-\(testKey)")])
        _ = responder.send("/v1/messages/batches?api_key=\(testKey)")
        _ = responder.send("/_sim/truth")

        let reply = responder.send("/_sim/requests")
        #expect(!reply.text.contains(testKey))
        #expect(!workspace.requestLog.description.contains(testKey))
        let entries = try #require(try reply.json()["requests"] as? [[String: Any]])
        #expect(entries.count == 4)
        #expect(entries.map { $0["status"] as? Int } == [200, 400, 401, 200])
        #expect(entries.map { $0["key_matched"] as? Bool } == [true, true, false, true])
        #expect(entries[3]["query"] as? String == "api_key=REDACTED")
        #expect(entries[0]["query"] as? String == "limit=2")
        #expect(entries[1]["query"] as? String == "after_id=x%20y")
        #expect(entries[0]["anthropic_workspace_id"] as? String == "wrkspc_01")
        #expect(entries[0]["user_agent"] as? String == "simulator-tests/1.0")
        #expect(entries[1]["anthropic_version"] as? String == "2026-10-21")
        #expect(entries[2]["anthropic_version"] is NSNull)
        #expect(
            entries.allSatisfy {
                ($0["method"] as? String) == "GET" && ($0["path"] as? String) == "/v1/messages/batches"
            })
        let times = entries.compactMap { $0["received_ms"] as? Int }
        #expect(times.count == 4 && times == times.sorted())

        #expect(try responder.send("/_sim/requests", method: "DELETE").json()["requests"] as? [Any] != nil)
        #expect(workspace.requestLog.isEmpty)
    }

    @Test("reset returns to the seeded state, optionally with another size")
    func reset() throws {
        let workspace = makeWorkspace(batches: 40, active: 4)
        let responder = SimulatorResponder(workspace: workspace)
        let original = workspace.allBatches()
        workspace.advance(seconds: 90_000)
        try workspace.createBatches(BatchSpec(count: 5))
        workspace.enqueueFault(.garbage)
        _ = responder.send("/v1/messages/batches/nope")

        #expect(try responder.send("/_sim/reset", method: "POST").json()["batches"] as? Int == 40)
        #expect(workspace.allBatches() == original)
        #expect(workspace.pendingFaults.isEmpty && workspace.requestLog.isEmpty)
        #expect(workspace.now == 1_750_000_000)

        #expect(
            try responder.send("/_sim/reset?batches=7&active=2&seed=9", method: "POST").json()["batches"] as? Int == 7)
        #expect(workspace.truth().inProgress == 2)
    }

    @Test("unknown control paths are 404 and wrong methods 405")
    func controlRouting() throws {
        let responder = SimulatorResponder(workspace: makeWorkspace())
        try expectAnthropicError(responder.send("/_sim/nope"), status: 404, type: "not_found_error")
        try expectAnthropicError(
            responder.send("/_sim/truth", method: "POST"), status: 405, type: "invalid_request_error")
        try expectAnthropicError(responder.send("/_sim/advance?seconds=1"), status: 405, type: "invalid_request_error")
    }

    @Test("control endpoints can be switched off for an embedded demo")
    func controlOff() throws {
        let responder = SimulatorResponder(workspace: makeWorkspace(), controlEndpoints: false)
        try expectAnthropicError(responder.send("/_sim/truth"), status: 404, type: "not_found_error")
    }
}
