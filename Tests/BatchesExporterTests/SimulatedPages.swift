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

    /// A full read folded into `ledger` (as the first poll and every resync do).
    @discardableResult
    mutating func fullRead(into ledger: inout BatchLedger, limit: Int, context: LedgerContext) throws -> (
        newlyEnded: [MessageBatch], corrections: [LedgerCorrection: Int]
    ) {
        var builder = LedgerBuilder()
        var cursor: String?
        while true {
            let page = try page(after: cursor, limit: limit)
            builder.add(page.data, comparingWith: ledger, context: context)
            guard page.hasMore, let next = page.lastID else { break }
            cursor = next
        }
        return ledger.adopt(builder, context: context)
    }

    /// An incremental walk folded into `ledger`, as a steady-state poll does.
    @discardableResult
    mutating func incremental(into ledger: inout BatchLedger, limit: Int, context: LedgerContext) throws -> [MessageBatch] {
        var walk = IncrementalWalk(floor: ledger.walkFloor)
        var cursor: String?
        while true {
            let page = try page(after: cursor, limit: limit)
            let goOn = walk.observe(page.data, in: ledger)
            let ended = !page.hasMore || page.lastID == nil
            if ended || !goOn {
                return ledger.apply(walk: walk.fresh, covering: walk.covering(listingEnded: ended), context: context).newlyEnded
            }
            cursor = page.lastID
        }
    }
}
