import BatchesAPI
import BatchesExporter
import Testing

@Suite("Per-batch selection")
struct PerBatchSelectionTests {
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
