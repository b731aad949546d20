import RFC3339

/// `processing_status` as the API spells it.
public enum ProcessingStatus: String, Sendable, Hashable, CaseIterable {
    case inProgress = "in_progress"
    case canceling
    case ended
}

/// The five tallies of a batch. They always sum to the batch's size; all but `processing` stay
/// zero until the whole batch ends.
public struct RequestCounts: Sendable, Hashable {
    public var processing: Int
    public var succeeded: Int
    public var errored: Int
    public var canceled: Int
    public var expired: Int

    public init(processing: Int = 0, succeeded: Int = 0, errored: Int = 0, canceled: Int = 0, expired: Int = 0) {
        self.processing = processing
        self.succeeded = succeeded
        self.errored = errored
        self.canceled = canceled
        self.expired = expired
    }

    public var total: Int {
        processing + succeeded + errored + canceled + expired
    }

    static func + (lhs: Self, rhs: Self) -> Self {
        RequestCounts(
            processing: lhs.processing + rhs.processing,
            succeeded: lhs.succeeded + rhs.succeeded,
            errored: lhs.errored + rhs.errored,
            canceled: lhs.canceled + rhs.canceled,
            expired: lhs.expired + rhs.expired
        )
    }
}

/// One message batch as the simulator holds it; times are seconds since the Unix epoch.
///
/// The simulator keeps its own model of a batch on purpose and shares no type with the client
/// (`BatchesAPI`): a stand-in built from the client's own types would agree with the client's
/// mistakes (a misspelt key, a wrong nesting, a missing field) instead of exposing them. Its
/// JSON is written by hand from the API's documentation, in `renderJSON` and `ResultLine.render`.
public struct SimulatedBatch: Sendable, Hashable {
    public static let expiryInterval: Double = 24 * 3600
    public static let archiveInterval: Double = 29 * 24 * 3600

    public var id: String
    public var processingStatus: ProcessingStatus
    public var requestCounts: RequestCounts
    public var createdAt: Double
    public var endedAt: Double?
    public var cancelInitiatedAt: Double?
    public var archivedAt: Double?
    public var resultsURL: String?

    public init(
        id: String,
        processingStatus: ProcessingStatus,
        requestCounts: RequestCounts,
        createdAt: Double,
        endedAt: Double? = nil,
        cancelInitiatedAt: Double? = nil,
        archivedAt: Double? = nil,
        resultsURL: String? = nil
    ) {
        self.id = id
        self.processingStatus = processingStatus
        self.requestCounts = requestCounts
        self.createdAt = createdAt
        self.endedAt = endedAt
        self.cancelInitiatedAt = cancelInitiatedAt
        self.archivedAt = archivedAt
        self.resultsURL = resultsURL
    }

    public var expiresAt: Double {
        createdAt + Self.expiryInterval
    }

    public var size: Int {
        requestCounts.total
    }

    /// The batch object with its ten keys, in the order the API's reference shows them.
    func renderJSON(omitNullArchivedAt: Bool) -> [UInt8] {
        var json = JSONWriter(capacity: 512)
        json.raw("{\"id\":")
        json.string(id)
        json.raw(",\"type\":\"message_batch\",\"processing_status\":")
        json.string(processingStatus.rawValue)
        json.raw(",\"request_counts\":{\"processing\":")
        json.int(requestCounts.processing)
        json.raw(",\"succeeded\":")
        json.int(requestCounts.succeeded)
        json.raw(",\"errored\":")
        json.int(requestCounts.errored)
        json.raw(",\"canceled\":")
        json.int(requestCounts.canceled)
        json.raw(",\"expired\":")
        json.int(requestCounts.expired)
        json.raw("},\"ended_at\":")
        json.timestamp(endedAt)
        json.raw(",\"created_at\":")
        json.timestamp(createdAt)
        json.raw(",\"expires_at\":")
        json.timestamp(expiresAt)
        json.raw(",\"cancel_initiated_at\":")
        json.timestamp(cancelInitiatedAt)
        json.raw(",\"results_url\":")
        json.string(resultsURL)
        if archivedAt != nil || !omitNullArchivedAt {
            json.raw(",\"archived_at\":")
            json.timestamp(archivedAt)
        }
        json.raw("}")
        return json.bytes
    }
}
