import BatchesAPI

/// A batch with just the fields a test cares about.
func batch(
    _ id: String,
    _ status: ProcessingStatus,
    counts: RequestCounts = RequestCounts(processing: 10),
    created: Double = 1_000,
    ended: Double? = nil,
    cancelInitiated: Double? = nil
) -> MessageBatch {
    MessageBatch(
        id: id,
        processingStatus: status,
        requestCounts: counts,
        createdAt: created,
        expiresAt: created + 86_400,
        endedAt: ended,
        cancelInitiatedAt: cancelInitiated
    )
}
