import Basics
import Testing

@testable import BatchesSimulator

/// The demo's scripted scenario, on a realtime clock that moves only when the test says so:
/// each situation the shipped alerts exist for shows up in the first minutes (real time, 60x).
@Suite("Demo scenario")
struct DemoScenarioTests {
    /// A demo workspace at its start, and the clock it reads real elapsed time from.
    private func demo(seed: UInt64 = 1) -> (SimulatedWorkspace, ManualTimeSource, start: Double) {
        let clock = ManualTimeSource()
        let workspace = SimulatedWorkspace(configuration: .demo(apiKey: testKey, seed: seed), timeSource: clock)
        return (workspace, clock, workspace.now)
    }

    @Test("from the start a batch has been canceling for over an hour and one in progress expires within the hour")
    func lingeringCancelAndNearExpiry() {
        let (workspace, _, start) = demo()
        let canceling = workspace.allBatches().filter { $0.processingStatus == .canceling }
        #expect(canceling.count == 1)
        #expect(canceling.allSatisfy { start - ($0.cancelInitiatedAt ?? start) >= 3600 })
        let near = workspace.allBatches().filter { $0.processingStatus == .inProgress && $0.expiresAt - start < 3600 }
        #expect(near.count == 1)
        #expect(near.allSatisfy { $0.expiresAt > start })
    }

    @Test("a batch ends with expired requests within two real minutes")
    func expiredEarly() {
        let (workspace, clock, start) = demo()
        #expect(!workspace.allBatches().contains { $0.requestCounts.expired > 0 && ($0.endedAt ?? 0) >= start })
        clock.advance(by: 120)
        let expired = workspace.allBatches().filter { $0.requestCounts.expired > 0 && ($0.endedAt ?? 0) >= start }
        #expect(!expired.isEmpty)
    }

    @Test(
        "the errored share of requests ended since the start stays above 10% through the first 40 real minutes",
        arguments: [1, 2, 3, 42, 9_999] as [UInt64])
    func erroredShare(seed: UInt64) {
        let (workspace, clock, start) = demo(seed: seed)
        clock.advance(by: 40 * 60)
        let ended = workspace.allBatches().compactMap { batch in
            batch.endedAt.flatMap { $0 >= start ? ($0, batch.requestCounts) : nil }
        }
        // Every real minute from the first errored batch's end on (simulated hour 1), the share
        // over everything ended since the start, as increase(...[1h]) sees it in the first hour.
        for minute in 2...40 {
            let until = start + Double(minute) * 3600
            let window = ended.filter { $0.0 <= until }.map(\.1)
            let errored = window.reduce(0) { $0 + $1.errored }
            let total = window.reduce(0) { $0 + $1.total }
            #expect(total > 0 && Double(errored) / Double(total) > 0.1, "minute \(minute): \(errored) of \(total)")
        }
    }

    @Test("the near-expiry batch stays in progress until the wall clock reaches its expires_at, then ends expired")
    func nearExpiryFollowsTheWallClock() throws {
        let (workspace, clock, start) = demo()
        let id = try #require(
            workspace.allBatches().first { $0.processingStatus == .inProgress && $0.expiresAt - start < 3600 }?.id)
        let expiresAt = try #require(workspace.batch(id: id)?.expiresAt)
        clock.advance(by: expiresAt - start - 1)
        #expect(workspace.batch(id: id)?.processingStatus == .inProgress)
        clock.advance(by: 2)
        let ended = try #require(workspace.batch(id: id))
        #expect(ended.processingStatus == .ended)
        #expect(ended.endedAt == expiresAt)
        #expect(ended.requestCounts.expired > 0)
    }

    @Test("the lingering cancel lasts 20 real minutes, then ends canceled")
    func lingeringCancelEnds() throws {
        let (workspace, clock, _) = demo()
        let id = try #require(workspace.allBatches().first { $0.processingStatus == .canceling }?.id)
        clock.advance(by: 19 * 60)
        #expect(workspace.batch(id: id)?.processingStatus == .canceling)
        clock.advance(by: 2 * 60)
        let ended = try #require(workspace.batch(id: id))
        #expect(ended.processingStatus == .ended && ended.requestCounts.canceled > 0)
    }

    @Test("a scripted batch's ending is exact and its counts sum to its size")
    func scriptedEndingIsExact() throws {
        let script = ScriptedBatch(
            createdBeforeStart: 600, endsAfterStart: 300, endCounts: RequestCounts(succeeded: 7, errored: 3))
        let workspace = SimulatedWorkspace(
            configuration: SimulatorConfiguration(apiKey: testKey, scriptedBatches: [script]))
        let start = workspace.now
        let id = try #require(workspace.allBatches().first?.id)
        #expect(workspace.batch(id: id)?.requestCounts == RequestCounts(processing: 10))
        #expect(workspace.batch(id: id)?.createdAt == start - 600)
        workspace.advance(seconds: 299)
        #expect(workspace.batch(id: id)?.processingStatus == .inProgress)
        workspace.advance(seconds: 1)
        let ended = try #require(workspace.batch(id: id))
        #expect(ended.processingStatus == .ended)
        #expect(ended.endedAt == start + 300)
        #expect(ended.requestCounts == RequestCounts(succeeded: 7, errored: 3))
    }
}
