/// What one batch's results file says, counted: requests by result type, errored requests by
/// error type, tokens by model and token type, stop reasons and web searches by model. Holds
/// counts and short label values only, never content.
///
/// Each label keeps at most ``distinctLimit`` distinct values per batch (further ones count
/// under `other`), so a hostile or broken file cannot grow it without bound; the workspace
/// totals apply their own, usually smaller, cap when the tally is added to them.
public struct ResultsTally: Sendable, Equatable, Codable {
    /// The result types the API documents, in its order.
    public static let documentedResults = ["succeeded", "errored", "canceled", "expired"]
    /// The label value for anything beyond a cardinality cap.
    public static let other = "other"
    /// The label value when a line has no model (or no result type, or no error type).
    public static let unknown = "unknown"
    /// The stop reason label when `stop_reason` is null or absent.
    public static let noStopReason = "none"

    public enum TokenType: String, Sendable, Codable, CaseIterable, Comparable {
        case input
        case output
        case cacheRead = "cache_read"
        case cacheWrite5m = "cache_write_5m"
        case cacheWrite1h = "cache_write_1h"

        var rank: Int {
            switch self {
            case .input: 0
            case .output: 1
            case .cacheRead: 2
            case .cacheWrite5m: 3
            case .cacheWrite1h: 4
            }
        }

        public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rank < rhs.rank }
    }

    public struct ModelTokenType: Sendable, Hashable, Codable {
        public var model: String
        public var tokenType: TokenType

        public init(model: String, tokenType: TokenType) {
            self.model = model
            self.tokenType = tokenType
        }
    }

    public struct ModelStopReason: Sendable, Hashable, Codable {
        public var model: String
        public var stopReason: String

        public init(model: String, stopReason: String) {
            self.model = model
            self.stopReason = stopReason
        }
    }

    /// Lines by `result.type`.
    public var results: [String: Int] = [:]
    /// Errored lines by `result.error.error.type`.
    public var erroredByType: [String: Int] = [:]
    public var tokens: [ModelTokenType: Int] = [:]
    public var stopReasons: [ModelStopReason: Int] = [:]
    public var webSearchRequests: [String: Int] = [:]
    /// Body bytes read.
    public var bytes: UInt64 = 0
    /// Well-formed lines.
    public var lines = 0
    public var malformedLines = 0
    /// Distinct values kept per label in one tally.
    public var distinctLimit: Int

    private var models: Set<String> = []
    private var stopReasonValues: Set<String> = []
    /// The last line's model, as bytes and as label: lines of one batch mostly share a model,
    /// and this saves building a String for each.
    private var lastModel: (bytes: [UInt8], label: String)?

    public init(distinctLimit: Int = 1000) {
        self.distinctLimit = distinctLimit
    }

    enum CodingKeys: String, CodingKey {
        case results, erroredByType, tokens, stopReasons, webSearchRequests, bytes, lines, malformedLines, distinctLimit
        case models, stopReasonValues
    }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.results == rhs.results && lhs.erroredByType == rhs.erroredByType && lhs.tokens == rhs.tokens
            && lhs.stopReasons == rhs.stopReasons && lhs.webSearchRequests == rhs.webSearchRequests
            && lhs.bytes == rhs.bytes && lhs.lines == rhs.lines && lhs.malformedLines == rhs.malformedLines
    }

    // MARK: Counting

    /// Counts one well-formed line.
    public mutating func add(_ line: ResultsLine) {
        lines += 1
        let rawType = line.resultType.string ?? Self.unknown
        let type = Self.capped(rawType, in: results.count, limit: distinctLimit, isKnown: results[rawType] != nil)
        results[type, default: 0] += 1
        if type == "errored" {
            let raw = line.errorType.string ?? Self.unknown
            let errorType = Self.capped(raw, in: erroredByType.count, limit: distinctLimit, isKnown: erroredByType[raw] != nil)
            erroredByType[errorType, default: 0] += 1
        }
        guard line.hasMessage else { return }
        let model = modelLabel(line.model)
        let rawStop = line.stopReason.string ?? Self.noStopReason
        let stop = Self.capped(rawStop, in: stopReasonValues.count, limit: distinctLimit, isKnown: stopReasonValues.contains(rawStop))
        stopReasonValues.insert(stop)
        stopReasons[ModelStopReason(model: model, stopReason: stop), default: 0] += 1

        let (write5m, write1h): (Int, Int)
        if line.ephemeral5mInputTokens != nil || line.ephemeral1hInputTokens != nil {
            write5m = line.ephemeral5mInputTokens ?? 0
            write1h = line.ephemeral1hInputTokens ?? 0
        } else {
            // Before the 1-hour cache existed every cache write was a 5-minute one.
            write5m = line.cacheCreationInputTokens ?? 0
            write1h = 0
        }
        addTokens(model, .input, line.inputTokens ?? 0)
        addTokens(model, .output, line.outputTokens ?? 0)
        addTokens(model, .cacheRead, line.cacheReadInputTokens ?? 0)
        addTokens(model, .cacheWrite5m, write5m)
        addTokens(model, .cacheWrite1h, write1h)
        if let searches = line.webSearchRequests {
            webSearchRequests[model, default: 0] += searches
        }
    }

    /// Counts one malformed line: the tally can then never be consistent.
    public mutating func addMalformed() {
        malformedLines += 1
    }

    /// Counts a scanner event.
    public mutating func add(_ event: ResultsLineScanner.Event) {
        switch event {
        case .line(let line): add(line)
        case .malformed: addMalformed()
        }
    }

    private mutating func addTokens(_ model: String, _ type: TokenType, _ count: Int) {
        tokens[ModelTokenType(model: model, tokenType: type), default: 0] += count
    }

    private mutating func modelLabel(_ captured: CapturedString) -> String {
        if let lastModel, captured.isPresent, !captured.truncated, lastModel.bytes == captured.bytes {
            return lastModel.label
        }
        let raw = captured.string ?? Self.unknown
        let label = Self.capped(raw, in: models.count, limit: distinctLimit, isKnown: models.contains(raw))
        models.insert(label)
        if captured.isPresent, !captured.truncated { lastModel = (captured.bytes, label) }
        return label
    }

    static func capped(_ value: String, in distinct: Int, limit: Int, isKnown: Bool) -> String {
        isKnown || distinct < limit ? value : other
    }

    // MARK: Checking

    /// Whether the file was read whole and agrees with the batch: no malformed line, nothing
    /// still processing, and as many lines of each documented result type as `request_counts`
    /// says. Lines of a result type the API does not document yet are allowed: a new type
    /// would come with a count this exporter does not read yet.
    public func consistent(with counts: RequestCounts) -> Bool {
        malformedLines == 0 && counts.processing == 0
            && results["succeeded", default: 0] == counts.succeeded
            && results["errored", default: 0] == counts.errored
            && results["canceled", default: 0] == counts.canceled
            && results["expired", default: 0] == counts.expired
    }

    /// Tokens of every type, all models.
    public var totalTokens: Int { tokens.values.reduce(0, +) }
}

/// A results download in progress: the scanner and the tally it fills, fed chunk by chunk.
public struct ResultsStreamTally: Sendable {
    private var scanner = ResultsLineScanner()
    public private(set) var tally: ResultsTally

    public init(distinctLimit: Int = 1000) {
        tally = ResultsTally(distinctLimit: distinctLimit)
    }

    public mutating func feed(_ chunk: UnsafeRawBufferPointer) {
        // Moved out and back, not copied: the tally's dictionaries stay uniquely referenced.
        var tally = ResultsTally(distinctLimit: 0)
        swap(&tally, &self.tally)
        scanner.feed(chunk) { tally.add($0) }
        tally.bytes = scanner.bytesScanned
        swap(&tally, &self.tally)
    }

    public mutating func feed(_ chunk: [UInt8]) {
        chunk.withUnsafeBytes { feed($0) }
    }

    /// Ends the stream (a last line without a newline counts now) and gives the tally.
    public mutating func finish() -> ResultsTally {
        var tally = self.tally
        scanner.finish { tally.add($0) }
        tally.bytes = scanner.bytesScanned
        self.tally = tally
        return tally
    }
}
