// Times the CPU-bound steps of a poll on a 100,000-batch workspace, in-process: decoding pages,
// building the snapshot and lifecycle state, selecting per-batch series, rendering, gzip.
// Prints figures; asserts nothing. scripts/bench measures the whole process against the peers.
import Basics
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
    let milliseconds = best.inMilliseconds
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

// Incremental rendering (ExpositionPublisher with groups): the same families split the way a
// poller publishes them, then republished with only the small "health" group changed.
func groupKey(_ family: MetricFamily) -> String {
    if family.name == "anthropic_message_batch" || family.name.hasPrefix("anthropic_message_batch_")
        || family.name == "anthropic_batches_exporter_batch_metrics_dropped"
    {
        return "per_batch"
    }
    if family.name.hasPrefix("anthropic_batches_exporter_"), family.name != "anthropic_batches_exporter_snapshot_batches" { return "health" }
    return "batches"
}
let groupKeys = ["health", "batches", "per_batch"]
let familiesByGroup = Dictionary(grouping: all, by: groupKey)
for key in groupKeys {
    let groupFamilies = familiesByGroup[key] ?? []
    print("group \(key): \(groupFamilies.count) families, \(groupFamilies.reduce(0) { $0 + $1.samples.count }) samples")
}
func workspaceGroups(_ byGroup: [String: [MetricFamily]], versions: [String: UInt64]) -> [FamilyGroup] {
    groupKeys.map { key in
        let groupFamilies = byGroup[key] ?? []
        return FamilyGroup(key: key, version: versions[key] ?? 0) { groupFamilies }
    }
}
let benchStore = ExpositionStore()
let incremental = ExpositionPublisher(store: benchStore, constantFamilies: [], minimumRenderInterval: .zero, now: { now })
var benchVersion: UInt64 = 1
_ = measure("publisher: first publish, every group built (segments + assembly)") {
    benchVersion += 1
    incremental.publish(
        workspace: "default", groups: workspaceGroups(familiesByGroup, versions: ["health": benchVersion, "batches": benchVersion, "per_batch": benchVersion]),
        lastSuccessAt: now)
    return benchStore.latest
}
let steadyVersion = benchVersion
if let segmented = benchStore.latest?.response(format: .text, tail: [], gzip: true).shared.reduce(0, { $0 + $1.readableBytes }) {
    let whole = RenderedExposition(families: all).response(format: .text, tail: [], gzip: true).shared.reduce(0) { $0 + $1.readableBytes }
    print("gzip text body: \(whole) bytes compressed whole, \(segmented) bytes compressed per segment")
}
_ = measure("publisher: republish, only the health group changed", repeat: 20) {
    benchVersion += 1
    incremental.publish(
        workspace: "default",
        groups: workspaceGroups(familiesByGroup, versions: ["health": benchVersion, "batches": steadyVersion, "per_batch": steadyVersion]), lastSuccessAt: now)
    return benchStore.latest
}
_ = measure("publisher: republish, nothing changed (assembly only)", repeat: 20) {
    incremental.publish(
        workspace: "default",
        groups: workspaceGroups(familiesByGroup, versions: ["health": benchVersion, "batches": steadyVersion, "per_batch": steadyVersion]), lastSuccessAt: now)
    return benchStore.latest
}

// Many workspaces: 200 copies of this workspace's health and batches groups and 50 of its
// per-batch series each. Old path: one workspace's poll re-renders and re-gzips everyone's
// families; new path: it rebuilds that workspace's health group and reassembles.
let manyCount = 200
let manyGroups: [[String: [MetricFamily]]] = (0..<manyCount).map { index in
    let name = "workspace-\(index)"
    return familiesByGroup.mapValues { groupFamilies in
        groupFamilies.map { family in
            var copy = family
            copy.samples = (groupKey(family) == "per_batch" ? Array(family.samples.prefix(50)) : family.samples).map { sample in
                var relabelled = sample
                relabelled.labels = sample.labels.map { $0.name == "workspace" ? Label("workspace", name) : $0 }
                return relabelled
            }
            return copy
        }
    }
}
let manyMerged = manyGroups.flatMap { byGroup in groupKeys.flatMap { byGroup[$0] ?? [] } }
let manyExposition = RenderedExposition(families: manyMerged).response(format: .text, tail: [], gzip: false).shared.reduce(0) { $0 + $1.readableBytes }
print("\(manyCount) workspaces: \(manyMerged.reduce(0) { $0 + $1.samples.count }) samples, \(manyExposition) bytes of text")
_ = measure("\(manyCount) workspaces, old path: merge + render both formats + gzip of everything") {
    var merged: [String: MetricFamily] = [:]
    for family in manyMerged {
        if merged[family.name] == nil { merged[family.name] = family } else { merged[family.name]?.samples += family.samples }
    }
    return RenderedExposition(families: Array(merged.values))
}
let manyStore = ExpositionStore()
let manyPublisher = ExpositionPublisher(store: manyStore, constantFamilies: [], minimumRenderInterval: .zero, now: { now })
_ = measure("\(manyCount) workspaces, new path: first publish of each (all groups built, \(manyCount) assemblies)", repeat: 1) {
    for (index, byGroup) in manyGroups.enumerated() {
        manyPublisher.publish(
            workspace: "workspace-\(index)", groups: workspaceGroups(byGroup, versions: ["health": 1, "batches": 1, "per_batch": 1]), lastSuccessAt: now)
    }
    return manyStore.latest
}
var manyVersion: UInt64 = 1
_ = measure("\(manyCount) workspaces, new path: one workspace republishes with only health changed", repeat: 20) {
    manyVersion += 1
    manyPublisher.publish(
        workspace: "workspace-7", groups: workspaceGroups(manyGroups[7], versions: ["health": manyVersion, "batches": 1, "per_batch": 1]), lastSuccessAt: now)
    return manyStore.latest
}
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
