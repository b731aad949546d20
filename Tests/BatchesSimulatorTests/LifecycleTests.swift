import BatchesSimulator
import Foundation
import RFC3339
import Testing

@Suite("Lifecycle over simulated time")
struct LifecycleTests {
    @Test("without dynamics, nothing changes until time says so")
    func staticWithoutDynamics() throws {
        let workspace = makeWorkspace(batches: 200, active: 20)
        let before = workspace.allBatches()
        workspace.advance(seconds: 3600)
        let after = workspace.allBatches()
        #expect(before.map(\.id) == after.map(\.id))
        #expect(after.filter { $0.processingStatus == .inProgress }.count == 20)
    }

    @Test("advancing a day with dynamics ends every active batch with counts summing to its size")
    func advancingEndsBatches() throws {
        let workspace = makeWorkspace(
            batches: 300, active: 60, dynamics: .init(arrivalsPerHour: 0)
        )
        let sizes = Dictionary(uniqueKeysWithValues: workspace.allBatches().map { ($0.id, $0.size) })
        let start = workspace.now

        workspace.advance(seconds: 6 * 3600)
        let midway = workspace.allBatches()
        #expect(midway.contains { $0.processingStatus == .ended && $0.endedAt! > start })
        for batch in midway {
            #expect(batch.size == sizes[batch.id])
            if batch.processingStatus != .ended {
                #expect(batch.requestCounts.processing == batch.size)
            }
        }

        workspace.advance(seconds: 19 * 3600)
        let later = workspace.allBatches()
        #expect(later.count == 300)
        for batch in later {
            #expect(batch.processingStatus == .ended)
            #expect(batch.requestCounts.processing == 0)
            #expect(batch.size == sizes[batch.id])
            let ended = try #require(batch.endedAt)
            #expect(ended >= batch.createdAt && ended <= batch.expiresAt + 0.000_001)
            #expect(batch.resultsURL?.hasSuffix("/v1/messages/batches/\(batch.id)/results") == true)
        }
        #expect(later.contains { $0.requestCounts.succeeded > 0 })
    }

    @Test("arrivals add in-progress batches at the top of the list")
    func arrivals() throws {
        let workspace = makeWorkspace(batches: 10, dynamics: .init(arrivalsPerHour: 60))
        let oldTop = try #require(workspace.allBatches().first)
        workspace.advance(seconds: 3600)
        let batches = workspace.allBatches()
        #expect(batches.count > 30)
        let index = try #require(batches.firstIndex { $0.id == oldTop.id })
        #expect(batches[..<index].allSatisfy { $0.createdAt >= oldTop.createdAt })
        #expect(zip(batches, batches.dropFirst()).allSatisfy { $0.createdAt >= $1.createdAt })
    }

    @Test("a batch still processing at 24 hours ends with its remaining requests expired")
    func expiry() throws {
        let workspace = makeWorkspace()
        let id = try #require(workspace.createBatches(BatchSpec(requests: 500)).first)
        workspace.advance(seconds: 86_399)
        #expect(workspace.batch(id: id)?.processingStatus == .inProgress)
        workspace.advance(seconds: 2)
        let batch = try #require(workspace.batch(id: id))
        #expect(batch.processingStatus == .ended)
        #expect(batch.requestCounts.expired > 0)
        #expect(batch.requestCounts.processing == 0)
        #expect(batch.size == 500)
        #expect(batch.endedAt == batch.expiresAt)
    }

    @Test("cancel moves a batch to canceling, and ending it cancels what is unfinished")
    func cancelThenEnd() throws {
        let workspace = makeWorkspace()
        let responder = SimulatorResponder(workspace: workspace)
        let created = try responder.send("/_sim/batches?count=1&requests=40", method: "POST").json()
        let id = try #require((created["ids"] as? [String])?.first)

        workspace.advance(seconds: 120)
        let canceling = try responder.send("/_sim/batches/\(id)/cancel", method: "POST").json()
        #expect(canceling["processing_status"] as? String == "canceling")
        let initiated = try #require((canceling["cancel_initiated_at"] as? String).flatMap(RFC3339.parse))
        #expect(abs(initiated - workspace.now) < 0.001)
        #expect(counts(canceling)["processing"] == 40)

        let listed = try responder.send("/v1/messages/batches/\(id)").json()
        #expect(listed["processing_status"] as? String == "canceling")

        let ended = try responder.send("/_sim/batches/\(id)/end", method: "POST").json()
        #expect(ended["processing_status"] as? String == "ended")
        #expect(counts(ended) == ["processing": 0, "succeeded": 0, "errored": 0, "canceled": 40, "expired": 0])
        #expect(ended["cancel_initiated_at"] as? String == canceling["cancel_initiated_at"] as? String)
    }

    @Test("with dynamics, a canceling batch ends by itself with part of it canceled")
    func dynamicCancel() throws {
        let workspace = makeWorkspace(dynamics: .init(arrivalsPerHour: 0, cancelingDuration: 60...120))
        let id = try #require(workspace.createBatches(BatchSpec(requests: 1000)).first)
        try workspace.cancelBatch(id: id)
        workspace.advance(seconds: 121)
        let batch = try #require(workspace.batch(id: id))
        #expect(batch.processingStatus == .ended)
        #expect(batch.requestCounts.canceled > 0)
        #expect(batch.requestCounts.processing == 0)
        #expect(batch.size == 1000)
        #expect(batch.cancelInitiatedAt != nil)
    }

    @Test("a cancel on an ended batch is refused with 409")
    func cancelEnded() throws {
        let workspace = makeWorkspace()
        let responder = SimulatorResponder(workspace: workspace)
        let id = try #require(workspace.createBatches(BatchSpec(status: .ended)).first)
        let reply = responder.send("/_sim/batches/\(id)/cancel", method: "POST")
        try expectAnthropicError(reply, status: 409, type: "conflict_error")
    }

    @Test("ending with an explicit mix requires it to sum to the batch size")
    func endWithMix() throws {
        let workspace = makeWorkspace()
        let responder = SimulatorResponder(workspace: workspace)
        let id = try #require(workspace.createBatches(BatchSpec(requests: 10)).first)

        let wrong = responder.send("/_sim/batches/\(id)/end?succeeded=5&errored=1", method: "POST")
        try expectAnthropicError(wrong, status: 400, type: "invalid_request_error")
        #expect(workspace.batch(id: id)?.processingStatus == .inProgress)

        let ended = try responder.send("/_sim/batches/\(id)/end?succeeded=6&errored=2&expired=2", method: "POST").json()
        #expect(counts(ended) == ["processing": 0, "succeeded": 6, "errored": 2, "canceled": 0, "expired": 2])
        #expect(ended["ended_at"] as? String != nil)

        let again = responder.send("/_sim/batches/\(id)/end", method: "POST")
        try expectAnthropicError(again, status: 409, type: "conflict_error")
    }

    @Test("archived_at is set 29 days after creation, and the batch stays in the list")
    func archiving() throws {
        let workspace = makeWorkspace()
        let id = try #require(workspace.createBatches(BatchSpec(requests: 3, status: .ended)).first)
        let created = try #require(workspace.batch(id: id)?.createdAt)
        workspace.advance(seconds: 29 * 86_400 - 1)
        #expect(workspace.batch(id: id)?.archivedAt == nil)
        workspace.advance(seconds: 2)
        let batch = try #require(workspace.batch(id: id))
        #expect(batch.archivedAt == created + 29 * 86_400)
        #expect(batch.processingStatus == .ended)
        #expect(try workspace.list().batches.map(\.id) == [id])
    }

    @Test("seeded history: older ended batches are archived, recent ones are not")
    func seededArchives() {
        let workspace = makeWorkspace(batches: 5000, active: 10)
        let now = workspace.now
        for batch in workspace.allBatches() {
            let old = now - batch.createdAt >= 29 * 86_400
            #expect((batch.archivedAt != nil) == old)
            if let ended = batch.endedAt {
                #expect(ended >= batch.createdAt && ended <= now && ended <= batch.expiresAt)
            }
            if let canceled = batch.cancelInitiatedAt {
                #expect(canceled >= batch.createdAt && canceled <= batch.endedAt!)
            }
        }
        let truth = workspace.truth()
        #expect(truth.archived > 0 && truth.archived < 5000)
        #expect(truth.requests.errored > 0 && truth.requests.canceled > 0 && truth.requests.expired > 0)
    }

    @Test("realtime mode moves simulated time at the configured speed")
    func realtime() throws {
        // The real clock is injected: a sleep can return a minute late on a busy machine.
        let clock = ManualTimeSource(seconds: 12_345)
        let workspace = SimulatedWorkspace(
            configuration: SimulatorConfiguration(apiKey: testKey, time: .realtime(start: 1_750_000_000, speed: 1000)),
            timeSource: clock
        )
        let start = workspace.now
        #expect(start == 1_750_000_000)
        #expect(workspace.now == start)
        clock.advance(by: 0.05)
        #expect(abs(workspace.now - start - 50) < 1e-6)
        workspace.advance(seconds: 3600)
        #expect(abs(workspace.now - start - 3650) < 1e-6)
        clock.advance(by: 2)
        #expect(abs(workspace.now - start - 5650) < 1e-6)
    }

    @Test("realtime mode applies lifecycle events as the injected clock passes them")
    func realtimeLifecycle() throws {
        let clock = ManualTimeSource()
        let workspace = SimulatedWorkspace(
            configuration: SimulatorConfiguration(apiKey: testKey, time: .realtime(start: 1_750_000_000, speed: 60)),
            timeSource: clock
        )
        let id = try #require(workspace.createBatches(BatchSpec(requests: 5)).first)
        clock.advance(by: 1439)  // 86,340 simulated seconds: not yet a day
        #expect(workspace.batch(id: id)?.processingStatus == .inProgress)
        clock.advance(by: 2)
        let batch = try #require(workspace.batch(id: id))
        #expect(batch.processingStatus == .ended && batch.endedAt == batch.expiresAt)
        #expect(batch.requestCounts.expired > 0 && batch.requestCounts.processing == 0)
    }

    @Test("the same seed gives the same workspace; another seed another one")
    func determinism() {
        let first = makeWorkspace(batches: 500, active: 20, seed: 7, dynamics: .standard)
        let second = makeWorkspace(batches: 500, active: 20, seed: 7, dynamics: .standard)
        let third = makeWorkspace(batches: 500, active: 20, seed: 8, dynamics: .standard)
        #expect(first.allBatches() == second.allBatches())
        #expect(first.allBatches().map(\.id) != third.allBatches().map(\.id))
        first.advance(seconds: 86_400)
        second.advance(seconds: 86_400)
        #expect(first.allBatches() == second.allBatches())
    }

    @Test("ids are msgbatch_ followed by 24 base62 characters")
    func idShape() {
        let alphabet = Set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
        for batch in makeWorkspace(batches: 300).allBatches() {
            #expect(batch.id.hasPrefix("msgbatch_"))
            let tail = batch.id.dropFirst("msgbatch_".count)
            #expect(tail.count == 24 && tail.allSatisfy(alphabet.contains))
        }
    }
}

@Suite("Demo configuration")
struct DemoConfigurationTests {
    @Test("the demo workspace starts with active batches and runs in accelerated real time")
    func demo() throws {
        let clock = ManualTimeSource()
        let workspace = SimulatedWorkspace(configuration: .demo(apiKey: testKey), timeSource: clock)
        let truth = workspace.truth()
        // 300 seeded (12 in progress) and the scripted scenario: one canceling, the rest in progress.
        let scripted = SimulatorConfiguration.demoScenario().count
        #expect(truth.batches == 300 + scripted && truth.inProgress == 12 + scripted - 1 && truth.canceling == 1)
        let start = workspace.now
        clock.advance(by: 0.1)
        #expect(abs(workspace.now - start - 6) < 1e-6)
    }
}

@Suite("SplitMix64")
struct SplitMix64Tests {
    @Test("matches the reference implementation's first outputs for seed 0")
    func referenceValues() {
        var rng = SplitMix64(seed: 0)
        #expect(rng.next() == 0xE220_A839_7B1D_CDAF)
        #expect(rng.next() == 0x6E78_9E6A_A1B9_65F4)
        #expect(rng.next() == 0x06C4_5D18_8009_454F)
    }
}
