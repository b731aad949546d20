import HTTPServing
import NIOCore

/// The `/_sim/...` control endpoints: no auth, parameters in the query string only (the
/// listener accepts no request bodies), JSON answers. Errors use the API's error shape.
extension SimulatorResponder {
    func respondToControl(_ request: ServerRequest, segments: [Substring]) -> ServerResponse {
        let requestID = workspace.withState { $0.nextRequestID() }
        do {
            let json = try control(request, segments: segments)
            return ServerResponse(
                status: 200, headers: Self.jsonHeaders(requestID: requestID), body: ByteBuffer(bytes: json.bytes)
            )
        } catch {
            switch error {
            case .badRequest(let message):
                return Self.error(400, "invalid_request_error", message, requestID: requestID)
            case .notFound(let message):
                return Self.error(404, "not_found_error", message, requestID: requestID)
            case .conflict(let message):
                return Self.error(409, "conflict_error", message, requestID: requestID)
            case .methodNotAllowed(let allowed):
                return Self.error(
                    405, "invalid_request_error", "Method \(request.method) not allowed", requestID: requestID,
                    headers: [("Allow", allowed)]
                )
            }
        }
    }

    private enum ControlFailure: Error {
        case badRequest(String)
        case notFound(String)
        case conflict(String)
        case methodNotAllowed(String)

        init(_ error: ControlError) {
            switch error {
            case .badRequest(let message): self = .badRequest(message)
            case .notFound(let message): self = .notFound(message)
            case .conflict(let message): self = .conflict(message)
            }
        }
    }

    private func control(_ request: ServerRequest, segments: [Substring]) throws(ControlFailure) -> JSONWriter {
        let method = request.method
        func only(_ allowed: String...) throws(ControlFailure) {
            guard allowed.contains(method) else { throw .methodNotAllowed(allowed.joined(separator: ", ")) }
        }
        func perform<T>(_ body: () throws(ControlError) -> T) throws(ControlFailure) -> T {
            do { return try body() } catch { throw ControlFailure(error) }
        }
        var json = JSONWriter(capacity: 256)

        let path = segments.map(String.init)
        let batchID = path.count >= 2 && path[0] == "batches" ? path[1] : ""
        switch path {
        case ["batches"]:
            try only("POST")
            let spec = try batchSpec(request)
            let ids = try perform { () throws(ControlError) in try workspace.createBatches(spec) }
            json.object {
                $0.key("ids")
                $0.writer.array(ids) { $0.string($1) }
            }

        case ["batches", batchID]:
            let id = batchID
            try only("GET", "DELETE")
            if method == "GET" {
                guard let batch = workspace.batch(id: id) else { throw .notFound("no batch \(id)") }
                json.raw(batch.renderJSON(omitNullArchivedAt: false))
            } else {
                try perform { () throws(ControlError) in try workspace.deleteBatch(id: id) }
                json.object { fields in
                    fields.string("id", id)
                    fields.bool("deleted", true)
                }
            }

        case ["batches", batchID, "end"]:
            let id = batchID
            try only("POST")
            let counts = try requestCounts(request)
            let batch = try perform { () throws(ControlError) in try workspace.endBatch(id: id, counts: counts) }
            json.raw(batch.renderJSON(omitNullArchivedAt: false))

        case ["batches", batchID, "results"]:
            let id = batchID
            try only("GET", "POST", "DELETE")
            if method != "GET" {
                let profile = method == "DELETE" ? nil : try resultsProfile(request, id: id)
                try perform { () throws(ControlError) in try workspace.setResultsProfile(profile, batchID: id) }
            }
            guard let batch = workspace.batch(id: id) else { throw .notFound("no batch \(id)") }
            let profile = workspace.resultsProfile(batchID: id) ?? .standard
            json.object { fields in
                fields.string("id", id)
                fields.string("results_url", batch.resultsURL)
                fields.int("lines", batch.processingStatus == .ended ? batch.size - batch.requestCounts.processing : 0)
                fields.int("text_bytes", profile.textBytes)
                fields.int("long_line_bytes", profile.longLineBytes)
                fields.int("long_line_every", profile.longLineEvery)
                fields.string("base_url", profile.baseURL)
            }

        case ["results-faults"]:
            try only("GET", "POST", "DELETE")
            json = try faultQueue(\.resultsFaults, request, kindOf: \.kind, parse: self.resultsFault)

        case ["results-truth"]:
            try only("GET")
            let batchID = request.queryValue("batch_id")
            if batchID == nil, workspace.downloadableLines > Self.resultsTruthLineLimit {
                throw .badRequest(
                    "more than \(Self.resultsTruthLineLimit) result lines in this workspace; ask for one batch_id")
            }
            guard let truth = workspace.resultsTruth(batchID: batchID) else {
                throw .notFound("no downloadable results for batch \(batchID ?? "")")
            }
            json = Self.resultsTruthJSON(truth)

        case ["batches", batchID, "cancel"]:
            let id = batchID
            try only("POST")
            let batch = try perform { () throws(ControlError) in try workspace.cancelBatch(id: id) }
            json.raw(batch.renderJSON(omitNullArchivedAt: false))

        case ["advance"]:
            try only("POST")
            guard let seconds = try double(request, "seconds"), seconds >= 0 else {
                throw .badRequest("seconds: a number >= 0 is required")
            }
            let now = workspace.advance(seconds: seconds)
            json.object { fields in
                fields.timestamp("now", now)
                fields.double("now_unix", now)
            }

        case ["faults"]:
            try only("GET", "POST", "DELETE")
            json = try faultQueue(\.faults, request, kindOf: \.kind, parse: self.fault)

        case ["truth"]:
            try only("GET")
            let includeBatches = ["1", "true"].contains(request.queryValue("batches") ?? "")
            json = truthJSON(includeBatches: includeBatches)

        case ["requests"]:
            try only("GET", "DELETE")
            if method == "DELETE" {
                workspace.clearRequestLog()
            }
            let (entries, dropped) = workspace.withState { ($0.requestLog.entries, $0.requestLog.dropped) }
            json.object { fields in
                fields.key("requests")
                fields.writer.array(entries) { $1.write(to: &$0) }
                fields.int("dropped", dropped)
            }

        case ["api_key"]:
            // A rotated key: the API accepts `key` from now on and rejects the old one. The
            // answer does not repeat the key.
            try only("POST")
            guard let key = request.queryValue("key"), !key.isEmpty else { throw .badRequest("key: a non-empty key is required") }
            workspace.setAPIKey(key)
            json.object { $0.bool("rotated", true) }

        case ["reset"]:
            try only("POST")
            let seed = try int(request, "seed", in: 0...Int.max).map { UInt64($0) }
            let batches = try int(request, "batches", in: 0...10_000_000)
            let active = try int(request, "active", in: 0...10_000_000)
            workspace.reset(seed: seed, initialBatches: batches, initialActive: active)
            let truth = workspace.truth()
            json.object { fields in
                fields.bool("reset", true)
                fields.int("batches", truth.batches)
            }

        default:
            throw .notFound("no control endpoint /_sim/\(segments.joined(separator: "/"))")
        }
        return json
    }

    /// One fault queue's endpoint: POST queues `count` copies of the fault the query describes,
    /// DELETE empties the queue, and every method answers with what is queued.
    private func faultQueue<Fault: Sendable>(
        _ queue: WritableKeyPath<WorkspaceState, FaultQueue<Fault>>, _ request: ServerRequest,
        kindOf kind: (Fault) -> String, parse: (ServerRequest) throws(ControlFailure) -> Fault
    ) throws(ControlFailure) -> JSONWriter {
        if request.method == "POST" {
            let fault = try parse(request)
            let count = try int(request, "count", in: 1...100_000) ?? 1
            workspace.withState { $0[keyPath: queue].enqueue(fault, count: count) }
        } else if request.method == "DELETE" {
            workspace.withState { $0[keyPath: queue].removeAll() }
        }
        let pending = workspace.withState { $0[keyPath: queue].pending }
        var json = JSONWriter(capacity: 256)
        json.object { fields in
            fields.int("queued", pending.count)
            fields.key("kinds")
            fields.writer.array(pending) { $0.string(kind($1)) }
        }
        return json
    }

    /// Beyond this the all-batches results truth would hold the event loop for many seconds.
    static let resultsTruthLineLimit = 2_000_000

    private static func resultsTruthJSON(_ truth: ResultsTruth) -> JSONWriter {
        func counts(_ fields: inout JSONWriter.ObjectFields, _ name: String, _ values: [String: Int]) {
            fields.object(name) { object in
                for key in values.keys.sorted() { object.int(key, values[key]) }
            }
        }
        func nested(_ fields: inout JSONWriter.ObjectFields, _ name: String, _ values: [String: [String: Int]]) {
            fields.object(name) { object in
                for key in values.keys.sorted() { counts(&object, key, values[key] ?? [:]) }
            }
        }
        var json = JSONWriter(capacity: 2048)
        json.object { fields in
            fields.int("batches", truth.batches)
            counts(&fields, "lines", truth.lines)
            counts(&fields, "errored_by_type", truth.erroredByType)
            nested(&fields, "tokens", truth.tokens)
            nested(&fields, "stop_reasons", truth.stopReasons)
            counts(&fields, "web_search_requests", truth.webSearchRequests)
            fields.int("bytes", truth.bytes)
        }
        return json
    }

    private func truthJSON(includeBatches: Bool) -> JSONWriter {
        workspace.withState { state in
            let now = state.catchUp()
            let truth = state.truth(now: now)
            var json = JSONWriter(capacity: includeBatches ? truth.batches * 520 + 512 : 512)
            json.object { fields in
                fields.timestamp("now", truth.now)
                fields.double("now_unix", truth.now)
                fields.int("batches", truth.batches)
                fields.object("by_status") { status in
                    status.int("in_progress", truth.inProgress)
                    status.int("canceling", truth.canceling)
                    status.int("ended", truth.ended)
                }
                fields.int("archived", truth.archived)
                fields.object("requests") { requests in
                    requests.int("processing", truth.requests.processing)
                    requests.int("succeeded", truth.requests.succeeded)
                    requests.int("errored", truth.requests.errored)
                    requests.int("canceled", truth.requests.canceled)
                    requests.int("expired", truth.requests.expired)
                }
                fields.int("faults_queued", state.faults.pending.count)
                if includeBatches {
                    fields.key("data")
                    fields.writer.array(state.liveIndicesNewestFirst) { json, index in
                        json.raw(state.renderedJSON(at: index))
                    }
                }
            }
            return json
        }
    }

    // MARK: - Parameters

    private func int(_ request: ServerRequest, _ name: String, in range: ClosedRange<Int>) throws(ControlFailure)
        -> Int?
    {
        guard let text = request.queryValue(name) else { return nil }
        guard let value = Int(text), range.contains(value) else {
            throw .badRequest(
                "\(name): an integer in \(range.lowerBound)...\(range.upperBound) is required, got '\(text)'")
        }
        return value
    }

    private func double(_ request: ServerRequest, _ name: String) throws(ControlFailure) -> Double? {
        guard let text = request.queryValue(name) else { return nil }
        guard let value = Double(text), value.isFinite else { throw .badRequest("\(name): not a number: '\(text)'") }
        return value
    }

    private func requestCounts(_ request: ServerRequest) throws(ControlFailure) -> RequestCounts? {
        let names = ["succeeded", "errored", "canceled", "expired"]
        var values: [Int] = []
        for name in names {
            values.append(try int(request, name, in: 0...100_000) ?? -1)
        }
        guard values.contains(where: { $0 >= 0 }) else { return nil }
        let counts = values.map { max(0, $0) }
        return RequestCounts(succeeded: counts[0], errored: counts[1], canceled: counts[2], expired: counts[3])
    }

    private func batchSpec(_ request: ServerRequest) throws(ControlFailure) -> BatchSpec {
        var status = ProcessingStatus.inProgress
        if let text = request.queryValue("status") {
            guard let value = ProcessingStatus(rawValue: text) else {
                throw .badRequest("status: one of in_progress, canceling, ended; got '\(text)'")
            }
            status = value
        }
        let age = try double(request, "age_seconds") ?? 0
        guard age >= 0 else { throw .badRequest("age_seconds must be >= 0") }
        return BatchSpec(
            count: try int(request, "count", in: 1...100_000) ?? 1,
            requests: try int(request, "requests", in: 1...100_000),
            status: status,
            counts: try requestCounts(request),
            ageSeconds: age
        )
    }

    private func resultsProfile(_ request: ServerRequest, id: String) throws(ControlFailure) -> ResultsProfile {
        var profile = workspace.resultsProfile(batchID: id) ?? .standard
        if let bytes = try int(request, "text_bytes", in: 0...(1 << 30)) { profile.textBytes = bytes }
        if let bytes = try int(request, "long_line_bytes", in: 0...(1 << 30)) { profile.longLineBytes = bytes }
        if let every = try int(request, "long_line_every", in: 1...100_000) { profile.longLineEvery = every }
        if let base = request.queryValue("base_url") {
            guard base.hasPrefix("http://") || base.hasPrefix("https://") else {
                throw .badRequest("base_url: an http:// or https:// URL is required, got '\(base)'")
            }
            profile.baseURL = base.hasSuffix("/") ? String(base.dropLast()) : base
        }
        return profile
    }

    private func resultsFault(_ request: ServerRequest) throws(ControlFailure) -> ResultsFault {
        guard let kind = request.queryValue("kind") else { throw .badRequest("kind is required") }
        switch kind {
        case "cut":
            return .cut(afterBytes: try int(request, "after_bytes", in: 0...Int.max) ?? 1024)
        case "not_found":
            return .notFound
        case "slow":
            return .slow(
                delayMilliseconds: try int(request, "delay_ms", in: 0...60_000) ?? 200,
                pieceBytes: try int(request, "piece_bytes", in: 1...(1 << 24)) ?? 1024
            )
        default:
            throw .badRequest("kind: one of cut, not_found, slow; got '\(kind)'")
        }
    }

    private func fault(_ request: ServerRequest) throws(ControlFailure) -> SimulatedFault {
        guard let kind = request.queryValue("kind") else { throw .badRequest("kind is required") }
        switch kind {
        case "status":
            guard let status = try int(request, "status", in: 100...599) else {
                throw .badRequest("status: an HTTP status code is required for kind=status")
            }
            return .status(
                status,
                retryAfter: request.queryValue("retry_after"),
                retryAfterMilliseconds: request.queryValue("retry_after_ms"),
                shouldRetry: request.queryValue("should_retry")
            )
        case "spend_cap": return .spendCap
        case "html": return .html(status: try int(request, "status", in: 100...599) ?? 502)
        case "garbage": return .garbage
        case "wrong_types": return .wrongTypes
        case "truncated": return .truncated
        case "delay": return .delay(milliseconds: try int(request, "delay_ms", in: 0...86_400_000) ?? 1000)
        case "hang": return .hang
        case "close": return .close
        case "endless_cursor": return .endlessCursor
        case "wrong_content_type": return .wrongContentType
        default:
            throw .badRequest(
                "kind: one of status, spend_cap, html, garbage, wrong_types, truncated, delay, hang, close, "
                    + "endless_cursor, wrong_content_type; got '\(kind)'"
            )
        }
    }
}
