import BatchesSimulator
import Foundation
import Testing

/// Walks the list with `after_id = last_id`, as the SDKs do, straight on the workspace.
func walkForward(_ workspace: SimulatedWorkspace, limit: Int) throws -> [String] {
    var ids: [String] = []
    var after: String?
    while true {
        let page = try workspace.list(limit: limit, afterID: after)
        ids += page.batches.map(\.id)
        guard page.hasMore, let last = page.lastID else { return ids }
        after = last
    }
}

/// Walks from the oldest batch back up with `before_id = first_id`; returns ids newest first.
func walkBackward(_ workspace: SimulatedWorkspace, from oldest: String, limit: Int) throws -> [String] {
    var pages: [[String]] = []
    var before = oldest
    while true {
        let page = try workspace.list(limit: limit, beforeID: before)
        pages.append(page.batches.map(\.id))
        guard page.hasMore, let first = page.firstID else { break }
        before = first
    }
    return pages.reversed().flatMap { $0 }
}

@Suite("Large workspaces")
struct ScaleTests {
    @Test("200,000 batches page completely and in order at limit 1000, both ways")
    func twoHundredThousand() throws {
        let clock = ContinuousClock()
        var made: SimulatedWorkspace?
        let seeding = clock.measure { made = makeWorkspace(batches: 200_000, active: 20) }
        let workspace = try #require(made)
        let all = workspace.allBatches()
        #expect(all.count == 200_000)

        var forward: [String] = []
        let reading = try clock.measure { forward = try walkForward(workspace, limit: 1000) }
        #expect(forward == all.map(\.id))
        #expect(Set(forward).count == 200_000)
        #expect(zip(all, all.dropFirst()).allSatisfy { $0.createdAt >= $1.createdAt })

        let oldest = try #require(forward.last)
        let backward = try walkBackward(workspace, from: oldest, limit: 1000)
        #expect(backward == Array(forward.dropLast()))

        // A page deep in the list, through the HTTP responder.
        let responder = SimulatorResponder(workspace: workspace)
        let cursor = forward[150_000]
        let body = try responder.send("/v1/messages/batches?limit=1000&after_id=\(cursor)").json()
        let data = try #require(body["data"] as? [[String: Any]])
        #expect(data.compactMap { $0["id"] as? String } == Array(forward[150_001...151_000]))
        #expect(body["has_more"] as? Bool == true)
        print("200k batches: seeding \(seeding), full read of 200 pages \(reading)")
    }

    @Test("deleting batches deep in the list keeps every page, cursor and count consistent")
    func deletionsDeepInTheList() throws {
        let workspace = makeWorkspace(batches: 6000, active: 10)
        var remaining = workspace.allBatches().map(\.id)
        var rng = SystemRandomNumberGenerator()
        let responder = SimulatorResponder(workspace: workspace)
        // 2,500 deletions: past the compaction threshold (1,024) once, with tombstones left after.
        for round in 0..<2500 {
            let index = Int.random(in: 0..<remaining.count, using: &rng)
            let id = remaining.remove(at: index)
            #expect(responder.send("/_sim/batches/\(id)", method: "DELETE").status == 200)
            if round % 500 == 0 {
                #expect(try walkForward(workspace, limit: 37) == remaining)
            }
            if round == 2499 {
                // The deleted id is no cursor any more.
                let reply = responder.send("/v1/messages/batches?after_id=\(id)")
                try expectAnthropicError(reply, status: 400, type: "invalid_request_error")
            }
        }
        #expect(try walkForward(workspace, limit: 1000) == remaining)
        #expect(try walkForward(workspace, limit: 7) == remaining)
        let oldest = try #require(remaining.last)
        #expect(try walkBackward(workspace, from: oldest, limit: 13) == Array(remaining.dropLast()))
        #expect(workspace.truth().batches == remaining.count)
        #expect(workspace.allBatches().map(\.id) == remaining)

        // Deleting the whole newest page leaves has_more and cursors right at the top.
        for id in remaining.prefix(50) {
            try workspace.deleteBatch(id: id)
        }
        remaining.removeFirst(50)
        let top = try workspace.list(limit: 20)
        #expect(top.batches.map(\.id) == Array(remaining.prefix(20)))
        #expect(top.hasMore)
        let newest = try workspace.list(limit: 20, beforeID: remaining[20])
        #expect(newest.batches.map(\.id) == Array(remaining.prefix(20)))
        #expect(!newest.hasMore)
    }

    @Test("new batches after deletions still go on top, and events for deleted batches are ignored")
    func createAfterDelete() throws {
        let workspace = makeWorkspace(batches: 3000, active: 100, dynamics: .init(arrivalsPerHour: 0))
        let ids = workspace.allBatches().map(\.id)
        for id in ids.prefix(1500) {
            try workspace.deleteBatch(id: id)
        }
        let fresh = try workspace.createBatches(BatchSpec(count: 3, requests: 10))
        workspace.advance(seconds: 2 * 86_400)
        let listed = try walkForward(workspace, limit: 100)
        #expect(listed == fresh + Array(ids.dropFirst(1500)))
        #expect(workspace.allBatches().allSatisfy { $0.processingStatus == .ended })
    }
}
