import BatchesAPI
import Foundation
import PrometheusExposition
import Testing

@testable import BatchesExporter

@Suite("Prices file and workspace totals")
struct ResultsPricesTests {
    static let sample = """
        # comment
        batch_discount: 0.5
        models:
          claude-opus-4*:
            input: 15
            output: 75
            cache_read: 1.5
            cache_write_5m: 18.75
            cache_write_1h: 30
          claude-opus-4-5*:
            input: 5
            output: 25
            cache_read: 0.5
            cache_write_5m: 6.25
            cache_write_1h: 10
          claude-opus-4-5-special:
            input: 1
            output: 2
            cache_read: 3
            cache_write_5m: 4
            cache_write_1h: 5
        """

    @Test("An exact id wins, then the longest prefix; other models have no price")
    func lookup() throws {
        let table = try PriceTable.parse(Self.sample, file: "prices.yml")
        #expect(table.batchDiscount == 0.5)
        #expect(table.prices(for: "claude-opus-4-1-20250805")?.input == 15)
        #expect(table.prices(for: "claude-opus-4-5-20251101")?.input == 5)
        #expect(table.prices(for: "claude-opus-4-5-special")?.input == 1)
        #expect(table.prices(for: "claude-opus-4-5-special-2")?.input == 5)
        #expect(table.prices(for: "claude-sonnet-4-5") == nil)
        let cost = try #require(table.cost(model: "claude-opus-4-5-x", type: .cacheWrite1h, count: 2_000_000))
        #expect(abs(cost - 10) < 1e-9)
    }

    @Test("The discount defaults to half price")
    func defaultDiscount() throws {
        let table = try PriceTable.parse(
            "models:\n  m:\n    input: 2\n    output: 2\n    cache_read: 2\n    cache_write_5m: 2\n    cache_write_1h: 2\n", file: "p.yml"
        )
        #expect(table.batchDiscount == 0.5)
        #expect(table.cost(model: "m", type: .output, count: 1_000_000) == 1)
    }

    @Test(
        "Bad files fail with the file, the line and what is wrong",
        arguments: [
            ("models:\n  m:\n    input: 1\n    output: 1\n    cache_read: 1\n    cache_write_5m: 1\n", "p.yml:2: model \"m\": cache_write_1h is required"),
            ("models:\n  m:\n    input: -1\n", "p.yml:3: model \"m\": input must be a number"),
            ("models:\n  m:\n    input: cheap\n", "p.yml:3: model \"m\": input must be a number"),
            ("models:\n  m:\n    inptu: 1\n", "p.yml:3: model \"m\": unknown key \"inptu\""),
            ("batch_discount: 1.5\nmodels: {}\n", "p.yml:1: batch_discount must be a fraction"),
            ("discount: 0.5\n", "p.yml:1: prices file: unknown key \"discount\""),
            ("batch_discount: 0.5\n", "p.yml:1: models is required"),
            ("models:\n  a*b:\n    input: 1\n", "p.yml:2: model \"a*b\": * is allowed only at the end"),
            ("models: [\n", "p.yml"),
            ("", "p.yml: the file is empty"),
        ]
    )
    func badFiles(text: String, expected: String) {
        #expect {
            try PriceTable.parse(text, file: "p.yml")
        } throws: { error in
            let description = "\(error)"
            if !description.contains(expected) { Issue.record("got: \(description)") }
            return description.contains(expected)
        }
    }

    @Test("The shipped example prices file loads and prices the current models")
    func shippedExample() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let path = root.appendingPathComponent("deploy/examples/prices.yml").path
        let table = try PriceTable.parse(try String(contentsOfFile: path, encoding: .utf8), file: path)
        #expect(table.batchDiscount == 0.5)
        for model in [
            "claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001", "claude-opus-4-1-20250805", "claude-opus-4-5-20251101", "claude-3-5-haiku-20241022",
        ] {
            #expect(table.prices(for: model) != nil, "\(model) has no price")
        }
        #expect(table.prices(for: "claude-opus-4-1-20250805")?.output == 75)
        #expect(table.prices(for: "claude-opus-4-5-20251101")?.output == 25)
    }

    @Test("Workspace totals cap each label: values first seen once the cap is full go to other")
    func totalsCap() {
        var totals = ResultsTotals()
        func tally(_ model: String, _ result: String = "succeeded") -> ResultsTally {
            var tally = ResultsTally()
            var line = ResultsLine()
            line.resultType = CapturedString(result)
            line.hasMessage = true
            line.model = CapturedString(model)
            line.inputTokens = 1
            tally.add(line)
            return tally
        }
        totals.add(tally("a"), cap: 2, prices: nil)
        totals.add(tally("b", "new1"), cap: 2, prices: nil)
        totals.add(tally("c", "new2"), cap: 2, prices: nil)
        totals.add(tally("d", "new3"), cap: 2, prices: nil)
        totals.add(tally("a"), cap: 2, prices: nil)
        let models = Set(totals.tokens.keys.map(\.model))
        #expect(models == ["a", "b", "other"])
        #expect(totals.tokens[.init(model: "a", tokenType: .input)] == 2)
        #expect(totals.tokens[.init(model: "other", tokenType: .input)] == 2)
        // Documented result types never count against the cap.
        #expect(totals.results == ["succeeded": 2, "new1": 1, "new2": 1, "other": 1])
        #expect(totals.batches == 5)
    }

    @Test("Results families always show the documented result types and every outcome")
    func familiesShape() {
        let families = ResultsMetrics.families(ResultsCollectorState(), workspace: "w", pricesConfigured: true)
        let results = families.first { $0.name == "anthropic_message_batches_result_requests" }
        #expect(results?.samples.map { $0.labels.last?.value } == ["succeeded", "errored", "canceled", "expired"])
        let outcomes = families.first { $0.name == "anthropic_batches_exporter_results_batches" }
        #expect(outcomes?.samples.compactMap { $0.labels.last?.value } == ["complete", "retrying", "failed", "skipped_host", "skipped_size"])
        #expect(families.allSatisfy { $0.samples.allSatisfy { $0.labels.first == Label("workspace", "w") } })
        #expect(families.contains { $0.name == "anthropic_batches_exporter_results_oldest_waiting_timestamp_seconds" } == false)
    }
}
