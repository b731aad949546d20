import Basics
import HTTPServing
import RFC3339
import NIOCore

/// Serves a ``SimulatedWorkspace`` over HTTP: the Message Batches list, retrieve and results
/// endpoints as the real API answers them (auth, version header, parameter errors, Anthropic's
/// error bodies), scripted faults on list and results requests, and the `/_sim/...` control
/// endpoints.
public struct SimulatorResponder: HTTPResponder {
    public let workspace: SimulatedWorkspace
    /// Whether `/_sim/...` is served; an embedded demo may want only the API.
    public let controlEndpoints: Bool

    public init(workspace: SimulatedWorkspace, controlEndpoints: Bool = true) {
        self.workspace = workspace
        self.controlEndpoints = controlEndpoints
    }

    /// The handler that carries out the wire faults this responder marks its responses with.
    public func makeChannelHandlers() -> [any ChannelHandler] {
        [WireFaultHandler()]
    }

    public func respond(to request: ServerRequest) -> ServerResponse {
        let segments = request.path.split(separator: "/")
        switch segments.first {
        case "v1":
            return respondToAPI(request, segments: segments)
        case "_sim" where controlEndpoints:
            return respondToControl(request, segments: Array(segments.dropFirst()))
        default:
            let requestID = workspace.withState { $0.nextRequestID() }
            return Self.error(404, "not_found_error", "Not found: \(request.path)", requestID: requestID)
        }
    }

    // MARK: - The API

    private enum Route {
        case list
        case retrieve(String)
        case results(String)
        case unknown
    }

    /// What the API would answer before any fault is applied.
    private enum Outcome {
        case page(items: [[UInt8]], hasMore: Bool, firstID: String?, lastID: String?)
        case batch([UInt8])
        case results(ResultsPlan)
        case failure(APIFailure)
    }

    private struct APIFailure {
        var status: Int
        var type: String
        var message: String
        var headers: [(name: String, value: String)] = []
    }

    private func respondToAPI(_ request: ServerRequest, segments: [Substring]) -> ServerResponse {
        let received = ContinuousClock.now
        let route: Route =
            switch segments.count {
            case 3 where segments[1] == "messages" && segments[2] == "batches": .list
            case 4 where segments[1] == "messages" && segments[2] == "batches": .retrieve(String(segments[3]))
            case 5 where segments[1] == "messages" && segments[2] == "batches" && segments[4] == "results":
                .results(String(segments[3]))
            default: .unknown
            }
        let keyMatched = authenticate(request)

        return workspace.withState { state in
            let requestID = state.nextRequestID()
            var fault: SimulatedFault?
            var resultsFault: ResultsFault?
            if request.method == "GET" {
                switch route {
                case .list: fault = state.faults.popFirst()
                case .results: resultsFault = state.resultsFaults.popFirst()
                default: break
                }
            }

            var response: ServerResponse
            if resultsFault == .notFound {
                response = Self.error(
                    404, "not_found_error", "The requested resource could not be found.", requestID: requestID)
            } else if let fault, let replacement = Self.standaloneResponse(for: fault, requestID: requestID) {
                response = replacement
            } else {
                var outcome = answer(to: request, route: route, keyMatched: keyMatched, state: &state)
                if case .endlessCursor = fault, case .page(let items, _, let firstID, _) = outcome {
                    let repeated = request.queryValue("after_id") ?? firstID ?? "msgbatch_endless"
                    outcome = .page(items: items, hasMore: true, firstID: firstID, lastID: repeated)
                }
                response = Self.render(
                    outcome, fault: fault, resultsFault: resultsFault, requestID: requestID,
                    organizationID: state.organizationID, authenticated: keyMatched == true
                )
            }

            if let limit = workspace.configuration.rateLimitPerMinute, keyMatched == true {
                let now = workspace.milliseconds(since: received)
                let lastMinute = state.requestLog.entries.reversed().prefix { now - $0.receivedMilliseconds < 60_000 }.count
                response.headers += [
                    ("anthropic-ratelimit-requests-limit", String(limit)),
                    ("anthropic-ratelimit-requests-remaining", String(max(0, limit - lastMinute - 1))),
                    ("anthropic-ratelimit-requests-reset", RFC3339.format(WallClock.now() + 60)),
                ]
            }
            state.requestLog.append(
                RequestLogEntry(
                    receivedMilliseconds: workspace.milliseconds(since: received),
                    method: request.method,
                    path: request.path,
                    query: QueryEncoding.encode(redactingKey(from: request.query)),
                    status: WireFault(markedOn: response) == .closeWithoutResponse ? nil : response.status,
                    keyMatched: keyMatched == true,
                    anthropicVersion: request.header("anthropic-version"),
                    userAgent: request.header("user-agent"),
                    anthropicWorkspaceID: request.header("anthropic-workspace-id"),
                    requestID: requestID,
                    fault: fault?.kind ?? resultsFault?.kind
                )
            )
            return response
        }
    }

    /// A client that puts the key in the query string must not get it into the log either.
    private func redactingKey(from query: [(name: String, value: String)]) -> [(name: String, value: String)] {
        let key = workspace.apiKey
        guard !key.isEmpty, query.contains(where: { $0.value.contains(key) }) else { return query }
        return query.map { ($0.name, $0.value.contains(key) ? "REDACTED" : $0.value) }
    }

    /// `nil` when no key was sent, else whether it is the configured one. `x-api-key` wins;
    /// `Authorization: Bearer` is what the newest Python SDK sends instead.
    private func authenticate(_ request: ServerRequest) -> Bool? {
        if let key = request.header("x-api-key") {
            return key == workspace.apiKey
        }
        if let authorization = request.header("authorization") {
            let parts = authorization.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, parts[0].lowercased() == "bearer" else { return false }
            return parts[1].trimmingWhitespace == workspace.apiKey
        }
        return nil
    }

    private func answer(to request: ServerRequest, route: Route, keyMatched: Bool?, state: inout WorkspaceState)
        -> Outcome
    {
        if case .unknown = route {
            return .failure(APIFailure(status: 404, type: "not_found_error", message: "Not found: \(request.path)"))
        }
        guard request.method == "GET" else {
            // The real API's answer to other methods on these paths is unconfirmed.
            return .failure(
                APIFailure(
                    status: 405, type: "invalid_request_error", message: "Method \(request.method) not allowed",
                    headers: [("Allow", "GET")]
                )
            )
        }
        switch keyMatched {
        case nil:
            return .failure(
                APIFailure(status: 401, type: "authentication_error", message: "x-api-key header is required"))
        case false?:
            return .failure(APIFailure(status: 401, type: "authentication_error", message: "invalid x-api-key"))
        case true?:
            break
        }
        guard let version = request.header("anthropic-version"), !version.isEmpty else {
            return .failure(
                APIFailure(status: 400, type: "invalid_request_error", message: "anthropic-version: header is required")
            )
        }

        state.catchUp()
        switch route {
        case .list:
            return listOutcome(request, state: &state)
        case .retrieve(let id):
            guard let json = state.renderedJSON(id: id) else {
                return .failure(
                    APIFailure(status: 404, type: "not_found_error", message: "No message batch found with id '\(id)'")
                )
            }
            return .batch(json)
        case .results(let id):
            switch state.resultsPlan(id: id) {
            case .success(let plan):
                return .results(plan)
            case .failure(.noSuchBatch):
                return .failure(
                    APIFailure(status: 404, type: "not_found_error", message: "No message batch found with id '\(id)'")
                )
            case .failure(.notEnded(let status)):
                // The real API's answer here is unconfirmed (the SDKs refuse before asking).
                return .failure(
                    APIFailure(
                        status: 404, type: "not_found_error",
                        message: "Message batch '\(id)' is \(status.rawValue); results are available once it has ended"
                    )
                )
            case .failure(.archived):
                return .failure(
                    APIFailure(
                        status: 404, type: "not_found_error",
                        message: "The results of message batch '\(id)' are no longer available")
                )
            }
        case .unknown:
            preconditionFailure("handled above")
        }
    }

    private func listOutcome(_ request: ServerRequest, state: inout WorkspaceState) -> Outcome {
        var limit = 20
        if let text = request.queryValue("limit") {
            guard let value = Int(text), (1...1000).contains(value) else {
                return .failure(
                    APIFailure(
                        status: 400, type: "invalid_request_error", message: ListError.invalidLimit(text).message)
                )
            }
            limit = value
        }
        do {
            let (indices, hasMore) = try state.pageIndices(
                limit: limit, afterID: request.queryValue("after_id"), beforeID: request.queryValue("before_id")
            )
            let items = state.renderedItems(indices)
            return .page(
                items: items,
                hasMore: hasMore,
                firstID: indices.first.map { state.batchID(at: $0) },
                lastID: indices.last.map { state.batchID(at: $0) }
            )
        } catch {
            return .failure(APIFailure(status: 400, type: "invalid_request_error", message: error.message))
        }
    }

    /// Faults that replace the answer outright, whatever the request was.
    private static func standaloneResponse(for fault: SimulatedFault, requestID: String) -> ServerResponse? {
        switch fault {
        case .status(let status, let retryAfter, let retryAfterMilliseconds, let shouldRetry):
            var headers: [(name: String, value: String)] = []
            if let retryAfter { headers.append(("retry-after", retryAfter)) }
            if let retryAfterMilliseconds { headers.append(("retry-after-ms", retryAfterMilliseconds)) }
            if let shouldRetry { headers.append(("x-should-retry", shouldRetry)) }
            return error(
                status, APIErrorType.forStatus(status), APIErrorType.message(forStatus: status), requestID: requestID,
                headers: headers
            )
        case .spendCap:
            return error(
                429, "rate_limit_error",
                "You have reached your specified workspace API usage limits. You will regain access on the first of next month.",
                requestID: requestID, errorCode: "enforced_spend_limit_reached"
            )
        case .html(let status):
            // A proxy in front of the API: no request-id, no JSON.
            let title = "\(status) \(status == 502 ? "Bad Gateway" : status == 503 ? "Service Unavailable" : "Error")"
            return ServerResponse(
                status: status,
                headers: [("Content-Type", "text/html"), ("Server", "simulated-proxy")],
                body: ByteBuffer(
                    string:
                        "<html>\r\n<head><title>\(title)</title></head>\r\n<body>\r\n<center><h1>\(title)</h1></center>\r\n<hr><center>simulated-proxy</center>\r\n</body>\r\n</html>\r\n"
                )
            )
        case .garbage:
            var body = ByteBuffer(string: "upstream said: ")
            body.writeBytes([0xFF, 0xFE, 0x00, 0x7B])  // invalid UTF-8, a NUL, then "{"
            body.writeString("\"data\": [ not json")
            return ServerResponse(status: 200, headers: jsonHeaders(requestID: requestID), body: body)
        case .wrongTypes:
            return ServerResponse(
                status: 200, headers: jsonHeaders(requestID: requestID),
                body: ByteBuffer(string: #"{"data":"nope","has_more":"yes","first_id":17,"last_id":["msgbatch_x"]}"#)
            )
        case .close:
            var response = ServerResponse(status: 200, headers: jsonHeaders(requestID: requestID))
            WireFault.closeWithoutResponse.mark(&response)
            return response
        case .truncated, .delay, .hang, .endlessCursor, .wrongContentType:
            return nil
        }
    }

    private static func render(
        _ outcome: Outcome, fault: SimulatedFault?, resultsFault: ResultsFault?, requestID: String,
        organizationID: String, authenticated: Bool
    ) -> ServerResponse {
        var response: ServerResponse
        switch outcome {
        case .failure(let failure):
            response = error(
                failure.status, failure.type, failure.message, requestID: requestID,
                headers: (authenticated ? [("anthropic-organization-id", organizationID)] : []) + failure.headers
            )
        case .batch(let json):
            response = ServerResponse(
                status: 200,
                headers: jsonHeaders(requestID: requestID) + [("anthropic-organization-id", organizationID)],
                body: ByteBuffer(bytes: json)
            )
        case .results(let plan):
            var pieceBytes = 1 << 16
            var cutAfterBytes: Int?
            var pause: WireFault?
            switch resultsFault {
            case .cut(let afterBytes)?: cutAfterBytes = afterBytes
            case .slow(let milliseconds, let bytes)?:
                pause = .pauseBetweenBodyParts(.milliseconds(milliseconds))
                pieceBytes = bytes
            case .notFound?, nil: break
            }
            response = ServerResponse(
                status: 200,
                headers: [
                    ("Content-Type", "application/x-jsonl"),
                    ("Content-Disposition", "attachment; filename=\"\(plan.batchID)_results.jsonl\""),
                    ("request-id", requestID),
                    ("anthropic-organization-id", organizationID),
                ],
                stream: StreamedBody { [pieceBytes, cutAfterBytes] in
                    ResultsStream(plan: plan, pieceBytes: pieceBytes, cutAfterBytes: cutAfterBytes)
                }
            )
            pause?.mark(&response)
        case .page(let items, let hasMore, let firstID, let lastID):
            var json = JSONWriter(capacity: items.reduce(128) { $0 + $1.count + 1 })
            json.raw("{\"data\":")
            json.array(items) { json, item in json.raw(item) }
            json.raw(",\"has_more\":")
            json.bool(hasMore)
            json.raw(",\"first_id\":")
            json.string(firstID)
            json.raw(",\"last_id\":")
            json.string(lastID)
            json.raw("}")
            response = ServerResponse(
                status: 200,
                headers: jsonHeaders(requestID: requestID) + [("anthropic-organization-id", organizationID)],
                body: ByteBuffer(bytes: json.bytes)
            )
        }
        switch fault {
        case .truncated?:
            WireFault.truncateBody(afterBytes: response.body.readableBytes / 2).mark(&response)
        case .delay(let milliseconds)?:
            WireFault.delay(.milliseconds(milliseconds)).mark(&response)
        case .hang?:
            WireFault.delay(SimulatedFault.hangDuration).mark(&response)
        case .wrongContentType?:
            response.headers = response.headers.map { header in
                header.name == "Content-Type" ? (header.name, "text/plain; charset=utf-8") : header
            }
        default:
            break
        }
        return response
    }

    // MARK: - Shared response shapes

    static func jsonHeaders(requestID: String) -> [(name: String, value: String)] {
        [("Content-Type", "application/json"), ("request-id", requestID)]
    }

    /// An error in Anthropic's shape: `{"type":"error","error":{...},"request_id":"req_..."}`.
    static func error(
        _ status: Int, _ type: String, _ message: String, requestID: String, errorCode: String? = nil,
        headers: [(name: String, value: String)] = []
    ) -> ServerResponse {
        var json = JSONWriter(capacity: 160)
        json.object { fields in
            fields.string("type", "error")
            fields.object("error") { error in
                error.string("type", type)
                error.string("message", message)
                if let errorCode {
                    error.object("details") { $0.string("error_code", errorCode) }
                }
            }
            fields.string("request_id", requestID)
        }
        return ServerResponse(
            status: status, headers: jsonHeaders(requestID: requestID) + headers, body: ByteBuffer(bytes: json.bytes)
        )
    }
}

extension ResultsStream: StreamedBodySource {
    mutating func next() -> StreamedBody.Piece {
        while true {
            let (bytes, abort) = nextBytes()
            if abort { return .abort }
            guard let bytes else { return .end }
            // An empty chunk would read as the end of a chunked body.
            if !bytes.isEmpty { return .bytes(ByteBuffer(bytes: bytes)) }
        }
    }
}
