import Basics
import BatchesAPI

/// A batch the poller saw reach `ended`, handed to the results collector once.
public struct EndedBatch: Sendable, Equatable, Codable {
    public var id: String
    /// `results_url` as listed; `nil` if the API gave none.
    public var resultsURL: String?
    public var requestCounts: RequestCounts
    /// `ended_at`, seconds since the epoch (the oldest-waiting gauge shows it).
    public var endedAt: Double

    public init(id: String, resultsURL: String?, requestCounts: RequestCounts, endedAt: Double) {
        self.id = id
        self.resultsURL = resultsURL
        self.requestCounts = requestCounts
        self.endedAt = endedAt
    }

    /// From the batch as listed; `fallbackEndedAt` (the time it was seen ended) stands in for
    /// a missing `ended_at`.
    public init(_ batch: MessageBatch, fallbackEndedAt: Double) {
        self.init(id: batch.id, resultsURL: batch.resultsURL, requestCounts: batch.requestCounts, endedAt: batch.endedAt ?? fallbackEndedAt)
    }

    enum CodingKeys: String, CodingKey {
        case id, resultsURL, endedAt, processing, succeeded, errored, canceled, expired
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try container.decode(String.self, forKey: .id)
        resultsURL = try container.decodeIfPresent(String.self, forKey: .resultsURL)
        endedAt = try container.decode(Double.self, forKey: .endedAt)
        requestCounts = RequestCounts(
            processing: try container.decode(Int.self, forKey: .processing),
            succeeded: try container.decode(Int.self, forKey: .succeeded),
            errored: try container.decode(Int.self, forKey: .errored),
            canceled: try container.decode(Int.self, forKey: .canceled),
            expired: try container.decode(Int.self, forKey: .expired)
        )
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encodeIfPresent(resultsURL, forKey: .resultsURL)
        try container.encode(endedAt, forKey: .endedAt)
        try container.encode(requestCounts.processing, forKey: .processing)
        try container.encode(requestCounts.succeeded, forKey: .succeeded)
        try container.encode(requestCounts.errored, forKey: .errored)
        try container.encode(requestCounts.canceled, forKey: .canceled)
        try container.encode(requestCounts.expired, forKey: .expired)
    }
}

/// How a batch's results download ended, as `results_batches_total{outcome}` counts it.
public enum ResultsOutcome: String, Sendable, Codable, CaseIterable {
    /// Read whole, consistent with `request_counts`, and counted.
    case complete
    /// An attempt failed (transfer, status, short or inconsistent file) and another will come.
    case retrying
    /// Every attempt failed: nothing of the batch is counted.
    case failed
    /// `results_url` pointed to another scheme, host or port than the API base URL.
    case skippedHost = "skipped_host"
    /// Larger than `--results.max-bytes`.
    case skippedSize = "skipped_size"
}

/// When to try a failed download again, and how often at most.
public struct ResultsRetryPolicy: Sendable, Equatable {
    public var maxAttempts: Int
    public var baseDelay: Duration
    public var maxDelay: Duration

    /// Defaults: 8 attempts over about half an hour (15 s, 30 s, ... capped at 10 min), long
    /// enough for the 404s seen just after a batch ends.
    public init(maxAttempts: Int = 8, baseDelay: Duration = .seconds(15), maxDelay: Duration = .seconds(600)) {
        self.maxAttempts = max(1, maxAttempts)
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
    }

    /// The wait after the `attempts`-th failed attempt (1-based).
    public func delay(afterAttempts attempts: Int) -> Duration {
        let exponent = min(max(attempts - 1, 0), 30)
        return min(maxDelay, baseDelay * (1 << exponent))
    }
}

/// The collector's state as a value: the queue of batches waiting for their results, the
/// workspace totals and the outcome counters. Every decision of the collector is a method
/// here; the collector only does the I/O. `Codable`, for `--storage.path`.
public struct ResultsCollectorState: Sendable, Equatable, Codable {
    public struct Queued: Sendable, Equatable, Codable {
        public var batch: EndedBatch
        /// The resolved absolute URL (host already checked).
        public var url: String
        /// Attempts made so far (a gate refusal is not an attempt).
        public var attempts: Int
        /// Not before this wall-clock time (seconds since the epoch).
        public var notBefore: Double
        /// Being downloaded now; never persisted as true.
        public var inFlight: Bool

        enum CodingKeys: String, CodingKey { case batch, url, attempts, notBefore }

        init(batch: EndedBatch, url: String, attempts: Int, notBefore: Double) {
            self.batch = batch
            self.url = url
            self.attempts = attempts
            self.notBefore = notBefore
            self.inFlight = false
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            batch = try container.decode(EndedBatch.self, forKey: .batch)
            url = try container.decode(String.self, forKey: .url)
            attempts = try container.decode(Int.self, forKey: .attempts)
            notBefore = try container.decode(Double.self, forKey: .notBefore)
            inFlight = false
        }
    }

    /// What one attempt came to.
    public enum AttemptResult: Sendable, Equatable {
        /// Whole and consistent: count it.
        case complete(ResultsTally)
        /// Worth another try; `reason` is for the log and holds no content.
        case retryable(reason: String)
        /// Larger than the limit.
        case tooLarge
        /// The request gate held the request back: no request was sent, no attempt counted.
        case deferred
    }

    /// What the state did with an attempt's result, for the log.
    public enum Decision: Sendable, Equatable {
        case committed
        case retrying(attempt: Int, after: Duration)
        case failed(attempts: Int)
        case skippedSize
        case deferred(until: Double)
        /// The batch was not in flight (a stale completion): ignored.
        case unknown
    }

    /// What `enqueue` did.
    public enum EnqueueResult: Sendable, Equatable {
        case queued
        case duplicate
        /// Skipped; `firstTime` is true the first time this host is seen, so the caller warns once.
        case skippedHost(host: String, firstTime: Bool)
        case invalidURL
        case queueFull
    }

    public private(set) var queue: [Queued] = []
    public private(set) var totals = ResultsTotals()
    public private(set) var outcomes: [ResultsOutcome: UInt64] = [:]
    public private(set) var bytesRead: UInt64 = 0
    /// Ids recently finished (any terminal outcome), oldest first, so a batch handed over
    /// twice is not counted twice. Bounded by `recentLimit`.
    public private(set) var recent: [String] = []
    private var recentSet: Set<String> = []
    private var warnedHosts: Set<String> = []

    static let recentLimit = 20_000

    public init() {}

    enum CodingKeys: String, CodingKey { case queue, totals, outcomes, bytesRead, recent }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        queue = try container.decode([Queued].self, forKey: .queue)
        totals = try container.decode(ResultsTotals.self, forKey: .totals)
        outcomes = try container.decode([ResultsOutcome: UInt64].self, forKey: .outcomes)
        bytesRead = try container.decode(UInt64.self, forKey: .bytesRead)
        recent = try container.decode([String].self, forKey: .recent)
        recentSet = Set(recent)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(queue, forKey: .queue)
        try container.encode(totals, forKey: .totals)
        try container.encode(outcomes, forKey: .outcomes)
        try container.encode(bytesRead, forKey: .bytesRead)
        try container.encode(recent, forKey: .recent)
    }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.queue == rhs.queue && lhs.totals == rhs.totals && lhs.outcomes == rhs.outcomes && lhs.bytesRead == rhs.bytesRead
            && lhs.recent == rhs.recent
    }

    // MARK: Queue

    /// Takes a batch that just ended. The URL is resolved and checked against the API base
    /// URL here, so a foreign URL is never queued.
    public mutating func enqueue(_ batch: EndedBatch, baseURL: String, now: Double, maxQueued: Int) -> EnqueueResult {
        guard !recentSet.contains(batch.id), !queue.contains(where: { $0.batch.id == batch.id }) else { return .duplicate }
        guard let resultsURL = batch.resultsURL else {
            count(.failed, id: batch.id)
            return .invalidURL
        }
        switch ResultsURLPolicy.resolve(resultsURL, baseURL: baseURL) {
        case .invalid:
            count(.failed, id: batch.id)
            return .invalidURL
        case .foreignHost(let host):
            count(.skippedHost, id: batch.id)
            return .skippedHost(host: host, firstTime: warnedHosts.insert(host).inserted)
        case .allowed(let url):
            guard queue.count < maxQueued else {
                count(.failed, id: batch.id)
                return .queueFull
            }
            queue.append(Queued(batch: batch, url: url, attempts: 0, notBefore: now))
            return .queued
        }
    }

    /// Marks up to `limit - inFlight` due batches in flight and returns them, oldest first.
    public mutating func takeDue(now: Double, limit: Int) -> [Queued] {
        var free = limit - queue.count { $0.inFlight }
        var taken: [Queued] = []
        for index in queue.indices where free > 0 && !queue[index].inFlight && queue[index].notBefore <= now {
            queue[index].inFlight = true
            taken.append(queue[index])
            free -= 1
        }
        return taken
    }

    /// When the next waiting batch becomes due, if a download slot is free for it.
    public func nextDue(limit: Int) -> Double? {
        guard queue.count(where: { $0.inFlight }) < limit else { return nil }
        return queue.filter { !$0.inFlight }.map(\.notBefore).min()
    }

    /// Records how an attempt ended and decides what comes next.
    public mutating func finish(
        id: String, result: AttemptResult, bytes: UInt64, now: Double, policy: ResultsRetryPolicy, cap: Int, prices: PriceTable?
    ) -> Decision {
        guard let index = queue.firstIndex(where: { $0.batch.id == id && $0.inFlight }) else { return .unknown }
        bytesRead &+= bytes
        queue[index].inFlight = false
        switch result {
        case .deferred:
            // Nothing was sent; wait one base delay rather than spin on a spent budget.
            let until = now + policy.baseDelay.inSeconds
            queue[index].notBefore = until
            return .deferred(until: until)
        case .complete(let tally):
            totals.add(tally, cap: cap, prices: prices)
            queue.remove(at: index)
            count(.complete, id: id)
            return .committed
        case .tooLarge:
            queue.remove(at: index)
            count(.skippedSize, id: id)
            return .skippedSize
        case .retryable:
            queue[index].attempts += 1
            let attempts = queue[index].attempts
            guard attempts < policy.maxAttempts else {
                queue.remove(at: index)
                count(.failed, id: id)
                return .failed(attempts: attempts)
            }
            outcomes[.retrying, default: 0] += 1
            let delay = policy.delay(afterAttempts: attempts)
            queue[index].notBefore = now + delay.inSeconds
            return .retrying(attempt: attempts, after: delay)
        }
    }

    /// Batches waiting for their results (queued or downloading).
    public var waiting: Int { queue.count }

    /// `ended_at` of the oldest waiting batch.
    public var oldestWaitingEndedAt: Double? { queue.map(\.batch.endedAt).min() }

    private mutating func count(_ outcome: ResultsOutcome, id: String) {
        outcomes[outcome, default: 0] += 1
        guard recentSet.insert(id).inserted else { return }
        recent.append(id)
        if recent.count > Self.recentLimit {
            let dropped = recent.count - Self.recentLimit
            for old in recent.prefix(dropped) { recentSet.remove(old) }
            recent.removeFirst(dropped)
        }
    }
}
