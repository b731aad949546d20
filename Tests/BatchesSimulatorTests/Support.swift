import BatchesSimulator
import Foundation
import HTTPServing
import NIOCore
import Testing

let testKey = "sk-ant-test-0123456789"

let apiHeaders: [(name: String, value: String)] = [
    ("x-api-key", testKey),
    ("anthropic-version", "2023-06-01"),
    ("user-agent", "simulator-tests/1.0"),
]

func makeWorkspace(
    batches: Int = 0,
    active: Int = 0,
    seed: UInt64 = 42,
    dynamics: SimulatorConfiguration.Dynamics? = nil,
    maxPageSize: Int? = nil,
    omitNullArchivedAt: Bool = false
) -> SimulatedWorkspace {
    SimulatedWorkspace(
        configuration: SimulatorConfiguration(
            apiKey: testKey,
            seed: seed,
            initialBatches: batches,
            initialActive: active,
            time: .manual(start: 1_750_000_000),
            dynamics: dynamics,
            maxPageSize: maxPageSize,
            omitNullArchivedAt: omitNullArchivedAt
        )
    )
}

/// A response with its body read out (a streamed body drained), so tests need not touch
/// `ByteBuffer`.
struct Reply {
    var response: ServerResponse
    var bytes: [UInt8]
    /// Pieces a streamed body came in; 0 for a plain body.
    var pieces = 0
    /// Whether a streamed body ended by cutting the connection.
    var aborted = false

    var status: Int { response.status }

    func header(_ name: String) -> String? {
        response.headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    var text: String { String(decoding: bytes, as: UTF8.self) }

    func json() throws -> [String: Any] {
        let object = try JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])
        return try #require(object as? [String: Any], "not a JSON object: \(text)")
    }
}

extension SimulatorResponder {
    func send(
        _ target: String, method: String = "GET", headers: [(name: String, value: String)] = apiHeaders
    ) -> Reply {
        let response = respond(to: ServerRequest(method: method, target: target, headers: headers))
        var reply = Reply(response: response, bytes: Array(response.body.readableBytesView))
        if let stream = response.stream {
            var source = stream.makeSource()
            draining: while true {
                switch source.next() {
                case .bytes(let piece):
                    reply.bytes += piece.readableBytesView
                    reply.pieces += 1
                case .end:
                    break draining
                case .abort:
                    reply.aborted = true
                    break draining
                }
            }
        }
        return reply
    }

    /// Follows `after_id = last_id` until `has_more` is false, as the official SDKs do.
    func listAll(limit: Int, maxPages: Int = 100_000) throws -> (ids: [String], pages: Int, objects: [[String: Any]]) {
        var ids: [String] = []
        var objects: [[String: Any]] = []
        var after: String?
        var pages = 0
        while pages < maxPages {
            let target = "/v1/messages/batches?limit=\(limit)" + (after.map { "&after_id=\($0)" } ?? "")
            let reply = send(target)
            try #require(reply.status == 200, "\(reply.text)")
            let body = try reply.json()
            let data = try #require(body["data"] as? [[String: Any]])
            pages += 1
            objects += data
            ids += data.compactMap { $0["id"] as? String }
            guard body["has_more"] as? Bool == true, let last = body["last_id"] as? String else { break }
            after = last
        }
        return (ids, pages, objects)
    }
}

/// Asserts Anthropic's error shape and returns `error.type`.
@discardableResult
func expectAnthropicError(_ reply: Reply, status: Int, type: String, sourceLocation: SourceLocation = #_sourceLocation)
    throws -> [String: Any]
{
    #expect(reply.status == status, sourceLocation: sourceLocation)
    #expect(reply.header("Content-Type") == "application/json", sourceLocation: sourceLocation)
    let body = try reply.json()
    #expect(body["type"] as? String == "error", sourceLocation: sourceLocation)
    let error = try #require(body["error"] as? [String: Any], sourceLocation: sourceLocation)
    #expect(error["type"] as? String == type, sourceLocation: sourceLocation)
    #expect((error["message"] as? String)?.isEmpty == false, sourceLocation: sourceLocation)
    let requestID = try #require(body["request_id"] as? String, sourceLocation: sourceLocation)
    #expect(requestID.hasPrefix("req_"), sourceLocation: sourceLocation)
    #expect(reply.header("request-id") == requestID, sourceLocation: sourceLocation)
    return error
}

func counts(_ object: [String: Any]) -> [String: Int] {
    (object["request_counts"] as? [String: Int]) ?? [:]
}
