import BatchesAPI
import BatchesExporter
import BatchesSimulator
import PrometheusExposition
import Testing

/// A ledger holding exactly `batches` (newest first), as after a first full read.
private func ledger(_ batches: [MessageBatch], context: LedgerContext) -> (BatchLedger, [MessageBatch]) {
    var builder = LedgerBuilder()
    var ledger = BatchLedger()
    builder.add(batches, comparingWith: ledger, context: context)
    let adopted = ledger.adopt(builder, context: context)
    return (ledger, adopted.newlyEnded)
}

private let noRetention = LedgerContext(countEndedAfter: 10_000, now: 20_000, endedRetention: nil)

@Suite("The ledger: totals, folding, lifecycle rules")
struct BatchLedgerTests {
    @Test("Totals count batches by status, always with the documented three, and sum request counts")
    func totals() {
        let ledger = ledger(
            [
                batch("b4", .other("paused"), counts: RequestCounts(processing: 1)),
                batch("b3", .inProgress, counts: RequestCounts(processing: 7), created: 3_000),
                batch("b2", .ended, counts: RequestCounts(succeeded: 5, errored: 1, expired: 2), created: 2_000, ended: 2_500),
                batch("b1", .ended, counts: RequestCounts(succeeded: 3, canceled: 4), created: 1_000, ended: 1_100),
            ],
            context: noRetention
        ).0
        #expect(ledger.totals.byStatus == [.inProgress: 1, .canceling: 0, .ended: 2, .other("paused"): 1])
        #expect(ledger.totals.requests == RequestCounts(processing: 8, succeeded: 8, errored: 1, canceled: 4, expired: 2))
        #expect(ledger.totals == ledger.recount())
        let summary = BatchSummary(ledger)
        #expect(summary.oldestActiveCreatedAt == 1_000)  // b4 (unknown status counts as active), created 1000
        #expect(summary.nextExpiry == Double(87_400))  // b4: created 1000 + 24h
        // Only batches that can still change keep a full record.
        #expect(Set(ledger.records.keys) == [batchKey("b4"), batchKey("b3")])
    }

    @Test("An entry is 24 bytes and keeps every count, the status and archival as listed; nonsense counts are clamped, not spilled")
    func entryPacking() {
        #expect(MemoryLayout<LedgerEntry>.stride == 24)
        var archivedBatch = batch(
            "b1", .ended, counts: RequestCounts(succeeded: 1, errored: 2_097_151, canceled: 77, expired: 100_000), created: 1_000, ended: 1_100)
        archivedBatch.archivedAt = 1_200
        let entries = ledger(
            [
                batch("b4", .other("paused"), counts: RequestCounts(processing: 5_000_000, succeeded: -4, errored: 9)),
                batch("b3", .canceling, counts: RequestCounts(processing: 100_000, succeeded: 99_999, errored: 1, canceled: 2, expired: 3)),
                batch("b2", .inProgress, counts: RequestCounts(processing: 0)),
                archivedBatch,
            ],
            context: noRetention
        ).0.entries
        let seen = entries.map { [$0.processing, $0.succeeded, $0.errored, $0.canceled, $0.expired] }
        #expect(
            seen == [
                [0, 1, 2_097_151, 77, 100_000],
                [0, 0, 0, 0, 0],
                [100_000, 99_999, 1, 2, 3],
                [LedgerEntry.maxCount, 0, 9, 0, 0],
            ])
        #expect(entries.map(\.status) == [.ended, .inProgress, .canceling, .other])
        #expect(entries.map(\.archived) == [true, false, false, false])
    }

    @Test("A batch listed twice is counted once")
    func duplicates() {
        let ledger = ledger([batch("b1", .inProgress), batch("b1", .inProgress)], context: noRetention).0
        #expect(ledger.count == 1)
        #expect(ledger.totals.requests.processing == 10)
    }

    @Test("No active batch: no oldest-active and no next-expiry")
    func noActive() {
        let ledger = ledger([batch("b1", .ended, counts: RequestCounts(succeeded: 1), ended: 2_000)], context: noRetention).0
        #expect(BatchSummary(ledger).oldestActiveCreatedAt == nil)
        #expect(BatchSummary(ledger).nextExpiry == nil)
        #expect(ledger.walkFloor == 0)
    }

    @Test("Batches seen ending are counted once with their final counts and duration")
    func lifecycleTransitions() {
        let first = ledger([batch("b2", .canceling, cancelInitiated: 1_500), batch("b1", .inProgress)], context: noRetention)
        var ledger = first.0
        let counted = first.1
        #expect(counted.isEmpty)
        var lifecycle = BatchLifecycle()

        let endedB1 = batch("b1", .ended, counts: RequestCounts(succeeded: 6, errored: 1, expired: 3), created: 1_000, ended: 4_600)
        var newly = ledger.apply(walk: [batch("b2", .canceling, cancelInitiated: 1_500), endedB1], covering: 0, context: noRetention).newlyEnded
        #expect(newly.map(\.id) == ["b1"])
        lifecycle.count(newly)
        #expect(lifecycle.endedBatches == 1)
        #expect(lifecycle.endedRequests == RequestCounts(succeeded: 6, errored: 1, expired: 3))
        #expect(lifecycle.processingDurations.count == 1)
        #expect(lifecycle.processingDurations.sum == 3_600)

        // Seen again as ended: no double count.
        let endedB2 = batch("b2", .ended, counts: RequestCounts(succeeded: 2, canceled: 8), ended: 12_000)
        newly = ledger.apply(walk: [endedB2, endedB1], covering: 0, context: noRetention).newlyEnded
        #expect(newly.map(\.id) == ["b2"])
        newly = ledger.apply(walk: [endedB2, endedB1], covering: 0, context: noRetention).newlyEnded
        #expect(newly.isEmpty)
        // A full read after that finds nothing new either.
        var builder = LedgerBuilder()
        builder.add([endedB2, endedB1], comparingWith: ledger, context: noRetention)
        let adopted = ledger.adopt(builder, context: noRetention)
        #expect(adopted.newlyEnded.isEmpty)
        #expect(adopted.corrections.isEmpty)
        #expect(ledger.records.isEmpty, "without per-batch series, ended batches keep no full record")
    }

    @Test("A batch first seen already ended counts only if it ended after the exporter started")
    func firstSeenEnded() {
        let counted = ledger(
            [
                batch("old", .ended, counts: RequestCounts(succeeded: 100), ended: 9_999),
                batch("new", .ended, counts: RequestCounts(expired: 4), created: 9_000, ended: 10_001),
            ],
            context: noRetention
        ).1
        #expect(counted.map(\.id) == ["new"])
    }

    @Test("Ended batches keep their full record through the retention, then fold to an entry")
    func retention() {
        let context = LedgerContext(countEndedAfter: 0, now: 10_000, endedRetention: 3_600)
        var ledger = ledger([batch("recent", .ended, ended: 9_000), batch("old", .ended, ended: 1_000)], context: context).0
        #expect(Set(ledger.records.keys) == [batchKey("recent")])
        let version = ledger.version
        let expiredEarly = ledger.expireRecords(context: context)
        #expect(expiredEarly.isEmpty)
        #expect(ledger.version == version, "nothing expired, nothing changed")
        let listingVersion = ledger.listingVersion
        let expiredLater = ledger.expireRecords(context: LedgerContext(countEndedAfter: 0, now: 13_000, endedRetention: 3_600))
        #expect(expiredLater == [batchKey("recent")])
        #expect(ledger.records.isEmpty)
        #expect(ledger.count == 2)
        #expect(ledger.version != version)
        #expect(ledger.listingVersion == listingVersion, "an expiry changes no listed batch")
    }

    @Test("An unchanged walk leaves the version alone; a change moves it")
    func version() {
        let batches = [batch("b2", .inProgress), batch("b1", .ended, counts: RequestCounts(succeeded: 10), ended: 1_500)]
        var ledger = ledger(batches, context: noRetention).0
        let version = ledger.version
        ledger.apply(walk: batches, covering: 0, context: noRetention)
        #expect(ledger.version == version)
        ledger.apply(walk: [batch("b2", .canceling), batches[1]], covering: 0, context: noRetention)
        #expect(ledger.version != version)
        #expect(ledger.totals.byStatus[.canceling] == 1)
    }

    @Test("A walk goes on until it has passed every batch that was active, however deep")
    func deepActiveBatch() {
        let ended = (0..<5).map { batch("e\($0)", .ended, counts: RequestCounts(succeeded: 1), ended: 1_100) }
        let ledger = ledger(ended + [batch("old-active", .inProgress)], context: noRetention).0
        var walk = IncrementalWalk(floor: ledger.walkFloor)
        let first = walk.observe(Array(ended[0..<2]), in: ledger)
        let second = walk.observe(Array(ended[2..<5]), in: ledger)
        let nowEnded = batch("old-active", .ended, counts: RequestCounts(succeeded: 10), ended: 15_000)
        let third = walk.observe([nowEnded], in: ledger)
        #expect(first && second, "the walk must go on while an active batch lies deeper")
        #expect(!third)
        var updated = ledger
        let newly = updated.apply(walk: walk.fresh, covering: walk.covering(listingEnded: false), context: noRetention).newlyEnded
        #expect(newly.map(\.id) == ["old-active"])
        #expect(updated.totals.byStatus[.ended] == 6)
    }

    @Test("With nothing active, the walk stops at the first known batch and keeps the rest")
    func nothingActive() {
        let previous = (0..<4).map { batch("e\($0)", .ended, counts: RequestCounts(succeeded: 1), ended: 1_100) }
        var ledger = ledger(previous, context: noRetention).0
        var walk = IncrementalWalk(floor: ledger.walkFloor)
        let fresh = batch("new", .inProgress, counts: RequestCounts(processing: 3))
        let goOn = walk.observe([fresh, previous[0]], in: ledger)
        #expect(!goOn)
        ledger.apply(walk: walk.fresh, covering: walk.covering(listingEnded: false), context: noRetention)
        #expect(ledger.entries.map(\.key) == ["e3", "e2", "e1", "e0", "new"].map(batchKey))
        #expect(ledger.totals.requests == RequestCounts(processing: 3, succeeded: 4))
    }

    @Test("A full read drops deleted batches, keeps ones newer than it, and never revives an ended batch")
    func adoptRules() {
        var ledger = ledger(
            [batch("a2", .inProgress), batch("e2", .ended, ended: 1_200), batch("e1", .ended, ended: 1_100)],
            context: noRetention
        ).0
        // While a resync read the listing, incremental polls saw a2 end and a3 arrive.
        let applied = ledger.apply(
            walk: [batch("a3", .inProgress), batch("a2", .ended, counts: RequestCounts(succeeded: 10), ended: 15_000)],
            covering: ledger.position(of: batchKey("a2")),
            context: noRetention
        )
        // The resync read a2 still running, and e1 was deleted before it got there.
        var builder = LedgerBuilder()
        builder.add([batch("a2", .inProgress), batch("e2", .ended, ended: 1_200)], comparingWith: ledger, context: noRetention)
        #expect(applied.arrived == [batchKey("a3")])
        let adopted = ledger.adopt(builder, arrivedSince: Set(applied.arrived), context: noRetention)
        #expect(adopted.newlyEnded.isEmpty, "a2 was counted when the walk saw it end")
        #expect(adopted.corrections == [.deleted: 1])
        #expect(ledger.entries.map(\.key) == ["e2", "a2", "a3"].map(batchKey))
        #expect(ledger.entry(for: batchKey("a2"))?.status == .ended)
        #expect(ledger.totals == ledger.recount())
    }
}

@Suite("Folded state equals a full read")
struct FoldedStateTests {
    /// Ids of batches the ledger has, newest first, with their entries; `archived` left out
    /// where a walk cannot see it.
    static func view(_ ledger: BatchLedger, ignoringArchival: Bool) -> [LedgerEntry] {
        ledger.entries.reversed().map { entry in
            var entry = entry
            if ignoringArchival { entry.archived = false }
            return entry
        }
    }

    /// Where two views first differ, readably; `nil` when they are equal.
    static func difference(_ lhs: [LedgerEntry], _ rhs: [LedgerEntry]) -> String? {
        guard lhs != rhs else { return nil }
        let first = (0..<min(lhs.count, rhs.count)).first { lhs[$0] != rhs[$0] } ?? min(lhs.count, rhs.count)
        let left = first < lhs.count ? "\(lhs[first])" : "nothing"
        let right = first < rhs.count ? "\(rhs[first])" : "nothing"
        return "\(lhs.count) vs \(rhs.count) entries; first difference at \(first) (newest first): \(left) vs \(right)"
    }

    @Test(
        "Over random histories (arrivals, endings, cancellations, deletions, archival) incremental polls equal a full read but for deep deletions and archival, and a resync makes them equal",
        arguments: [1, 2, 3, 4, 5, 6] as [UInt64]
    )
    func randomHistories(seed: UInt64) throws {
        let key = "sk-ant-test"
        let workspace = SimulatedWorkspace(
            configuration: SimulatorConfiguration(
                apiKey: key, seed: seed, initialBatches: 3_000, initialActive: 25, time: .manual(),
                dynamics: .init(arrivalsPerHour: 60, expiringFraction: 0.1, canceledFraction: 0.2, cancelingDuration: 60...1800)
            )
        )
        var pages = SimulatedPages(responder: SimulatorResponder(workspace: workspace), apiKey: key)
        var random = SplitMix64(seed: seed &* 7919)
        let limit = [40, 100, 1000][Int(seed % 3)]
        let start = workspace.truth().now
        // A short retention, so most ended batches are folded to entries.
        func context() -> LedgerContext {
            LedgerContext(countEndedAfter: start, now: workspace.truth().now, endedRetention: 3_600)
        }
        var incremental = BatchLedger()
        var naive = BatchLedger()
        var countedIncrementally: [String] = []
        var countedNaively: [String] = []
        countedIncrementally += try pages.fullRead(into: &incremental, limit: limit, context: context()).newlyEnded.map(\.id)
        countedNaively += try pages.fullRead(into: &naive, limit: limit, context: context()).newlyEnded.map(\.id)
        var deletedSinceResync: Set<UInt64> = []

        // Bounded in size (a few thousand batches, a full read per step) so it never holds the
        // test runner's threads for long.
        for step in 1...21 {
            // Days pass too, so batches reach the 29-day archival.
            workspace.advance(seconds: Double(random.next() % (step % 10 == 0 ? 86_400 * 3 : 3_600)))
            // Delete a few ended batches anywhere: near the top, which an incremental walk must
            // notice, and deep down, which only a full resync can.
            let ended = workspace.allBatches().filter { $0.processingStatus == .ended }
            for _ in 0..<Int(random.next() % 3) where !ended.isEmpty {
                let depth = random.next() % 2 == 0 ? min(ended.count, 50) : ended.count
                let victim = ended[Int(random.next() % UInt64(depth))]
                if (try? workspace.deleteBatch(id: victim.id)) != nil { deletedSinceResync.insert(batchKey(victim.id)) }
            }
            let before = pages.requests
            countedIncrementally += try pages.incremental(into: &incremental, limit: limit, context: context()).map(\.id)
            let incrementalRequests = pages.requests - before
            incremental.expireRecords(context: context())
            countedNaively += try pages.fullRead(into: &naive, limit: limit, context: context()).newlyEnded.map(\.id)
            naive.expireRecords(context: context())
            let retentionStart = context().now - (context().endedRetention ?? .infinity)
            #expect(
                !incremental.records.values.contains { $0.processingStatus == .ended && ($0.endedAt ?? -.infinity) < retentionStart },
                "seed \(seed) step \(step): a record past the retention was not expired"
            )
            for cap in [3, 40] {
                let chosenFromLedger = PerBatchSelection(ledger: incremental, maxBatches: cap)
                let chosenFromRecords = PerBatchSelection(
                    from: incremental.records.values, now: context().now, maxBatches: cap, endedRetention: .seconds(3_600)
                )
                #expect(chosenFromLedger == chosenFromRecords, "seed \(seed) step \(step) cap \(cap)")
            }
            let fullRequests = (naive.count + limit - 1) / limit

            #expect(incremental.totals == incremental.recount(), "seed \(seed) step \(step): running totals drifted")
            let seen = Self.view(incremental, ignoringArchival: true).filter { !deletedSinceResync.contains($0.key) }
            let difference = Self.difference(seen, Self.view(naive, ignoringArchival: true))
            #expect(difference == nil, "seed \(seed) step \(step): incremental view differs from a full read")
            #expect(incrementalRequests <= max(fullRequests, 1))

            if step % 7 == 0 {
                try pages.fullRead(into: &incremental, limit: limit, context: context())
                incremental.expireRecords(context: context())
                deletedSinceResync = []
                let afterResync = Self.difference(Self.view(incremental, ignoringArchival: false), Self.view(naive, ignoringArchival: false))
                #expect(afterResync == nil, "seed \(seed) step \(step): a resync must make them equal")
                #expect(incremental.totals == naive.totals)
                #expect(Set(incremental.records.keys) == Set(naive.records.keys))
            }
        }
        #expect(countedIncrementally.sorted() == countedNaively.sorted(), "seed \(seed): both count the same batches as ended, each once")
        #expect(Set(countedIncrementally).count == countedIncrementally.count)
        #expect(naive.entries.contains { $0.archived }, "the history reached the 29-day archival")
        #expect(incremental.records.count < incremental.count / 4, "most batches are folded (\(incremental.records.count) records of \(incremental.count))")
    }

    @Test("In steady state (active batches all on the newest page) a poll costs one request")
    func steadyStateOneRequest() throws {
        let key = "sk-ant-test"
        let workspace = SimulatedWorkspace(configuration: SimulatorConfiguration(apiKey: key, initialBatches: 10_000, initialActive: 20))
        var pages = SimulatedPages(responder: SimulatorResponder(workspace: workspace), apiKey: key)
        let context = LedgerContext(countEndedAfter: 0, now: workspace.truth().now, endedRetention: nil)
        var ledger = BatchLedger()
        try pages.fullRead(into: &ledger, limit: 1000, context: context)
        #expect(pages.requests == 10)
        let version = ledger.version
        for _ in 0..<5 {
            let before = pages.requests
            try pages.incremental(into: &ledger, limit: 1000, context: context)
            #expect(pages.requests - before == 1)
        }
        #expect(ledger.count == 10_000)
        #expect(ledger.version == version, "nothing changed, so nothing is re-rendered")
        #expect(ledger.records.count == 20)
    }
}
