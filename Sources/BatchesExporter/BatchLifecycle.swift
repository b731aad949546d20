import BatchesAPI
import PrometheusExposition

/// Turns what changed between snapshots into counters: batches seen reaching `ended`, their
/// final request counts by result, and how long they took.
///
/// Counting rule: a batch counts when it was listed before and not ended, and is ended now; or
/// when it is first seen already ended with an `ended_at` after the exporter started. So a
/// restart never counts history twice, and a batch that starts and ends between two polls
/// still counts.
public struct BatchLifecycle: Sendable {
    /// Buckets for a job that runs at most 24 hours: 1 minute to 24 hours.
    public static let durationBuckets: [Double] = [60, 300, 900, 1800, 3600, 7200, 14_400, 28_800, 43_200, 86_400]

    public private(set) var endedBatches: UInt64 = 0
    public private(set) var endedRequests = RequestCounts()
    public private(set) var processingDurations = HistogramCounts(bounds: BatchLifecycle.durationBuckets)

    private let exporterStartedAt: Double
    /// Ids of the batches that were not ended in the last snapshot. Only these can be seen
    /// ending; keeping them alone (not every batch) keeps a steady-state poll cheap.
    private var notEnded: Set<String> = []
    /// Ids counted as ended since start-up, so a batch first seen already ended is counted once.
    private var counted: Set<String> = []

    public init(exporterStartedAt: Double) {
        self.exporterStartedAt = exporterStartedAt
    }

    /// Folds in a new complete snapshot; returns the batches counted as ended by it.
    @discardableResult
    public mutating func observe(_ batches: [MessageBatch]) -> [MessageBatch] {
        var newlyCounted: [MessageBatch] = []
        var stillNotEnded: Set<String> = []
        for batch in batches {
            guard batch.processingStatus == .ended else {
                stillNotEnded.insert(batch.id)
                continue
            }
            let isNewlyEnded =
                notEnded.contains(batch.id)
                || ((batch.endedAt ?? -.infinity) > exporterStartedAt && !counted.contains(batch.id))
            guard isNewlyEnded, counted.insert(batch.id).inserted else { continue }
            newlyCounted.append(batch)
            endedBatches += 1
            endedRequests = endedRequests + batch.requestCounts
            if let ended = batch.endedAt, let created = batch.createdAt, ended >= created {
                processingDurations.observe(ended - created)
            }
        }
        notEnded = stillNotEnded
        return newlyCounted
    }
}
