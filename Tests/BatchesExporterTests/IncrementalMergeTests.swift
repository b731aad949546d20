import BatchesAPI
import BatchesExporter
import BatchesSimulator
import HTTPServing
import NIOCore
import Testing

/// Pages from the simulator's own responder: the same JSON the binary serves, decoded by the
/// same decoder the exporter uses, without sockets.
struct SimulatedPages {
    let responder: SimulatorResponder
    let apiKey: String
    var requests = 0

    mutating func page(after cursor: String?, limit: Int) throws -> BatchListPage {
        requests += 1
        let target = "/v1/messages/batches?limit=\(limit)" + (cursor.map { "&after_id=\($0)" } ?? "")
        let response = responder.respond(
            to: ServerRequest(method: "GET", target: target, headers: [("x-api-key", apiKey), ("anthropic-version", "2023-06-01")])
        )
        guard response.status == 200 else { throw PageDecodingError(message: "status \(response.status)") }
        return try BatchListPage.decode(Array(response.body.readableBytesView))
    }

    mutating func readAll(limit: Int) throws -> [MessageBatch] {
        var batches: [MessageBatch] = []
        var cursor: String?
        while true {
            let page = try page(after: cursor, limit: limit)
            batches += page.data
            guard page.hasMore, let next = page.lastID else { return batches }
            cursor = next
        }
    }

    /// An incremental walk over `previous`; returns the merged listing.
    mutating func incremental(over previous: [MessageBatch], limit: Int) throws -> [MessageBatch] {
        var merge = IncrementalMerge(previous: previous)
        var cursor: String?
        while true {
            let page = try page(after: cursor, limit: limit)
            let goOn = merge.observe(page)
            guard page.hasMore, let next = page.lastID else { return merge.merged(listingEnded: true) }
            guard goOn else { return merge.merged(listingEnded: false) }
            cursor = next
        }
    }
}

@Suite("Incremental polling equals a full read")
struct IncrementalMergeTests {
    @Test("Over random histories (arrivals, endings, cancellations, deletions) every incremental snapshot equals a full read, but for deletions of batches older than it read", arguments: [1, 2, 3, 4, 5, 6, 7, 8] as [UInt64])
    func randomHistories(seed: UInt64) throws {
        let key = "sk-ant-test"
        let workspace = SimulatedWorkspace(
            configuration: SimulatorConfiguration(
                apiKey: key, seed: seed, initialBatches: 1_500, initialActive: 25, time: .manual(),
                dynamics: .init(arrivalsPerHour: 400, expiringFraction: 0.1, canceledFraction: 0.2, cancelingDuration: 60...1800)
            )
        )
        var pages = SimulatedPages(responder: SimulatorResponder(workspace: workspace), apiKey: key)
        var random = SplitMix64(seed: seed &* 7919)
        let limit = [40, 100, 1000][Int(seed % 3)]
        var snapshot = try pages.readAll(limit: limit)
        var deletedSinceFullRead: Set<String> = []

        for _ in 0..<25 {
            workspace.advance(seconds: Double(random.next() % 3_600))
            // Delete a few batches anywhere: near the top, which an incremental walk must notice,
            // and deep down, which only a full resync can.
            let all = workspace.allBatches()
            for _ in 0..<Int(random.next() % 3) where !all.isEmpty {
                let victim = all[Int(random.next() % UInt64(min(all.count, random.next() % 2 == 0 ? 50 : all.count)))]
                if (try? workspace.deleteBatch(id: victim.id)) != nil { deletedSinceFullRead.insert(victim.id) }
            }
            let before = pages.requests
            snapshot = try pages.incremental(over: snapshot, limit: limit)
            let incrementalRequests = pages.requests - before
            let full = try pages.readAll(limit: limit)

            let merged = WorkspaceSnapshot(batches: snapshot, takenAt: 0).batches.filter { !deletedSinceFullRead.contains($0.id) }
            #expect(merged.count == full.count)
            #expect(merged == full, "seed \(seed): incremental snapshot differs from a full read")
            let fullRequests = (full.count + limit - 1) / limit
            #expect(incrementalRequests <= max(fullRequests, 1))
        }
    }

    @Test("In steady state (active batches all on the newest page) a poll costs one request")
    func steadyStateOneRequest() throws {
        let key = "sk-ant-test"
        let workspace = SimulatedWorkspace(configuration: SimulatorConfiguration(apiKey: key, initialBatches: 10_000, initialActive: 20))
        var pages = SimulatedPages(responder: SimulatorResponder(workspace: workspace), apiKey: key)
        var snapshot = try pages.readAll(limit: 1000)
        #expect(pages.requests == 10)
        for _ in 0..<5 {
            let before = pages.requests
            snapshot = try pages.incremental(over: snapshot, limit: 1000)
            #expect(pages.requests - before == 1)
        }
        #expect(snapshot.count == 10_000)
    }

    @Test("A walk goes on until it has passed every batch that was active, however deep")
    func deepActiveBatch() throws {
        let active = MessageBatch(id: "old-active", processingStatus: .inProgress, requestCounts: RequestCounts(processing: 1))
        let ended = (0..<5).map { MessageBatch(id: "e\($0)", processingStatus: .ended, requestCounts: RequestCounts(succeeded: 1)) }
        var merge = IncrementalMerge(previous: ended + [active])
        let first = merge.observe(BatchListPage(data: Array(ended[0..<2]), hasMore: true, firstID: "e0", lastID: "e1"))
        let second = merge.observe(BatchListPage(data: Array(ended[2..<5]), hasMore: true, firstID: "e2", lastID: "e4"))
        let nowEnded = MessageBatch(id: "old-active", processingStatus: .ended, requestCounts: RequestCounts(succeeded: 1))
        let third = merge.observe(BatchListPage(data: [nowEnded], hasMore: false, firstID: "old-active", lastID: "old-active"))
        #expect(first && second, "the walk must go on while an active batch lies deeper")
        #expect(!third)
        #expect(merge.merged(listingEnded: true).last == nowEnded)
    }

    @Test("With nothing active, the walk stops at the first known batch and keeps the rest")
    func nothingActive() {
        let previous = (0..<4).map { MessageBatch(id: "e\($0)", processingStatus: .ended, requestCounts: RequestCounts(succeeded: 1)) }
        var merge = IncrementalMerge(previous: previous)
        let fresh = MessageBatch(id: "new", processingStatus: .inProgress, requestCounts: RequestCounts(processing: 3))
        let goOn = merge.observe(BatchListPage(data: [fresh, previous[0]], hasMore: true, firstID: "new", lastID: "e0"))
        #expect(!goOn)
        #expect(merge.merged(listingEnded: false).map(\.id) == ["new", "e0", "e1", "e2", "e3"])
    }
}

@Suite("The request budget's sliding window")
struct SlidingWindowBudgetTests {
    @Test("At most limit requests in any window; the next may go when the oldest leaves it")
    func window() {
        var budget = SlidingWindowBudget(limit: 3, window: .seconds(60))
        let start = ContinuousClock.now
        for offset in [0, 10, 20] {
            let now = start + .seconds(offset)
            #expect(budget.earliestSend(at: now) == now)
            budget.record(at: now)
        }
        #expect(budget.earliestSend(at: start + .seconds(30)) == start + .seconds(60))
        #expect(budget.earliestSend(at: start + .seconds(60)) == start + .seconds(60))
        budget.record(at: start + .seconds(60))
        #expect(budget.earliestSend(at: start + .seconds(61)) == start + .seconds(70))
    }

    @Test("No budget never waits")
    func unlimited() async throws {
        let budget = RequestBudget(requestsPerMinute: 0)
        for _ in 0..<1000 { #expect(budget.tryAcquire()) }
        #expect(try await budget.acquire() == false)
    }

    @Test("tryAcquire refuses once the window is full")
    func tryAcquire() {
        let budget = RequestBudget(requestsPerMinute: 2)
        #expect(budget.tryAcquire())
        #expect(budget.tryAcquire())
        #expect(!budget.tryAcquire())
    }
}
