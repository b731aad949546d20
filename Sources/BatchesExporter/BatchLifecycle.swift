import BatchesAPI
import PrometheusExposition

/// The counters of batches seen reaching `ended`: how many, their final request counts by
/// result, and how long they took.
///
/// Which batches count is the ledger's decision (``BatchLedger/apply(walk:covering:context:)``
/// and ``BatchLedger/adopt(_:context:)``): a batch listed before and not ended that is ended
/// now, or one first seen already ended with an `ended_at` after the exporter started; never a
/// batch twice, since the ledger knows every batch it has seen ended.
public struct BatchLifecycle: Sendable, Equatable {
    /// Buckets for a job that runs at most 24 hours: 1 minute to 24 hours.
    public static let durationBuckets: [Double] = [60, 300, 900, 1800, 3600, 7200, 14_400, 28_800, 43_200, 86_400]

    public private(set) var endedBatches: UInt64 = 0
    public private(set) var endedRequests = RequestCounts()
    public private(set) var processingDurations = HistogramCounts(bounds: BatchLifecycle.durationBuckets)

    public init() {}

    /// Counters restored from a saved state (``StateFile``), continuing where they stopped.
    public init(endedBatches: UInt64, endedRequests: RequestCounts, processingDurations: HistogramCounts) {
        self.endedBatches = endedBatches
        self.endedRequests = endedRequests
        self.processingDurations = processingDurations
    }

    /// Counts batches the ledger found newly ended.
    public mutating func count(_ newlyEnded: [MessageBatch]) {
        for batch in newlyEnded {
            endedBatches += 1
            endedRequests = endedRequests + batch.requestCounts
            if let ended = batch.endedAt, let created = batch.createdAt, ended >= created {
                processingDurations.observe(ended - created)
            }
        }
    }
}
