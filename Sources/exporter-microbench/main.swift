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

let batches = try measure("decode all pages") { try pages.flatMap { try BatchListPage.decode($0).data } }
let now = batches.compactMap(\.endedAt).max() ?? 0
let snapshot = measure("build snapshot") { WorkspaceSnapshot(batches: batches, takenAt: now) }
var lifecycle = BatchLifecycle(exporterStartedAt: 0)
_ = measure("lifecycle observe", repeat: 1) { lifecycle.observe(snapshot.batches).count }
_ = measure("lifecycle observe again (steady state)") { lifecycle.observe(snapshot.batches).count }
let selection = measure("per-batch selection") {
    PerBatchSelection(from: snapshot.batches, now: now, maxBatches: 1000, endedRetention: .seconds(86_400))
}
let families = measure("families") {
    WorkspaceMetrics.families(
        WorkspaceMetrics.Inputs(
            workspace: "default", snapshot: snapshot, selection: selection, lifecycle: lifecycle,
            health: PollHealth(), pollInterval: .seconds(60)
        )
    )
}
let text = measure("render text") { ExpositionRenderer.render(families, format: .text) }
_ = measure("render both formats + gzip (RenderedExposition)") { RenderedExposition(families: families) }
let firstPage = try BatchListPage.decode(pages[0])
_ = measure("steady-state poll: merge one page, snapshot, lifecycle, selection, render") {
    var merge = IncrementalMerge(previous: snapshot)
    _ = merge.observe(firstPage)
    let next = WorkspaceSnapshot(batches: merge.merged(listingEnded: false), takenAt: now)
    _ = lifecycle.observe(next.batches)
    let nextSelection = PerBatchSelection(from: next.batches, now: now, maxBatches: 1000, endedRetention: .seconds(86_400))
    let nextFamilies = WorkspaceMetrics.families(
        WorkspaceMetrics.Inputs(
            workspace: "default", snapshot: next, selection: nextSelection, lifecycle: lifecycle,
            health: PollHealth(), pollInterval: .seconds(60)
        )
    )
    return RenderedExposition(families: nextFamilies)
}
print("exposition: \(text.count) bytes, \(families.reduce(0) { $0 + $1.samples.count }) samples")
