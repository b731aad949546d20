import BatchesAPI
import BatchesExporter
import PrometheusExposition
import Testing

@Suite("Snapshots, lifecycle counters and per-batch selection")
struct AggregationTests {
    @Test("A snapshot counts batches by status, always with the documented three, and sums request counts")
    func snapshotTotals() {
        let snapshot = WorkspaceSnapshot(
            batches: [
                batch("b4", .other("paused"), counts: RequestCounts(processing: 1)),
                batch("b3", .inProgress, counts: RequestCounts(processing: 7), created: 3_000),
                batch("b2", .ended, counts: RequestCounts(succeeded: 5, errored: 1, expired: 2), created: 2_000, ended: 2_500),
                batch("b1", .ended, counts: RequestCounts(succeeded: 3, canceled: 4), created: 1_000, ended: 1_100),
            ],
            takenAt: 5_000
        )
        #expect(snapshot.batchesByStatus == [.inProgress: 1, .canceling: 0, .ended: 2, .other("paused"): 1])
        #expect(snapshot.requestTotals == RequestCounts(processing: 8, succeeded: 8, errored: 1, canceled: 4, expired: 2))
        #expect(snapshot.oldestActiveCreatedAt == 1_000)  // b4 (unknown status counts as active), created 1000
        #expect(snapshot.nextExpiry == Double(87_400))  // b4: created 1000 + 24h
    }

    @Test("A batch listed twice is counted once")
    func duplicates() {
        let snapshot = WorkspaceSnapshot(batches: [batch("b1", .inProgress), batch("b1", .inProgress)], takenAt: 0)
        #expect(snapshot.batches.count == 1)
        #expect(snapshot.requestTotals.processing == 10)
    }

    @Test("No active batch: no oldest-active and no next-expiry")
    func noActive() {
        let snapshot = WorkspaceSnapshot(batches: [batch("b1", .ended, counts: RequestCounts(succeeded: 1), ended: 2_000)], takenAt: 0)
        #expect(snapshot.oldestActiveCreatedAt == nil)
        #expect(snapshot.nextExpiry == nil)
    }

    @Test("Batches seen ending are counted once with their final counts and duration")
    func lifecycleTransitions() {
        var lifecycle = BatchLifecycle(exporterStartedAt: 10_000)
        lifecycle.observe([batch("b1", .inProgress), batch("b2", .canceling, cancelInitiated: 1_500)])
        #expect(lifecycle.endedBatches == 0)

        let endedB1 = batch("b1", .ended, counts: RequestCounts(succeeded: 6, errored: 1, expired: 3), created: 1_000, ended: 4_600)
        let counted = lifecycle.observe([endedB1, batch("b2", .canceling, cancelInitiated: 1_500)])
        #expect(counted.map(\.id) == ["b1"])
        #expect(lifecycle.endedBatches == 1)
        #expect(lifecycle.endedRequests == RequestCounts(succeeded: 6, errored: 1, expired: 3))
        #expect(lifecycle.processingDurations.count == 1)
        #expect(lifecycle.processingDurations.sum == 3_600)

        // Seen again as ended: no double count.
        lifecycle.observe([endedB1, batch("b2", .ended, counts: RequestCounts(succeeded: 2, canceled: 8), ended: 12_000)])
        #expect(lifecycle.endedBatches == 2)
        #expect(lifecycle.endedRequests == RequestCounts(succeeded: 8, errored: 1, canceled: 8, expired: 3))
        lifecycle.observe([endedB1])
        #expect(lifecycle.endedBatches == 2)
    }

    @Test("A batch first seen already ended counts only if it ended after the exporter started")
    func firstSeenEnded() {
        var lifecycle = BatchLifecycle(exporterStartedAt: 10_000)
        lifecycle.observe([
            batch("old", .ended, counts: RequestCounts(succeeded: 100), ended: 9_999),
            batch("new", .ended, counts: RequestCounts(expired: 4), created: 9_000, ended: 10_001),
        ])
        #expect(lifecycle.endedBatches == 1)
        #expect(lifecycle.endedRequests == RequestCounts(expired: 4))
    }

    @Test("A restarted exporter does not count what the previous one counted")
    func restart() {
        var before = BatchLifecycle(exporterStartedAt: 1_000)
        before.observe([batch("b1", .inProgress)])
        before.observe([batch("b1", .ended, counts: RequestCounts(succeeded: 10), ended: 2_000)])
        #expect(before.endedBatches == 1)
        var after = BatchLifecycle(exporterStartedAt: 3_000)
        after.observe([batch("b1", .ended, counts: RequestCounts(succeeded: 10), ended: 2_000)])
        #expect(after.endedBatches == 0)
    }

    @Test("Per-batch selection keeps active batches newest first, then the most recently ended within retention")
    func selection() {
        let batches = [
            batch("a-new", .inProgress, created: 9_000),
            batch("a-old", .canceling, created: 8_000),
            batch("e-recent", .ended, ended: 9_500),
            batch("e-older", .ended, ended: 9_000),
            batch("e-expired-retention", .ended, ended: 1_000),
        ]
        let all = PerBatchSelection(from: batches, now: 10_000, maxBatches: 10, endedRetention: .seconds(3_600))
        #expect(all.batches.map(\.id) == ["a-new", "a-old", "e-recent", "e-older"])
        #expect(all.dropped == 0)

        let capped = PerBatchSelection(from: batches, now: 10_000, maxBatches: 3, endedRetention: .seconds(3_600))
        #expect(capped.batches.map(\.id) == ["a-new", "a-old", "e-recent"])
        #expect(capped.dropped == 1)

        let off = PerBatchSelection(from: batches, now: 10_000, maxBatches: 0, endedRetention: .seconds(3_600))
        #expect(off.batches.isEmpty)
        #expect(off.dropped == 0)
    }
}
