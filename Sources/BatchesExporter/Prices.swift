import BatchesAPI
import Yams

/// `--results.prices-file`: what tokens cost, per model, so the exporter can estimate what
/// batches cost. Nothing is built in: prices change often, and a stale table that looked
/// authoritative would be worse than none.
///
/// ```yaml
/// # USD per million tokens, as on Anthropic's pricing page (standard, not batch, prices).
/// batch_discount: 0.5          # optional; the fraction batch usage takes off (default 0.5)
/// models:
///   claude-sonnet-4-5-20250929:   # an exact model id ...
///     input: 3
///     output: 15
///     cache_read: 0.30
///     cache_write_5m: 3.75
///     cache_write_1h: 6
///   claude-opus-4-1*:             # ... or a prefix, ending in `*`
///     input: 15
///     output: 75
///     cache_read: 1.50
///     cache_write_5m: 18.75
///     cache_write_1h: 30
/// ```
///
/// A model id takes its exact entry if there is one, else the entry with the longest
/// matching prefix (`claude-opus-4-1*` beats `claude-opus-4*`), else it has no price and its
/// tokens count in `anthropic_message_batches_unpriced_tokens_total`. All five prices are
/// required in every entry, so no token type is silently free. Prices are list prices; the
/// estimate is `tokens × price / 1e6 × (1 − batch_discount)`. Prices that depend on prompt
/// length or on request options (long-context tiers, data residency) are not modelled.
public struct PriceTable: Sendable, Equatable {
    /// USD per million tokens for each token type.
    public struct Prices: Sendable, Equatable {
        public var input: Double
        public var output: Double
        public var cacheRead: Double
        public var cacheWrite5m: Double
        public var cacheWrite1h: Double

        public init(input: Double, output: Double, cacheRead: Double, cacheWrite5m: Double, cacheWrite1h: Double) {
            self.input = input
            self.output = output
            self.cacheRead = cacheRead
            self.cacheWrite5m = cacheWrite5m
            self.cacheWrite1h = cacheWrite1h
        }

        public func perMillion(_ type: ResultsTally.TokenType) -> Double {
            switch type {
            case .input: input
            case .output: output
            case .cacheRead: cacheRead
            case .cacheWrite5m: cacheWrite5m
            case .cacheWrite1h: cacheWrite1h
            }
        }
    }

    public var batchDiscount: Double
    public var exact: [String: Prices]
    /// Longest first, so the first match is the longest.
    public private(set) var prefixes: [(prefix: String, prices: Prices)]

    public init(batchDiscount: Double = 0.5, exact: [String: Prices] = [:], prefixes: [String: Prices] = [:]) {
        self.batchDiscount = batchDiscount
        self.exact = exact
        self.prefixes = prefixes.map { ($0.key, $0.value) }.sorted { ($0.prefix.count, $1.prefix) > ($1.prefix.count, $0.prefix) }
    }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.batchDiscount == rhs.batchDiscount && lhs.exact == rhs.exact
            && lhs.prefixes.map(\.prefix) == rhs.prefixes.map(\.prefix) && lhs.prefixes.map(\.prices) == rhs.prefixes.map(\.prices)
    }

    /// The prices for a model id, or `nil` when none applies.
    public func prices(for model: String) -> Prices? {
        if let prices = exact[model] { return prices }
        return prefixes.first { model.hasPrefix($0.prefix) }?.prices
    }

    /// Estimated USD for `count` tokens of `type`, batch discount applied; `nil` without a price.
    public func cost(model: String, type: ResultsTally.TokenType, count: Int) -> Double? {
        guard let prices = prices(for: model) else { return nil }
        return Double(count) * prices.perMillion(type) / 1_000_000 * (1 - batchDiscount)
    }

    // MARK: Loading

    /// A problem with the prices file, with the line it is on.
    public struct LoadError: Error, Sendable, CustomStringConvertible, Equatable {
        public var file: String
        public var line: Int?
        public var problem: String

        public var description: String {
            line.map { "\(file):\($0): \(problem)" } ?? "\(file): \(problem)"
        }
    }

    /// Parses the YAML text of a prices file; `file` names it in errors.
    public static func parse(_ text: String, file: String) throws(LoadError) -> PriceTable {
        func error(_ node: Node?, _ problem: String) -> LoadError {
            LoadError(file: file, line: node?.mark?.line, problem: problem)
        }
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: text) else { throw error(nil, "the file is empty") }
            root = node
        } catch let loadError as LoadError {
            throw loadError
        } catch let yamlError as YamlError {
            let line: Int? =
                switch yamlError {
                case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _): mark.line
                default: nil
                }
            throw LoadError(file: file, line: line, problem: "not valid YAML")
        } catch {
            throw LoadError(file: file, line: nil, problem: "not valid YAML")
        }

        func mapping(_ node: Node, _ what: String, allowed: Set<String>) throws(LoadError) -> [(key: String, keyNode: Node, value: Node)] {
            guard case .mapping(let mapping) = node else { throw error(node, "\(what) must be a mapping") }
            var entries: [(key: String, keyNode: Node, value: Node)] = []
            var seen: Set<String> = []
            for (key, value) in mapping {
                guard let name = key.string else { throw error(key, "\(what): keys must be strings") }
                if !allowed.isEmpty, !allowed.contains(name) {
                    throw error(key, "\(what): unknown key \"\(name)\" (known: \(allowed.sorted().joined(separator: ", ")))")
                }
                guard seen.insert(name).inserted else { throw error(key, "\(what): \"\(name)\" given twice") }
                entries.append((name, key, value))
            }
            return entries
        }
        func number(_ node: Node?, _ what: String, in parent: Node) throws(LoadError) -> Double {
            guard let node else { throw error(parent, "\(what) is required") }
            guard case .scalar(let scalar) = node, let value = Double(scalar.string), value.isFinite, value >= 0 else {
                throw error(node, "\(what) must be a number of USD per million tokens, 0 or more")
            }
            return value
        }

        let top = try mapping(root, "prices file", allowed: ["batch_discount", "models"])
        var discount = 0.5
        if let node = top.first(where: { $0.key == "batch_discount" })?.value {
            guard case .scalar(let scalar) = node, let value = Double(scalar.string), value >= 0, value < 1 else {
                throw error(node, "batch_discount must be a fraction from 0 up to (not including) 1, e.g. 0.5 for half price")
            }
            discount = value
        }
        guard let modelsNode = top.first(where: { $0.key == "models" })?.value else { throw error(root, "models is required") }
        var exact: [String: Prices] = [:]
        var prefixes: [String: Prices] = [:]
        for entry in try mapping(modelsNode, "models", allowed: []) {
            let what = "model \"\(entry.key)\""
            let isPrefix = entry.key.hasSuffix("*")
            let name = isPrefix ? String(entry.key.dropLast()) : entry.key
            guard !name.isEmpty, !name.contains("*") else {
                throw error(entry.keyNode, "\(what): * is allowed only at the end, to mark a prefix, after some text")
            }
            let fields = try mapping(entry.value, what, allowed: ["input", "output", "cache_read", "cache_write_5m", "cache_write_1h"])
            func field(_ name: String) throws(LoadError) -> Double {
                try number(fields.first { $0.key == name }?.value, "\(what): \(name)", in: entry.keyNode)
            }
            let prices = Prices(
                input: try field("input"),
                output: try field("output"),
                cacheRead: try field("cache_read"),
                cacheWrite5m: try field("cache_write_5m"),
                cacheWrite1h: try field("cache_write_1h")
            )
            if isPrefix {
                prefixes[name] = prices
            } else {
                exact[name] = prices
            }
        }
        return PriceTable(batchDiscount: discount, exact: exact, prefixes: prefixes)
    }
}
