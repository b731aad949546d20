import BatchesAPI

/// What one complete listing of a workspace says, reduced to what the metrics need. A value:
/// built once per successful poll, never changed, replaced whole by the next one.
public struct WorkspaceSnapshot: Sendable {
    /// Every batch listed, newest first, each id once.
    public let batches: [MessageBatch]
    /// Batches by status; the documented statuses are always present (0 when none).
    public let batchesByStatus: [ProcessingStatus: Int]
    /// `request_counts` summed over every listed batch.
    public let requestTotals: RequestCounts
    /// The oldest `created_at` among batches that have not ended; `nil` when none is active.
    public let oldestActiveCreatedAt: Double?
    /// The soonest `expires_at` among batches that have not ended.
    public let nextExpiry: Double?
    /// Wall-clock time the listing completed.
    public let takenAt: Double
    /// Each batch's position in ``batches``, for the next incremental poll.
    public let positions: [String: Int]
    /// The deepest position of a batch that has not ended; -1 when none has.
    public let deepestActivePosition: Int

    public init(batches listed: [MessageBatch], takenAt: Double) {
        var positions = [String: Int](minimumCapacity: listed.count)
        var deepestActive = -1
        var batches: [MessageBatch] = []
        batches.reserveCapacity(listed.count)
        var byStatus = Dictionary(uniqueKeysWithValues: ProcessingStatus.documented.map { ($0, 0) })
        var totals = RequestCounts()
        var oldestActive: Double?
        var nextExpiry: Double?
        for batch in listed where positions[batch.id] == nil {
            // Cursor paging should never repeat a batch, but the API is the authority and an
            // exporter that double-counted on a quirk would report numbers nobody can trust.
            positions[batch.id] = batches.count
            if batch.processingStatus != .ended { deepestActive = batches.count }
            batches.append(batch)
            byStatus[batch.processingStatus, default: 0] += 1
            totals = totals + batch.requestCounts
            if batch.processingStatus != .ended {
                if let created = batch.createdAt { oldestActive = min(oldestActive ?? created, created) }
                if let expires = batch.expiresAt { nextExpiry = min(nextExpiry ?? expires, expires) }
            }
        }
        self.batches = batches
        batchesByStatus = byStatus
        requestTotals = totals
        oldestActiveCreatedAt = oldestActive
        self.nextExpiry = nextExpiry
        self.takenAt = takenAt
        self.positions = positions
        deepestActivePosition = deepestActive
    }
}
