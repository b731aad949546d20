import Basics
import BatchesAPI

/// Which batches get their own series, under the operator's cardinality cap.
public struct PerBatchSelection: Sendable, Equatable {
    /// Batches to expose, in exposition order (active newest first, then most recently ended).
    public let batches: [MessageBatch]
    /// Batches that qualified but were left out by the cap.
    public let dropped: Int

    /// - Parameters:
    ///   - maxBatches: the cap; 0 turns per-batch series off (and counts nothing as dropped).
    ///   - endedRetention: ended batches stay this long after `ended_at`.
    public init<C: Collection<MessageBatch>>(from batches: C, now: Double, maxBatches: Int, endedRetention: Duration) {
        guard maxBatches > 0 else {
            self.batches = []
            dropped = 0
            return
        }
        let retentionStart = now - endedRetention.inSeconds
        // Sorted as positions into `batches`, and only the chosen ones copied: the records of a
        // long retention are tens of thousands of batch values, and moving or copying each of
        // them on every change was most of a poll's cost.
        var active: [C.Index] = []
        var recentlyEnded: [C.Index] = []
        for position in batches.indices {
            let batch = batches[position]
            // Anything not `ended`, including a status the API may add later, is treated as
            // active: hiding it would hide exactly what nobody has seen before.
            if batch.processingStatus != .ended {
                active.append(position)
            } else if (batch.endedAt ?? -.infinity) >= retentionStart {
                recentlyEnded.append(position)
            }
        }
        active.sort { (batches[$0].createdAt ?? 0, batches[$0].id) > (batches[$1].createdAt ?? 0, batches[$1].id) }
        recentlyEnded.sort { (batches[$0].endedAt ?? 0, batches[$0].id) > (batches[$1].endedAt ?? 0, batches[$1].id) }
        let qualifying = active.count + recentlyEnded.count
        self.batches = (active + recentlyEnded).prefix(maxBatches).map { batches[$0] }
        dropped = qualifying - self.batches.count
    }
}
