/// One batch as the list endpoint describes it, reduced to what the exporter uses. Unknown
/// fields are ignored; an unknown `processing_status` is kept, not rejected.
public struct MessageBatch: Sendable, Equatable {
    public var id: String
    public var processingStatus: ProcessingStatus
    public var requestCounts: RequestCounts
    /// Seconds since the epoch; `nil` when absent, null or not a timestamp.
    public var createdAt: Double?
    public var expiresAt: Double?
    public var endedAt: Double?
    public var cancelInitiatedAt: Double?
    public var archivedAt: Double?
    /// `results_url` as the API gives it (absolute or relative); `nil` until the batch ends.
    /// Not resolved or checked here: the results collector decides whether the key may go there.
    public var resultsURL: String?

    public init(
        id: String,
        processingStatus: ProcessingStatus,
        requestCounts: RequestCounts,
        createdAt: Double? = nil,
        expiresAt: Double? = nil,
        endedAt: Double? = nil,
        cancelInitiatedAt: Double? = nil,
        archivedAt: Double? = nil,
        resultsURL: String? = nil
    ) {
        self.id = id
        self.processingStatus = processingStatus
        self.requestCounts = requestCounts
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.endedAt = endedAt
        self.cancelInitiatedAt = cancelInitiatedAt
        self.archivedAt = archivedAt
        self.resultsURL = resultsURL
    }
}

/// `processing_status`, open-ended: the API may add values, and an exporter that crashed or
/// dropped batches on a new one would hide exactly the batches worth looking at.
public enum ProcessingStatus: Hashable, Sendable, Comparable {
    case inProgress
    case canceling
    case ended
    case other(String)

    /// The values the API documents, in lifecycle order.
    public static let documented: [ProcessingStatus] = [.inProgress, .canceling, .ended]

    public init(rawValue: String) {
        switch rawValue {
        case "in_progress": self = .inProgress
        case "canceling": self = .canceling
        case "ended": self = .ended
        default: self = .other(rawValue)
        }
    }

    public var rawValue: String {
        switch self {
        case .inProgress: "in_progress"
        case .canceling: "canceling"
        case .ended: "ended"
        case .other(let value): value
        }
    }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// `request_counts`: how the batch's requests split by outcome. Everything is `processing`
/// until the whole batch ends; the five always sum to the batch size.
public struct RequestCounts: Sendable, Equatable {
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

    public var total: Int { processing + succeeded + errored + canceled + expired }

    /// The five results in the API's order, named as the API names them.
    public var byResult: [(result: String, count: Int)] {
        [("processing", processing), ("succeeded", succeeded), ("errored", errored), ("canceled", canceled), ("expired", expired)]
    }

    public static func + (lhs: Self, rhs: Self) -> Self {
        RequestCounts(
            processing: lhs.processing + rhs.processing,
            succeeded: lhs.succeeded + rhs.succeeded,
            errored: lhs.errored + rhs.errored,
            canceled: lhs.canceled + rhs.canceled,
            expired: lhs.expired + rhs.expired
        )
    }
}

/// One page of `GET /v1/messages/batches`.
public struct BatchListPage: Sendable, Equatable {
    public var data: [MessageBatch]
    public var hasMore: Bool
    public var firstID: String?
    public var lastID: String?

    public init(data: [MessageBatch], hasMore: Bool, firstID: String?, lastID: String?) {
        self.data = data
        self.hasMore = hasMore
        self.firstID = firstID
        self.lastID = lastID
    }
}
