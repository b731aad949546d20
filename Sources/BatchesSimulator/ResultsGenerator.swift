/// The results file of an ended batch, generated on the fly: every line is a pure function of the
/// batch's seed and the line's index, so the file is never held in memory, serving it twice gives
/// the same bytes, and the ground truth (`/_sim/results-truth`) comes from the same generator
/// rather than from parsing what was served.

/// How a batch's results look beyond what its counts fix; set per batch through
/// `POST /_sim/batches/{id}/results`.
public struct ResultsProfile: Sendable, Equatable {
    /// Text bytes in every succeeded line's content (large-file mode: 100,000 requests of
    /// 10,240 bytes make a file over 1 GB); `nil` for realistic sizes, a few to a few hundred.
    public var textBytes: Int?
    /// Every `longLineEvery`-th line, if it succeeded, carries this many bytes of text.
    public var longLineBytes: Int?
    public var longLineEvery: Int
    /// Where `results_url` points instead of the workspace's base URL (another host or port).
    public var baseURL: String?

    public init(textBytes: Int? = nil, longLineBytes: Int? = nil, longLineEvery: Int = 100, baseURL: String? = nil) {
        self.textBytes = textBytes
        self.longLineBytes = longLineBytes
        self.longLineEvery = max(1, longLineEvery)
        self.baseURL = baseURL
    }

    public static let standard = ResultsProfile()
}

/// Everything that determines one batch's results file.
struct ResultsPlan: Sendable {
    let batchID: String
    let counts: RequestCounts
    let seed: UInt64
    let profile: ResultsProfile
    /// Lines come out in a shuffled order: line `i` has result slot `(i * multiplier + offset) % n`,
    /// a bijection because the multiplier is coprime to `n`; slots map to result types in
    /// blocks of the counts. O(1) per line and no table.
    private let multiplier: Int
    private let offset: Int
    let trailingNewline: Bool

    init(batchID: String, counts: RequestCounts, workspaceSeed: UInt64, profile: ResultsProfile) {
        self.batchID = batchID
        self.counts = counts
        self.profile = profile
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325  // FNV-1a of the id, mixed with the workspace seed
        for byte in batchID.utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3
        }
        seed = hash ^ (workspaceSeed &* 0x9E37_79B9_7F4A_7C15)
        var rng = SplitMix64(seed: seed)
        let n = max(1, counts.total - counts.processing)
        var multiplier = Int(rng.next() % UInt64(n)) | 1
        while Self.gcd(multiplier, n) != 1 { multiplier += 1 }
        self.multiplier = multiplier
        offset = Int(rng.next() % UInt64(n))
        trailingNewline = rng.next() % 4 != 0
    }

    private static func gcd(_ a: Int, _ b: Int) -> Int {
        var (a, b) = (a, b)
        while b != 0 { (a, b) = (b, a % b) }
        return a
    }

    var lineCount: Int { counts.succeeded + counts.errored + counts.canceled + counts.expired }

    func kind(ofLine index: Int) -> ResultLine.Kind {
        let slot = (index % lineCount * multiplier + offset) % lineCount
        if slot < counts.succeeded { return .succeeded }
        if slot < counts.succeeded + counts.errored { return .errored }
        if slot < counts.succeeded + counts.errored + counts.canceled { return .canceled }
        return .expired
    }

    func line(_ index: Int) -> ResultLine {
        ResultLine(plan: self, index: index)
    }
}

/// A field that may be a value, `null`, or missing, as the API's usage fields are across versions.
enum OptionalField<Value> {
    case absent
    case null
    case value(Value)
}

/// One line of a results file, before rendering.
struct ResultLine {
    enum Kind: String {
        case succeeded, errored, canceled, expired
    }

    static let models = [
        "claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001", "claude-opus-4-1-20250805",
        "claude-3-5-haiku-20241022",
    ]
    static let stopReasons = [
        "end_turn", "max_tokens", "stop_sequence", "tool_use", "pause_turn", "refusal",
        "model_context_window_exceeded",
    ]
    /// The documented types and one the docs do not list, which a client must survive.
    static let errorTypes = [
        "invalid_request_error", "overloaded_error", "api_error", "rate_limit_error", "timeout_error",
        "authentication_error", "permission_error", "not_found_error", "billing_error", "quota_exceeded_error",
    ]

    struct Usage {
        var input: Int
        var output: Int
        var cacheCreationInputTokens: OptionalField<Int>
        var cacheReadInputTokens: OptionalField<Int>
        var cacheCreation: OptionalField<(fiveMinutes: Int, oneHour: Int)>
        var serverToolUse: OptionalField<(webSearch: Int, webFetch: Int)>
        var serviceTier: String?

        /// Cache writes as billed: the breakdown when given, else all of
        /// `cache_creation_input_tokens` as 5-minute writes.
        var cacheWrites: (fiveMinutes: Int, oneHour: Int) {
            if case .value(let breakdown) = cacheCreation { return breakdown }
            if case .value(let tokens) = cacheCreationInputTokens { return (tokens, 0) }
            return (0, 0)
        }

        var cacheRead: Int {
            if case .value(let tokens) = cacheReadInputTokens { return tokens }
            return 0
        }

        var webSearchRequests: Int {
            if case .value(let use) = serverToolUse { return use.webSearch }
            return 0
        }
    }

    let index: Int
    let customID: String
    let kind: Kind
    let isLast: Bool
    let trailingNewline: Bool
    var model = ""
    var stopReason = ""
    var usage = Usage(
        input: 0, output: 0, cacheCreationInputTokens: .absent, cacheReadInputTokens: .absent, cacheCreation: .absent,
        serverToolUse: .absent
    )
    var errorType = ""
    /// Text content length in bytes, and whether it is plain filler (long lines) or words.
    var textBytes = 0
    var fillerText = false
    var textSeed: UInt64 = 0
    var messageID = ""
    var toolUse = false
    /// Unknown fields here and there, which clients must ignore.
    var extraTopLevel = false
    var extraInMessage = false
    var extraInUsage = false

    init(plan: ResultsPlan, index: Int) {
        self.index = index
        customID = "req-\(String(index, radix: 10))"
        kind = plan.kind(ofLine: index)
        isLast = index == plan.lineCount - 1
        trailingNewline = plan.trailingNewline
        var rng = SplitMix64(seed: plan.seed ^ (UInt64(index) &+ 1) &* 0xD6E8_FEB8_6659_FD93)
        extraTopLevel = rng.chance(0.03)
        switch kind {
        case .succeeded:
            let modelRoll = rng.unit()
            model = Self.models[modelRoll < 0.4 ? 0 : modelRoll < 0.65 ? 1 : modelRoll < 0.8 ? 2 : 3]
            let stopRoll = rng.unit()
            let stopIndex =
                switch stopRoll {
                case ..<0.55: 0
                case ..<0.67: 1
                case ..<0.73: 2
                case ..<0.85: 3
                case ..<0.89: 4
                case ..<0.94: 5
                default: 6
                }
            stopReason = Self.stopReasons[stopIndex]
            toolUse = stopIndex == 3
            messageID = rng.identifier(prefix: "msg_")
            usage = Self.sampleUsage(&rng, maxTokensHit: stopIndex == 1)
            if let bytes = plan.profile.longLineBytes, index % plan.profile.longLineEvery == 0 {
                textBytes = bytes
                fillerText = true
            } else if let bytes = plan.profile.textBytes {
                textBytes = bytes
                fillerText = true
            } else {
                textBytes = stopIndex == 5 ? Int(rng.logUniform(20...120)) : Int(rng.logUniform(2...900))
            }
            textSeed = rng.next()
            extraInMessage = rng.chance(0.05)
            extraInUsage = rng.chance(0.05)
        case .errored:
            let roll = rng.unit()
            let weights = [0.40, 0.15, 0.12, 0.05, 0.05, 0.02, 0.03, 0.05, 0.03, 0.10]
            var cumulative = 0.0
            errorType = Self.errorTypes.last ?? ""
            for (type, weight) in zip(Self.errorTypes, weights) {
                cumulative += weight
                if roll < cumulative {
                    errorType = type
                    break
                }
            }
        case .canceled, .expired:
            break
        }
    }

    private static func sampleUsage(_ rng: inout SplitMix64, maxTokensHit: Bool) -> Usage {
        var usage = Usage(
            input: Int(rng.logUniform(8...60_000)),
            output: maxTokensHit ? 4096 : Int(rng.logUniform(1...8000)),
            cacheCreationInputTokens: .absent, cacheReadInputTokens: .absent, cacheCreation: .absent,
            serverToolUse: .absent, serviceTier: rng.chance(0.9) ? "batch" : nil
        )
        switch rng.unit() {
        case ..<0.15:
            break  // an old response: no cache fields at all
        case ..<0.30:
            usage.cacheCreationInputTokens = .null
            usage.cacheReadInputTokens = .null
            usage.cacheCreation = .null
        case ..<0.55:
            usage.cacheCreationInputTokens = .value(0)
            usage.cacheReadInputTokens = .value(0)
            usage.cacheCreation = .value((0, 0))
        case ..<0.75:
            // Total only, no breakdown: billed as 5-minute writes.
            usage.cacheCreationInputTokens = .value(Int(rng.logUniform(1...20_000)))
            usage.cacheReadInputTokens = .value(rng.chance(0.5) ? Int(rng.logUniform(1...50_000)) : 0)
            usage.cacheCreation = rng.chance(0.5) ? .null : .absent
        default:
            let fiveMinutes = rng.chance(0.7) ? Int(rng.logUniform(1...20_000)) : 0
            let oneHour = rng.chance(0.4) ? Int(rng.logUniform(1...20_000)) : 0
            usage.cacheCreationInputTokens = .value(fiveMinutes + oneHour)
            usage.cacheReadInputTokens = .value(Int(rng.logUniform(1...80_000)))
            usage.cacheCreation = .value((fiveMinutes, oneHour))
        }
        let toolRoll = rng.unit()
        if toolRoll < 0.1 {
            usage.serverToolUse = .null
        } else if toolRoll < 0.3 {
            usage.serverToolUse = .value((Int(rng.uniform(0...6)), Int(rng.uniform(0...3))))
        }
        return usage
    }

    // MARK: - Rendering

    private static let words: [StaticString] = [
        "the", "batch", "model", "answer", "token", "result", "summary", "of", "and", "a", "report", "data",
        "quickly", "Claude", "says", "line", "value", "cache", "window", "request",
    ]
    /// Plain ASCII filler for long lines: nothing to escape, so a multi-megabyte text is a copy.
    private static let filler: [UInt8] = {
        var bytes: [UInt8] = []
        var rng = SplitMix64(seed: 0xF111_E4)
        while bytes.count < 65_536 {
            let word = words[Int(rng.next() % UInt64(words.count))]
            word.withUTF8Buffer { bytes.append(contentsOf: $0) }
            bytes.append(UInt8(ascii: " "))
        }
        return Array(bytes.prefix(65_536))
    }()

    /// Appends the line, with its newline unless it is the last line of a file that ends without.
    func render(into json: inout JSONWriter) {
        json.raw("{\"custom_id\":")
        json.string(customID)
        switch kind {
        case .succeeded: json.raw(",\"result\":{\"type\":\"succeeded\"")
        case .errored: json.raw(",\"result\":{\"type\":\"errored\"")
        case .canceled: json.raw(",\"result\":{\"type\":\"canceled\"")
        case .expired: json.raw(",\"result\":{\"type\":\"expired\"")
        }
        switch kind {
        case .succeeded:
            json.raw(",\"message\":{\"id\":")
            json.string(messageID)
            json.raw(",\"type\":\"message\",\"role\":\"assistant\",\"model\":")
            json.string(model)
            json.raw(",\"content\":[{\"type\":\"text\",\"text\":")
            renderText(into: &json)
            json.raw("}")
            if toolUse {
                json.raw(",{\"type\":\"tool_use\",\"id\":\"toolu_")
                json.raw(Array(messageID.utf8.dropFirst(4)))
                json.raw("\",\"name\":\"get_weather\",\"input\":{\"city\":\"Z\\u00fcrich\",\"days\":3}}")
            }
            json.raw("],\"stop_reason\":")
            json.string(stopReason)
            json.raw(",\"stop_sequence\":")
            json.string(stopReason == "stop_sequence" ? "\n\nEND" : nil)
            json.raw(",\"usage\":")
            renderUsage(into: &json)
            if extraInMessage {
                json.raw(",\"container\":null,\"x_sim_unknown\":{\"nested\":[1,2,{\"deep\":true}]}")
            }
            json.raw("}")
        case .errored:
            json.raw(",\"error\":{\"type\":\"error\",\"error\":{\"type\":")
            json.string(errorType)
            json.raw(",\"message\":")
            json.string(Self.errorMessage(errorType))
            json.raw("}}")
        case .canceled, .expired:
            break
        }
        json.raw("}")
        if extraTopLevel {
            json.raw(",\"x_sim_note\":\"unknown fields must be ignored\"")
        }
        json.raw("}")
        if !isLast || trailingNewline {
            json.raw("\n")
        }
    }

    private static func errorMessage(_ type: String) -> String {
        switch type {
        case "invalid_request_error": "messages.0.content: Input should be a valid list"
        case "overloaded_error": "Overloaded"
        case "rate_limit_error": "Number of request tokens has exceeded your per-minute rate limit"
        case "quota_exceeded_error": "Monthly quota exceeded for this workspace"
        default: "Simulated \(type)"
        }
    }

    private func renderText(into json: inout JSONWriter) {
        if fillerText {
            json.raw("\"")
            var remaining = textBytes
            while remaining > 0 {
                let piece = min(remaining, Self.filler.count)
                json.bytes.append(contentsOf: Self.filler[0..<piece])
                remaining -= piece
            }
            json.raw("\"")
            return
        }
        var rng = SplitMix64(seed: textSeed)
        var text: [UInt8] = []
        text.reserveCapacity(textBytes + 16)
        while text.count < textBytes {
            let roll = rng.next() % 64
            switch roll {
            case 0: text.append(0x0A)  // a newline, escaped as \n
            case 1: text.append(contentsOf: "\"quoted\"".utf8)
            case 2: text.append(contentsOf: "caf\u{E9} \u{2615} ".utf8)  // multi-byte UTF-8
            case 3: text.append(contentsOf: "tab\there ".utf8)
            default:
                Self.words[Int(roll % UInt64(Self.words.count))].withUTF8Buffer { text.append(contentsOf: $0) }
                text.append(UInt8(ascii: " "))
            }
        }
        text.withUnsafeBufferPointer { json.string(utf8: $0) }
    }

    private func renderUsage(into json: inout JSONWriter) {
        json.raw("{\"input_tokens\":")
        json.int(usage.input)
        json.raw(",\"output_tokens\":")
        json.int(usage.output)
        Self.render(usage.cacheCreationInputTokens, key: ",\"cache_creation_input_tokens\":", into: &json) { $1.int($0) }
        Self.render(usage.cacheReadInputTokens, key: ",\"cache_read_input_tokens\":", into: &json) { $1.int($0) }
        Self.render(usage.cacheCreation, key: ",\"cache_creation\":", into: &json) { value, json in
            json.raw("{\"ephemeral_5m_input_tokens\":")
            json.int(value.fiveMinutes)
            json.raw(",\"ephemeral_1h_input_tokens\":")
            json.int(value.oneHour)
            json.raw("}")
        }
        Self.render(usage.serverToolUse, key: ",\"server_tool_use\":", into: &json) { value, json in
            json.raw("{\"web_search_requests\":")
            json.int(value.webSearch)
            json.raw(",\"web_fetch_requests\":")
            json.int(value.webFetch)
            json.raw("}")
        }
        if let tier = usage.serviceTier {
            json.raw(",\"service_tier\":")
            json.string(tier)
        }
        if extraInUsage {
            json.raw(",\"x_sim_future_tokens\":7")
        }
        json.raw("}")
    }

    private static func render<Value>(
        _ field: OptionalField<Value>, key: StaticString, into json: inout JSONWriter,
        value render: (Value, inout JSONWriter) -> Void
    ) {
        switch field {
        case .absent:
            break
        case .null:
            json.raw(key)
            json.null()
        case .value(let value):
            json.raw(key)
            render(value, &json)
        }
    }
}

/// Exact totals over results files, for tests to compare a client's findings with.
public struct ResultsTruth: Sendable, Equatable {
    public var batches = 0
    /// Lines by `result.type`.
    public var lines: [String: Int] = [:]
    /// Errored lines by `result.error.error.type`.
    public var erroredByType: [String: Int] = [:]
    /// Tokens by model, then by `input`, `output`, `cache_read`, `cache_write_5m`, `cache_write_1h`.
    public var tokens: [String: [String: Int]] = [:]
    /// Succeeded lines by model, then by stop reason.
    public var stopReasons: [String: [String: Int]] = [:]
    public var webSearchRequests: [String: Int] = [:]
    public var bytes = 0

    public init() {}

    mutating func add(_ plan: ResultsPlan) {
        batches += 1
        var json = JSONWriter(capacity: 4096)
        for index in 0..<plan.lineCount {
            let line = plan.line(index)
            json.bytes.removeAll(keepingCapacity: true)
            line.render(into: &json)
            bytes += json.bytes.count
            lines[line.kind.rawValue, default: 0] += 1
            switch line.kind {
            case .succeeded:
                let usage = line.usage
                let writes = usage.cacheWrites
                var modelTokens = tokens[line.model, default: [:]]
                modelTokens["input", default: 0] += usage.input
                modelTokens["output", default: 0] += usage.output
                modelTokens["cache_read", default: 0] += usage.cacheRead
                modelTokens["cache_write_5m", default: 0] += writes.fiveMinutes
                modelTokens["cache_write_1h", default: 0] += writes.oneHour
                tokens[line.model] = modelTokens
                stopReasons[line.model, default: [:]][line.stopReason, default: 0] += 1
                webSearchRequests[line.model, default: 0] += usage.webSearchRequests
            case .errored:
                erroredByType[line.errorType, default: 0] += 1
            case .canceled, .expired:
                break
            }
        }
    }
}

/// Feeds a results file to the listener piece by piece, rendering lines as it goes.
struct ResultsStream {
    let plan: ResultsPlan
    /// Pieces are emitted once this many bytes have piled up (a long line may exceed it).
    let pieceBytes: Int
    /// Fault: close the connection after this many body bytes.
    let cutAfterBytes: Int?
    private var nextLine = 0
    private var sent = 0
    private var cut = false
    private var json = JSONWriter()

    init(plan: ResultsPlan, pieceBytes: Int, cutAfterBytes: Int?) {
        self.plan = plan
        self.pieceBytes = max(1, pieceBytes)
        self.cutAfterBytes = cutAfterBytes
    }

    /// The next piece's bytes, or `nil` at the end; `abort` when a cut fault ends the stream.
    mutating func nextBytes() -> (bytes: [UInt8]?, abort: Bool) {
        if cut { return (nil, true) }
        json.bytes.removeAll(keepingCapacity: true)
        while nextLine < plan.lineCount, json.bytes.count < pieceBytes {
            plan.line(nextLine).render(into: &json)
            nextLine += 1
        }
        if let limit = cutAfterBytes, sent + json.bytes.count >= limit {
            cut = true
            let bytes = Array(json.bytes.prefix(max(0, limit - sent)))
            sent = limit
            return (bytes, false)
        }
        guard !json.bytes.isEmpty else {
            // A cut fault past the end of the file still cuts: the client sees no terminating chunk.
            return (nil, cutAfterBytes != nil)
        }
        sent += json.bytes.count
        return (json.bytes, false)
    }
}
