import BatchesAPI

/// Merges a walk over the newest pages with the previous complete snapshot.
///
/// The list is newest first, and an ended batch never changes again (but for `archived_at`,
/// and deletion). So once a walk has passed every batch that was not ended last time and has
/// reached batches it already knows, everything older is as it was: the walk can stop, and
/// the older part of the previous snapshot completes the picture. Batches the walk passed over
/// in the previous snapshot's order but did not see were deleted.
public struct IncrementalMerge: Sendable {
    private let previous: [MessageBatch]
    /// Position of every previously listed batch, newest first.
    private let positions: [String: Int]
    /// The deepest position of a batch that was not ended last time; -1 when there was none.
    private let deepestActive: Int
    /// The deepest previous position the walk has reached; -1 before any known batch.
    private var deepestReached = -1
    private var fresh: [MessageBatch] = []

    /// Uses the index the snapshot already holds, so a steady-state poll does not rebuild one
    /// over the whole workspace.
    public init(previous: WorkspaceSnapshot) {
        self.previous = previous.batches
        positions = previous.positions
        deepestActive = previous.deepestActivePosition
    }

    public init(previous: [MessageBatch]) {
        self.init(previous: WorkspaceSnapshot(batches: previous, takenAt: 0))
    }

    /// Takes one page; returns whether the walk must go on.
    public mutating func observe(_ page: BatchListPage) -> Bool {
        fresh.append(contentsOf: page.data)
        for batch in page.data {
            if let position = positions[batch.id], position > deepestReached {
                deepestReached = position
            }
        }
        return !(deepestReached >= 0 && deepestReached >= deepestActive)
    }

    /// The merged listing. `listingEnded`: the walk read to the end, so it alone is complete.
    public func merged(listingEnded: Bool) -> [MessageBatch] {
        guard !listingEnded, deepestReached >= 0 else { return fresh }
        return fresh + previous[(deepestReached + 1)...]
    }
}
