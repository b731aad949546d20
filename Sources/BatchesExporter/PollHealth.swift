import Basics
import BatchesAPI
import PrometheusExposition

/// The exporter's own account of its polls: what it asked the API, what came back, and when
/// it last succeeded. How long to wait before the next poll is ``PollStateMachine``'s decision.
public struct PollHealth: Sendable {
    public static let durationBuckets: [Double] = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120]

    /// `nil` until the first poll finished.
    public private(set) var lastPollSucceeded: Bool?
    /// Why the last poll failed; `nil` after a success.
    public private(set) var lastFailure: BatchesAPIError.Reason?
    public private(set) var lastSuccessAt: Double?
    public private(set) var consecutiveFailures = 0
    /// API requests by (HTTP status or `error`, poll kind), retries included.
    public private(set) var apiRequests: [RequestKey: UInt64] = [:]
    /// Failed polls by reason; every reason present from the start so alerts see zeros.
    public private(set) var pollErrors: [BatchesAPIError.Reason: UInt64]
    public private(set) var pollDurations = HistogramCounts(bounds: PollHealth.durationBuckets)

    public struct RequestKey: Hashable, Sendable, Comparable {
        public var code: String
        public var kind: PollKind

        public static func < (lhs: Self, rhs: Self) -> Bool {
            (lhs.code, lhs.kind.rawValue) < (rhs.code, rhs.kind.rawValue)
        }
    }

    public init() {
        pollErrors = Dictionary(uniqueKeysWithValues: Self.countedReasons.map { ($0, 0) })
    }

    /// Reasons that count as a failed poll; cancellation at shutdown and the exporter's own
    /// budget deferring a request are not the API's fault.
    public static let countedReasons = BatchesAPIError.Reason.allCases.filter { $0 != .cancelled && $0 != .deferred }

    public mutating func recordRequest(code: String, kind: PollKind) {
        apiRequests[RequestKey(code: code, kind: kind), default: 0] += 1
    }

    public mutating func recordSuccess(at time: Double, duration: Duration) {
        lastPollSucceeded = true
        lastFailure = nil
        lastSuccessAt = time
        consecutiveFailures = 0
        pollDurations.observe(duration.inSeconds)
    }

    public mutating func recordFailure(_ reason: BatchesAPIError.Reason, duration: Duration) {
        guard Self.countedReasons.contains(reason) else { return }
        lastPollSucceeded = false
        lastFailure = reason
        consecutiveFailures += 1
        pollErrors[reason, default: 0] += 1
        pollDurations.observe(duration.inSeconds)
    }
}

/// Which kind of listing a request belonged to.
public enum PollKind: String, Sendable, CaseIterable {
    /// Every page, newest to oldest.
    case full
    /// Only the newest pages, up to what is known not to have changed.
    case incremental
}
