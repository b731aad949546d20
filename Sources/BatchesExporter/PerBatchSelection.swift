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
    public init(from batches: [MessageBatch], now: Double, maxBatches: Int, endedRetention: Duration) {
        guard maxBatches > 0 else {
            self.batches = []
            dropped = 0
            return
        }
        let retentionStart = now - endedRetention.inSeconds
        // Anything not `ended`, including a status the API may add later, is treated as active:
        // hiding it would hide exactly what nobody has seen before.
        let active = batches.filter { $0.processingStatus != .ended }
            .sorted { ($0.createdAt ?? 0, $0.id) > ($1.createdAt ?? 0, $1.id) }
        let recentlyEnded = batches.filter { $0.processingStatus == .ended && ($0.endedAt ?? -.infinity) >= retentionStart }
            .sorted { ($0.endedAt ?? 0, $0.id) > ($1.endedAt ?? 0, $1.id) }
        let qualifying = active.count + recentlyEnded.count
        self.batches = Array((active + recentlyEnded).prefix(maxBatches))
        dropped = qualifying - self.batches.count
    }
}
