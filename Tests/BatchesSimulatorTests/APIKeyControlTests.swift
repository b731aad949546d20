import BatchesSimulator
import Testing

@Suite("Rotating the simulator's key")
struct APIKeyControlTests {
    @Test("POST /_sim/api_key makes the API accept the new key and reject the old one, without echoing it")
    func rotate() throws {
        let workspace = makeWorkspace(batches: 3)
        let responder = SimulatorResponder(workspace: workspace)
        #expect(responder.send("/v1/messages/batches").status == 200)

        let reply = responder.send("/_sim/api_key?key=sk-ant-rotated-1", method: "POST")
        #expect(reply.status == 200, "\(reply.text)")
        #expect(!reply.text.contains("sk-ant-rotated-1"))
        #expect(workspace.apiKey == "sk-ant-rotated-1")

        #expect(responder.send("/v1/messages/batches").status == 401, "the old key is refused")
        let rotated = [("x-api-key", "sk-ant-rotated-1"), ("anthropic-version", "2023-06-01")].map { (name: $0.0, value: $0.1) }
        #expect(responder.send("/v1/messages/batches", headers: rotated).status == 200)
        let bearer = [("authorization", "Bearer sk-ant-rotated-1"), ("anthropic-version", "2023-06-01")].map { (name: $0.0, value: $0.1) }
        #expect(responder.send("/v1/messages/batches", headers: bearer).status == 200)
    }

    @Test("POST /_sim/api_key without a key is a 400, and GET is not allowed")
    func badRequests() {
        let responder = SimulatorResponder(workspace: makeWorkspace())
        #expect(responder.send("/_sim/api_key", method: "POST").status == 400)
        #expect(responder.send("/_sim/api_key?key=", method: "POST").status == 400)
        #expect(responder.send("/_sim/api_key?key=x").status == 405)
        #expect(responder.send("/v1/messages/batches").status == 200, "a refused change leaves the key as it was")
    }
}
