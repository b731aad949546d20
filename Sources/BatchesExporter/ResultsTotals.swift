import BatchesAPI

/// What every counted results file of one workspace added up to: the values behind the
/// `anthropic_message_batches_*` results counters. Pure, `Codable` for `--storage.path`.
///
/// Label values are capped per label (`cap` distinct values besides the documented ones);
/// a value first seen once its label is full counts under `other`, so one odd file cannot
/// blow up the series count. Cost is computed from the real model id before capping, so
/// a capped model's cost still counts (under `other`).
public struct ResultsTotals: Sendable, Equatable, Codable {
    public var results: [String: Int] = [:]
    public var erroredByType: [String: Int] = [:]
    public var tokens: [ResultsTally.ModelTokenType: Int] = [:]
    public var stopReasons: [ResultsTally.ModelStopReason: Int] = [:]
    public var webSearchRequests: [String: Int] = [:]
    /// Estimated USD by model (only with a price table).
    public var costUSD: [String: Double] = [:]
    /// Tokens of models without a price (only with a price table).
    public var unpricedTokens: [String: Int] = [:]
    /// Batches whose results were counted.
    public var batches = 0

    private var models: Set<String> = []
    private var resultTypes: Set<String> = []
    private var errorTypes: Set<String> = []
    private var stopReasonValues: Set<String> = []

    public init() {}

    /// Adds one complete, consistent batch.
    public mutating func add(_ tally: ResultsTally, cap: Int, prices: PriceTable?) {
        batches += 1
        for (type, count) in tally.results.sorted(by: { $0.key < $1.key }) {
            let label = ResultsTally.documentedResults.contains(type) ? type : Self.admit(type, into: &resultTypes, cap: cap)
            results[label, default: 0] += count
        }
        for (type, count) in tally.erroredByType.sorted(by: { $0.key < $1.key }) {
            erroredByType[Self.admit(type, into: &errorTypes, cap: cap), default: 0] += count
        }
        for (key, count) in tally.tokens.sorted(by: { ($0.key.model, $0.key.tokenType) < ($1.key.model, $1.key.tokenType) }) {
            let model = Self.admit(key.model, into: &models, cap: cap)
            tokens[ResultsTally.ModelTokenType(model: model, tokenType: key.tokenType), default: 0] += count
            guard let prices else { continue }
            if let cost = prices.cost(model: key.model, type: key.tokenType, count: count) {
                costUSD[model, default: 0] += cost
            } else {
                unpricedTokens[model, default: 0] += count
            }
        }
        for (key, count) in tally.stopReasons.sorted(by: { ($0.key.model, $0.key.stopReason) < ($1.key.model, $1.key.stopReason) }) {
            let model = Self.admit(key.model, into: &models, cap: cap)
            let reason = Self.admit(key.stopReason, into: &stopReasonValues, cap: cap)
            stopReasons[ResultsTally.ModelStopReason(model: model, stopReason: reason), default: 0] += count
        }
        for (model, count) in tally.webSearchRequests.sorted(by: { $0.key < $1.key }) {
            webSearchRequests[Self.admit(model, into: &models, cap: cap), default: 0] += count
        }
    }

    /// The label for `value`: itself if known or if there is room, else `other`.
    static func admit(_ value: String, into known: inout Set<String>, cap: Int) -> String {
        if value == ResultsTally.other || known.contains(value) { return value }
        guard known.count < cap else { return ResultsTally.other }
        known.insert(value)
        return value
    }
}
