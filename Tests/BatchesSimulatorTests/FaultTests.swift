import BatchesSimulator
import Foundation
import HTTPServing
import Testing

@Suite("Fault injection")
struct FaultTests {
    static func setUp() -> (SimulatedWorkspace, SimulatorResponder) {
        let workspace = makeWorkspace(batches: 60, active: 5)
        return (workspace, SimulatorResponder(workspace: workspace))
    }

    static func enqueue(_ responder: SimulatorResponder, _ query: String) throws {
        let reply = responder.send("/_sim/faults?\(query)", method: "POST")
        try #require(reply.status == 200, "\(reply.text)")
    }

    @Test("faults are consumed in order, one per list request, then normal service resumes")
    func consumedInOrder() throws {
        let (_, responder) = Self.setUp()
        try Self.enqueue(responder, "kind=status&status=429&retry_after=3")
        try Self.enqueue(responder, "kind=status&status=529&count=2")
        try Self.enqueue(responder, "kind=html")
        let statuses = (0..<6).map { _ in responder.send("/v1/messages/batches").status }
        #expect(statuses == [429, 529, 529, 502, 200, 200])
        let log = try responder.send("/_sim/requests").json()["requests"] as? [[String: Any]]
        #expect(log?.map { $0["fault"] as? String } == ["status", "status", "status", "html", nil, nil])
    }

    @Test("retrieve and control requests do not consume faults")
    func onlyListConsumes() throws {
        let (workspace, responder) = Self.setUp()
        try Self.enqueue(responder, "kind=status&status=500")
        let id = try #require(workspace.allBatches().first?.id)
        #expect(responder.send("/v1/messages/batches/\(id)").status == 200)
        #expect(responder.send("/_sim/truth").status == 200)
        #expect(workspace.pendingFaults == [.status(500)])
        try expectAnthropicError(responder.send("/v1/messages/batches"), status: 500, type: "api_error")
    }

    @Test(
        "a status fault carries the matching Anthropic error type",
        arguments: [
            (429, "rate_limit_error"), (529, "overloaded_error"), (500, "api_error"), (401, "authentication_error"),
            (403, "permission_error"), (400, "invalid_request_error"), (404, "not_found_error"),
            (413, "request_too_large"), (504, "timeout_error"), (503, "api_error"), (402, "billing_error"),
            (409, "conflict_error"),
        ])
    func statusFaultTypes(status: Int, type: String) throws {
        let (_, responder) = Self.setUp()
        try Self.enqueue(responder, "kind=status&status=\(status)")
        try expectAnthropicError(responder.send("/v1/messages/batches"), status: status, type: type)
    }

    @Test("retry-after, retry-after-ms and x-should-retry are sent exactly as scripted")
    func retryHeaders() throws {
        let (_, responder) = Self.setUp()
        try Self.enqueue(responder, "kind=status&status=429&retry_after=1.5&retry_after_ms=250&should_retry=false")
        try Self.enqueue(responder, "kind=status&status=429")
        let first = responder.send("/v1/messages/batches")
        #expect(first.header("retry-after") == "1.5")
        #expect(first.header("retry-after-ms") == "250")
        #expect(first.header("x-should-retry") == "false")
        let second = responder.send("/v1/messages/batches")
        #expect(second.status == 429)
        #expect(second.header("retry-after") == nil && second.header("x-should-retry") == nil)
    }

    @Test("the spend-cap 429 names enforced_spend_limit_reached and has no retry-after")
    func spendCap() throws {
        let (_, responder) = Self.setUp()
        try Self.enqueue(responder, "kind=spend_cap")
        let reply = responder.send("/v1/messages/batches")
        let error = try expectAnthropicError(reply, status: 429, type: "rate_limit_error")
        #expect((error["details"] as? [String: Any])?["error_code"] as? String == "enforced_spend_limit_reached")
        #expect(reply.header("retry-after") == nil)
    }

    @Test("html is a proxy's 502 page in text/html")
    func html() throws {
        let (_, responder) = Self.setUp()
        try Self.enqueue(responder, "kind=html")
        try Self.enqueue(responder, "kind=html&status=504")
        let reply = responder.send("/v1/messages/batches")
        #expect(reply.status == 502)
        #expect(reply.header("content-type") == "text/html")
        #expect(reply.text.contains("<html>"))
        #expect((try? reply.json()) == nil)
        #expect(responder.send("/v1/messages/batches").status == 504)
    }

    @Test("garbage is a 200 whose body is not JSON")
    func garbage() throws {
        let (_, responder) = Self.setUp()
        try Self.enqueue(responder, "kind=garbage")
        let reply = responder.send("/v1/messages/batches")
        #expect(reply.status == 200)
        #expect(throws: (any Error).self) { try JSONSerialization.jsonObject(with: Data(reply.bytes)) }
    }

    @Test("wrong_types is valid JSON with data that is not an array")
    func wrongTypes() throws {
        let (_, responder) = Self.setUp()
        try Self.enqueue(responder, "kind=wrong_types")
        let body = try responder.send("/v1/messages/batches").json()
        #expect(body["data"] as? String == "nope")
        #expect(body["has_more"] is String)
    }

    @Test("truncated announces the real page but sends only part of it")
    func truncated() throws {
        let (_, responder) = Self.setUp()
        try Self.enqueue(responder, "kind=truncated")
        let reply = responder.send("/v1/messages/batches?limit=50")
        #expect(reply.status == 200)
        guard case .truncateBody(let after)? = WireFault(markedOn: reply.response) else {
            Issue.record("expected a truncation, got \(String(describing: WireFault(markedOn: reply.response)))")
            return
        }
        #expect(after > 0 && after < reply.bytes.count)
        #expect((try reply.json()["data"] as? [Any])?.count == 50)
        #expect((try? JSONSerialization.jsonObject(with: Data(reply.bytes.prefix(after)))) == nil)
    }

    @Test("delay and hang serve the real page late")
    func delays() throws {
        let (_, responder) = Self.setUp()
        try Self.enqueue(responder, "kind=delay&delay_ms=1500")
        try Self.enqueue(responder, "kind=hang")
        let delayed = responder.send("/v1/messages/batches")
        #expect(WireFault(markedOn: delayed.response) == .delay(.milliseconds(1500)))
        #expect(delayed.status == 200)
        #expect((try delayed.json()["data"] as? [Any])?.count == 20)
        let hung = responder.send("/v1/messages/batches")
        #expect(WireFault(markedOn: hung.response) == .delay(.seconds(3600)))
    }

    @Test("close closes the connection without an answer, logged without a status")
    func close() throws {
        let (_, responder) = Self.setUp()
        try Self.enqueue(responder, "kind=close")
        #expect(WireFault(markedOn: responder.send("/v1/messages/batches").response) == .closeWithoutResponse)
        let log = try #require(try responder.send("/_sim/requests").json()["requests"] as? [[String: Any]])
        #expect(log.first?["status"] is NSNull)
    }

    @Test("endless_cursor repeats the request's after_id with has_more true")
    func endlessCursor() throws {
        let (workspace, responder) = Self.setUp()
        try Self.enqueue(responder, "kind=endless_cursor&count=3")
        let first = try responder.send("/v1/messages/batches?limit=10").json()
        let top = try #require(workspace.allBatches().first?.id)
        #expect(first["last_id"] as? String == top)
        #expect(first["has_more"] as? Bool == true)
        for _ in 0..<2 {
            let again = try responder.send("/v1/messages/batches?limit=10&after_id=\(top)").json()
            #expect(again["last_id"] as? String == top)
            #expect(again["has_more"] as? Bool == true)
        }
        let honest = try responder.send("/v1/messages/batches?limit=10&after_id=\(top)").json()
        #expect(honest["last_id"] as? String != top)
    }

    @Test("wrong_content_type labels the real page text/plain")
    func wrongContentType() throws {
        let (_, responder) = Self.setUp()
        try Self.enqueue(responder, "kind=wrong_content_type")
        let reply = responder.send("/v1/messages/batches")
        #expect(reply.status == 200)
        #expect(reply.header("content-type")?.hasPrefix("text/plain") == true)
        #expect((try reply.json()["data"] as? [Any])?.count == 20)
    }

    @Test("DELETE /_sim/faults empties the queue")
    func clearing() throws {
        let (workspace, responder) = Self.setUp()
        try Self.enqueue(responder, "kind=garbage&count=5")
        #expect(try responder.send("/_sim/faults").json()["queued"] as? Int == 5)
        #expect(try responder.send("/_sim/faults", method: "DELETE").json()["queued"] as? Int == 0)
        #expect(workspace.pendingFaults.isEmpty)
        #expect(responder.send("/v1/messages/batches").status == 200)
    }

    @Test(
        "bad fault parameters are refused",
        arguments: [
            "kind=nope", "", "kind=status", "kind=status&status=abc", "kind=delay&delay_ms=-1", "kind=garbage&count=0",
        ])
    func badFaults(query: String) throws {
        let (workspace, responder) = Self.setUp()
        let reply = responder.send("/_sim/faults?\(query)", method: "POST")
        try expectAnthropicError(reply, status: 400, type: "invalid_request_error")
        #expect(workspace.pendingFaults.isEmpty)
    }
}
