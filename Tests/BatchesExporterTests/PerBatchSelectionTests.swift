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

    @Test("After ended batches leave the retention, the selection kept is the one chosen again from the records left")
    func expiryKeepsTheSelection() {
        var ledger = BatchLedger()
        let context = LedgerContext(countEndedAfter: 0, now: 10_000, endedRetention: 3_600)
        let listing =
            [batch("active", .inProgress, created: 9_900)]
            + (0..<30).map { batch("e\($0)", .ended, ended: 7_000 + Double($0) * 100) }.reversed()
        var builder = LedgerBuilder()
        builder.add(listing, comparingWith: ledger, context: context)
        _ = ledger.adopt(builder, context: context)
        let retention = Duration.seconds(3_600)
        for cap in [5, 40] {
            var current = ledger
            var selection = PerBatchSelection(from: current.records.values, now: 10_000, maxBatches: cap, endedRetention: retention)
            for now in stride(from: 10_050.0, through: 14_050, by: 250) {
                let expired = current.expireRecords(context: LedgerContext(countEndedAfter: 0, now: now, endedRetention: 3_600))
                let chosenAgain = PerBatchSelection(from: current.records.values, now: now, maxBatches: cap, endedRetention: retention)
                if let kept = selection.removing(expired: expired) {
                    #expect(kept == chosenAgain, "cap \(cap), now \(now)")
                    selection = kept
                } else {
                    // Only a shown batch leaving may force a new choice.
                    #expect(expired.contains { key in selection.batches.contains { batchKey($0.id) == key } })
                    selection = chosenAgain
                }
            }
            #expect(selection.batches.map(\.id) == ["active"], "every ended batch has left the retention")
            #expect(selection.dropped == 0)
        }
    }
}
