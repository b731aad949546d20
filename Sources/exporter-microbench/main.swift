// Times the CPU-bound steps of a poll on a 100,000-batch workspace, in-process: decoding pages,
// building the snapshot and lifecycle state, selecting per-batch series, rendering, gzip.
// Prints figures; asserts nothing. scripts/bench measures the whole process against the peers.
import BatchesAPI
import BatchesExporter
import BatchesSimulator
import HTTPServing
import NIOCore
import PrometheusExposition

let batchCount = Int(CommandLine.arguments.dropFirst().first ?? "") ?? 100_000
let key = "sk-ant-bench"
let workspace = SimulatedWorkspace(configuration: SimulatorConfiguration(apiKey: key, initialBatches: batchCount, initialActive: 20))
let responder = SimulatorResponder(workspace: workspace)

func measure<T>(_ label: String, repeat count: Int = 5, _ body: () throws -> T) rethrows -> T {
    var start = ContinuousClock.now
    var result = try body()
    var best = ContinuousClock.now - start
    for _ in 1..<max(count, 1) {
        start = ContinuousClock.now
        result = try body()
        best = min(best, ContinuousClock.now - start)
    }
    let milliseconds = Double(best.components.seconds) * 1000 + Double(best.components.attoseconds) / 1e15
    print("\(label): \((milliseconds * 100).rounded() / 100) ms (best of \(count))")
    return result
}

// Pages as the API would send them, fetched once.
var pages: [[UInt8]] = []
var cursor: String?
repeat {
    let target = "/v1/messages/batches?limit=1000" + (cursor.map { "&after_id=\($0)" } ?? "")
    let response = responder.respond(to: ServerRequest(method: "GET", target: target, headers: [("x-api-key", key), ("anthropic-version", "2023-06-01")]))
    let body = Array(response.body.readableBytesView)
    pages.append(body)
    let page = try BatchListPage.decode(body)
    cursor = page.hasMore ? page.lastID : nil
} while cursor != nil
print("workspace: \(batchCount) batches, \(pages.count) pages, \(pages.reduce(0) { $0 + $1.count }) bytes of JSON")

let decoded = try measure("decode all pages") { try pages.map { try BatchListPage.decode($0).data } }
let now = decoded.joined().compactMap(\.endedAt).max() ?? 0
let context = LedgerContext(countEndedAfter: 0, now: now, endedRetention: 86_400)
let ledger = measure("full read: fold every page and adopt") { () -> BatchLedger in
    var builder = LedgerBuilder()
    var ledger = BatchLedger()
    for page in decoded { builder.add(page, comparingWith: ledger, context: context) }
    _ = ledger.adopt(builder, context: context)
    return ledger
}
print("ledger: \(ledger.count) entries, \(ledger.records.count) full records")
let selection = measure("per-batch selection") {
    PerBatchSelection(from: Array(ledger.records.values), now: now, maxBatches: 1000, endedRetention: .seconds(86_400))
}
func families(_ ledger: BatchLedger, _ selection: PerBatchSelection) -> [MetricFamily] {
    WorkspaceMetrics.healthFamilies(workspace: "default", health: PollHealth(), pollInterval: .seconds(60))
        + WorkspaceMetrics.batchFamilies(workspace: "default", summary: BatchSummary(ledger))
        + WorkspaceMetrics.lifecycleFamilies(workspace: "default", lifecycle: BatchLifecycle())
        + WorkspaceMetrics.perBatchFamilies(workspace: "default", selection: selection)
}
let all = measure("families") { families(ledger, selection) }
let text = measure("render text") { ExpositionRenderer.render(all, format: .text) }
_ = measure("render both formats + gzip (RenderedExposition)") { RenderedExposition(families: all) }
let firstPage = try BatchListPage.decode(pages[0])
var steady = ledger
_ = try measure("steady-state poll: decode one page, fold it into the ledger (no change)") { () throws -> Int in
    let page = try BatchListPage.decode(pages[0])
    var lowest: Int?
    for batch in page.data {
        if let position = steady.position(of: batchKey(batch.id)) { lowest = min(lowest ?? position, position) }
    }
    return steady.apply(walk: page.data, covering: lowest, context: context).newlyEnded.count
}
print("first page: \(firstPage.data.count) batches; exposition: \(text.count) bytes, \(all.reduce(0) { $0 + $1.samples.count }) samples")
