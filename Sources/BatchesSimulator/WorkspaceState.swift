/// Why a list request's parameters were refused. Each maps to a 400 `invalid_request_error`.
public enum ListError: Error, Equatable, Sendable {
    case invalidLimit(String)
    case bothCursors
    /// The real API's answer to a cursor naming no batch (never existed, or deleted) is
    /// unconfirmed; the simulator answers 400, as a sibling Anthropic API does.
    case unknownCursor(parameter: String, id: String)

    var message: String {
        switch self {
        case .invalidLimit(let value):
            "limit: Input should be an integer between 1 and 1000 (got '\(value)')"
        case .bothCursors:
            "Only one of after_id and before_id may be given"
        case .unknownCursor(let parameter, let id):
            "\(parameter): no message batch with id '\(id)'"
        }
    }
}

/// Why a control request was refused.
public enum ControlError: Error, Equatable, Sendable {
    case badRequest(String)
    case notFound(String)
    case conflict(String)
}

/// One page of the list, newest first.
public struct BatchPage: Sendable, Equatable {
    public var batches: [SimulatedBatch]
    public var hasMore: Bool
    public var firstID: String? { batches.first?.id }
    public var lastID: String? { batches.last?.id }
}

/// What `POST /_sim/batches` asks for.
public struct BatchSpec: Sendable, Equatable {
    public var count: Int
    /// Requests per batch; `nil` for the sum of `counts`, or 100 without them.
    public var requests: Int?
    public var status: ProcessingStatus
    /// Final counts for ended batches (`processing` must be 0); `nil` for a random realistic mix.
    public var counts: RequestCounts?
    /// Create the batches this many seconds before now.
    public var ageSeconds: Double

    public init(
        count: Int = 1,
        requests: Int? = nil,
        status: ProcessingStatus = .inProgress,
        counts: RequestCounts? = nil,
        ageSeconds: Double = 0
    ) {
        self.count = count
        self.requests = requests
        self.status = status
        self.counts = counts
        self.ageSeconds = ageSeconds
    }
}

/// Ground truth for tests: what a complete, correct listing adds up to.
public struct SimulationTruth: Sendable, Equatable {
    public var now: Double
    public var batches: Int
    public var inProgress: Int
    public var canceling: Int
    public var ended: Int
    public var archived: Int
    public var requests: RequestCounts
}

/// Simulated time: manual, or real elapsed time scaled. `advance` works in both modes.
struct SimulationClock {
    private var base: Double
    private let realtime: (origin: ContinuousClock.Instant, speed: Double)?

    init(mode: SimulatorConfiguration.TimeMode, wallClockNow: Double) {
        switch mode {
        case .manual(let start):
            base = start ?? wallClockNow
            realtime = nil
        case .realtime(let start, let speed):
            base = start ?? wallClockNow
            realtime = (ContinuousClock.now, speed)
        }
    }

    func now() -> Double {
        guard let realtime else { return base }
        return base + realtime.origin.duration(to: .now).seconds * realtime.speed
    }

    mutating func advance(by seconds: Double) {
        base += seconds
    }
}

struct BatchRecord {
    var batch: SimulatedBatch
    /// The rendered batch object, kept until the batch changes: ended batches never change
    /// again (archiving aside), so repeated full reads mostly copy bytes.
    var json: [UInt8]?
}

/// Everything a workspace holds; lives inside the workspace's `Mutex`, so plain mutation is safe.
struct WorkspaceState {
    let configuration: SimulatorConfiguration
    let organizationID: String
    /// Simulated time at creation, before any `advance`: where a manual clock restarts on reset.
    let resolvedStart: Double
    private(set) var clock: SimulationClock
    /// Drives batch ids and lifecycles: request ids come from their own stream, so how often a
    /// client polls does not change which batches exist.
    private var rng: SplitMix64
    private var requestIDs: SplitMix64
    /// Oldest first, so new batches append; list order is the reverse.
    private var records: [BatchRecord] = []
    /// Id to index in `records`: cursors resolve in O(1), so a page costs O(page).
    private var positions: [String: Int] = [:]
    private var events = EventQueue()
    private var nextArrival: Double?
    private var processedUntil: Double
    var faults = FaultQueue()
    var requestLog = RequestLog()

    init(configuration: SimulatorConfiguration, wallClockNow: Double) {
        self.configuration = configuration
        clock = SimulationClock(mode: configuration.time, wallClockNow: wallClockNow)
        rng = SplitMix64(seed: configuration.seed)
        requestIDs = SplitMix64(seed: configuration.seed ^ 0xA5A5_5A5A_F00D_CAFE)
        var organizationRNG = SplitMix64(seed: configuration.seed ^ 0x0123_4567_89AB_CDEF)
        organizationID = Self.uuid(&organizationRNG)
        let now = clock.now()
        resolvedStart = now
        processedUntil = now
        seedInitialBatches(now: now)
        if let dynamics = configuration.dynamics, dynamics.arrivalsPerHour > 0 {
            nextArrival = now + rng.exponential(mean: 3600 / dynamics.arrivalsPerHour)
        }
    }

    private static func uuid(_ rng: inout SplitMix64) -> String {
        let hex = Array("0123456789abcdef".utf8)
        var bytes: [UInt8] = []
        for index in 0..<32 {
            if [8, 12, 16, 20].contains(index) { bytes.append(UInt8(ascii: "-")) }
            bytes.append(hex[Int(rng.next() & 0xF)])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    mutating func nextRequestID() -> String {
        requestIDs.identifier(prefix: "req_")
    }

    var count: Int { records.count }

    // MARK: - Time and lifecycle

    /// Applies every arrival and scheduled event due up to now, in time order, and returns now.
    @discardableResult
    mutating func catchUp() -> Double {
        let now = max(clock.now(), processedUntil)
        while true {
            let eventTime = events.nextTime
            if let arrival = nextArrival, arrival <= now, eventTime.map({ arrival <= $0 }) ?? true {
                arrive(at: arrival)
                continue
            }
            guard let eventTime, eventTime <= now, let event = events.popFirst() else { break }
            apply(event)
        }
        processedUntil = now
        return now
    }

    mutating func advance(seconds: Double) -> Double {
        clock.advance(by: seconds)
        return catchUp()
    }

    private mutating func arrive(at time: Double) {
        guard let dynamics = configuration.dynamics else { return }
        let size = sampleSize()
        let batch = SimulatedBatch(
            id: freshID(),
            processingStatus: .inProgress,
            requestCounts: RequestCounts(processing: size),
            createdAt: time
        )
        insert([batch])
        planLifecycle(of: batch, notBefore: time)
        nextArrival = time + rng.exponential(mean: 3600 / dynamics.arrivalsPerHour)
    }

    private mutating func apply(_ event: ScheduledEvent) {
        guard let index = positions[event.batchID] else { return }  // deleted since
        let batch = records[index].batch
        let size = batch.size
        switch (event.kind, batch.processingStatus) {
        case (.finish, .inProgress):
            end(at: index, time: event.time, counts: completedMix(size))
        case (.requestCancel, .inProgress):
            beginCancel(at: index, time: event.time)
        case (.finishCancel, .canceling):
            end(at: index, time: event.time, counts: canceledMix(size))
        case (.expire, .inProgress):
            end(at: index, time: event.time, counts: expiredMix(size))
        case (.expire, .canceling):
            end(at: index, time: event.time, counts: canceledMix(size))
        case (.archive, .ended) where batch.archivedAt == nil:
            var archived = batch
            archived.archivedAt = event.time
            records[index] = BatchRecord(batch: archived)
        default:
            break  // the batch moved on before this event came due
        }
    }

    /// Schedules the expiry, and with dynamics the batch's planned end and perhaps a cancel.
    /// Nothing is scheduled before `notBefore`, so a batch seeded as active stays active now.
    private mutating func planLifecycle(of batch: SimulatedBatch, notBefore now: Double) {
        events.schedule(.expire, for: batch.id, at: batch.expiresAt)
        guard let dynamics = configuration.dynamics, batch.processingStatus == .inProgress else { return }
        let remaining = batch.expiresAt - now
        guard remaining > 0 else { return }
        var finish = batch.expiresAt
        if !rng.chance(dynamics.expiringFraction) {
            finish = batch.createdAt + sampleProcessingDuration()
            if finish <= now {
                finish = now + rng.unit() * min(remaining, 6 * 3600)
            }
            if finish < batch.expiresAt {
                events.schedule(.finish, for: batch.id, at: finish)
            }
        }
        if rng.chance(dynamics.canceledFraction) {
            events.schedule(.requestCancel, for: batch.id, at: now + rng.unit() * (min(finish, batch.expiresAt) - now))
        }
    }

    private mutating func beginCancel(at index: Int, time: Double) {
        var batch = records[index].batch
        batch.processingStatus = .canceling
        batch.cancelInitiatedAt = time
        records[index] = BatchRecord(batch: batch)
        if let dynamics = configuration.dynamics {
            // Past the expiry the expire event ends it first, which is what the API would do.
            events.schedule(.finishCancel, for: batch.id, at: time + rng.uniform(dynamics.cancelingDuration))
        }
    }

    private mutating func end(at index: Int, time: Double, counts: RequestCounts) {
        var batch = records[index].batch
        batch.processingStatus = .ended
        batch.requestCounts = counts
        batch.endedAt = time
        batch.resultsURL = resultsURL(for: batch.id)
        let archiveTime = batch.createdAt + SimulatedBatch.archiveInterval
        if archiveTime <= time {
            batch.archivedAt = archiveTime
        } else {
            events.schedule(.archive, for: batch.id, at: archiveTime)
        }
        records[index] = BatchRecord(batch: batch)
    }

    private func resultsURL(for id: String) -> String {
        "\(configuration.resultsBaseURL)/v1/messages/batches/\(id)/results"
    }

    // MARK: - Random but realistic

    /// Mostly tens to thousands of requests, occasionally up to the API's 100,000 maximum.
    private mutating func sampleSize() -> Int {
        if rng.chance(0.02) {
            return Int(rng.logUniform(10_000...100_000))
        }
        return Int(rng.logUniform(1...10_000))
    }

    /// Mostly 10 minutes to 6 hours, sometimes most of a day.
    private mutating func sampleProcessingDuration() -> Double {
        rng.chance(0.9) ? rng.logUniform(600...(6 * 3600)) : rng.logUniform((6 * 3600)...(23.9 * 3600))
    }

    /// A batch that ran to completion: mostly succeeded, a few percent errored, now and then
    /// a bad batch.
    private mutating func completedMix(_ size: Int) -> RequestCounts {
        let roll = rng.unit()
        let errorRate =
            switch roll {
            case ..<0.55: 0.0
            case ..<0.90: rng.uniform(0...0.02)
            case ..<0.98: rng.uniform(0.02...0.1)
            default: rng.uniform(0.1...0.6)
            }
        let errored = min(size, Int((Double(size) * errorRate).rounded()))
        return RequestCounts(succeeded: size - errored, errored: errored)
    }

    /// A batch that hit the 24-hour limit: what was done is done, the rest expired.
    private mutating func expiredMix(_ size: Int) -> RequestCounts {
        let done = min(max(0, size - 1), Int(Double(size) * rng.uniform(0.2...0.95)))
        var counts = completedMix(done)
        counts.expired = size - done
        return counts
    }

    /// A canceled batch: requests finished before the cancel keep their results.
    private mutating func canceledMix(_ size: Int) -> RequestCounts {
        let done = min(max(0, size - 1), Int(Double(size) * rng.uniform(0...0.8)))
        var counts = completedMix(done)
        counts.canceled = size - done
        return counts
    }

    private mutating func freshID() -> String {
        while true {
            let id = rng.identifier(prefix: "msgbatch_")
            if positions[id] == nil { return id }
        }
    }

    // MARK: - Seeding

    /// The newest `initialActive` batches are in progress (created within the last 15 hours so
    /// none is near expiry); the rest ended, spread back over up to 60 days, so that the older
    /// ones are archived.
    private mutating func seedInitialBatches(now: Double) {
        let total = max(0, configuration.initialBatches)
        let active = min(max(0, configuration.initialActive), total)
        let endedCount = total - active
        var newestFirst: [SimulatedBatch] = []
        newestFirst.reserveCapacity(total)
        positions.reserveCapacity(total)

        var created = now
        let activeGap = min(600, 15 * 3600 / Double(max(active, 1)))
        for _ in 0..<active {
            created -= rng.uniform(0.5...1.5) * activeGap
            let size = sampleSize()
            let batch = SimulatedBatch(
                id: reserveID(),
                processingStatus: .inProgress,
                requestCounts: RequestCounts(processing: size),
                createdAt: created
            )
            newestFirst.append(batch)
        }

        let span = min(max(Double(endedCount) * 900, 86_400), 60 * 86_400)
        let endedGap = span / Double(max(endedCount, 1))
        let expiring = configuration.dynamics?.expiringFraction ?? 0.04
        let canceled = configuration.dynamics?.canceledFraction ?? 0.03
        for _ in 0..<endedCount {
            created -= max(0.001, rng.exponential(mean: endedGap))
            newestFirst.append(seededEndedBatch(createdAt: created, now: now, expiring: expiring, canceled: canceled))
        }

        records = newestFirst.reversed().map { BatchRecord(batch: $0) }
        for (index, record) in records.enumerated() {
            positions[record.batch.id] = index
        }
        for record in records {
            let batch = record.batch
            if batch.processingStatus == .ended {
                if batch.archivedAt == nil {
                    events.schedule(.archive, for: batch.id, at: batch.createdAt + SimulatedBatch.archiveInterval)
                }
            } else {
                planLifecycle(of: batch, notBefore: now)
            }
        }
    }

    /// A fresh id, reserved in `positions` until seeding assigns the real indices.
    private mutating func reserveID() -> String {
        let id = freshID()
        positions[id] = -1
        return id
    }

    private mutating func seededEndedBatch(createdAt: Double, now: Double, expiring: Double, canceled: Double)
        -> SimulatedBatch
    {
        let size = sampleSize()
        let age = now - createdAt
        var batch = SimulatedBatch(
            id: reserveID(),
            processingStatus: .ended,
            requestCounts: RequestCounts(),
            createdAt: createdAt
        )
        let roll = rng.unit()
        if roll < expiring, age >= SimulatedBatch.expiryInterval {
            batch.endedAt = batch.expiresAt
            batch.requestCounts = expiredMix(size)
        } else if roll < expiring + canceled {
            let cancelAt = createdAt + rng.uniform(0.05...0.9) * min(age, 6 * 3600)
            batch.cancelInitiatedAt = cancelAt
            batch.endedAt = min(cancelAt + rng.uniform(60...1200), now)
            batch.requestCounts = canceledMix(size)
        } else {
            let duration = sampleProcessingDuration()
            batch.endedAt = createdAt + (duration < age ? duration : age * rng.uniform(0.3...0.95))
            batch.requestCounts = completedMix(size)
        }
        batch.resultsURL = resultsURL(for: batch.id)
        if createdAt + SimulatedBatch.archiveInterval <= now {
            batch.archivedAt = createdAt + SimulatedBatch.archiveInterval
        }
        return batch
    }

    // MARK: - Reading

    func batch(id: String) -> SimulatedBatch? {
        positions[id].map { records[$0].batch }
    }

    /// Newest first.
    func allBatches() -> [SimulatedBatch] {
        records.reversed().map(\.batch)
    }

    /// The slice of `records` a page covers (listed from its upper end down) and `has_more`.
    func pageRange(limit: Int, afterID: String?, beforeID: String?) throws(ListError) -> (
        range: Range<Int>, hasMore: Bool
    ) {
        guard (1...1000).contains(limit) else { throw .invalidLimit(String(limit)) }
        let size = min(limit, configuration.maxPageSize ?? limit)
        switch (afterID, beforeID) {
        case (.some, .some):
            throw .bothCursors
        case (.some(let id), nil):
            guard let index = positions[id] else { throw .unknownCursor(parameter: "after_id", id: id) }
            let lower = max(0, index - size)
            return (lower..<index, lower > 0)
        case (nil, .some(let id)):
            guard let index = positions[id] else { throw .unknownCursor(parameter: "before_id", id: id) }
            let upper = min(records.count, index + 1 + size)
            return ((index + 1)..<upper, upper < records.count)
        case (nil, nil):
            let lower = max(0, records.count - size)
            return (lower..<records.count, lower > 0)
        }
    }

    func page(limit: Int, afterID: String?, beforeID: String?) throws(ListError) -> BatchPage {
        let (range, hasMore) = try pageRange(limit: limit, afterID: afterID, beforeID: beforeID)
        return BatchPage(batches: range.reversed().map { records[$0].batch }, hasMore: hasMore)
    }

    /// The rendered batch objects of a page, newest first, rendering (and caching) as needed.
    mutating func renderedItems(_ range: Range<Int>) -> [[UInt8]] {
        var items: [[UInt8]] = []
        items.reserveCapacity(range.count)
        for index in range.reversed() {
            items.append(renderedJSON(at: index))
        }
        return items
    }

    mutating func renderedJSON(at index: Int) -> [UInt8] {
        if let json = records[index].json { return json }
        let json = records[index].batch.renderJSON(omitNullArchivedAt: configuration.omitNullArchivedAt)
        records[index].json = json
        return json
    }

    mutating func renderedJSON(id: String) -> [UInt8]? {
        positions[id].map { renderedJSON(at: $0) }
    }

    func batchID(at index: Int) -> String {
        records[index].batch.id
    }

    func truth(now: Double) -> SimulationTruth {
        var truth = SimulationTruth(
            now: now, batches: records.count, inProgress: 0, canceling: 0, ended: 0, archived: 0,
            requests: RequestCounts()
        )
        for record in records {
            let batch = record.batch
            switch batch.processingStatus {
            case .inProgress: truth.inProgress += 1
            case .canceling: truth.canceling += 1
            case .ended: truth.ended += 1
            }
            if batch.archivedAt != nil { truth.archived += 1 }
            truth.requests = truth.requests + batch.requestCounts
        }
        return truth
    }

    // MARK: - Control

    mutating func createBatches(_ spec: BatchSpec) throws(ControlError) -> [String] {
        let now = catchUp()
        guard (1...100_000).contains(spec.count) else { throw .badRequest("count must be between 1 and 100000") }
        guard spec.ageSeconds >= 0, spec.ageSeconds.isFinite else { throw .badRequest("age_seconds must be >= 0") }
        if let counts = spec.counts {
            guard spec.status == .ended else { throw .badRequest("request counts can only be given for ended batches") }
            guard counts.processing == 0 else { throw .badRequest("an ended batch has no processing requests") }
            if let requests = spec.requests, requests != counts.total {
                throw .badRequest("counts sum to \(counts.total), not requests=\(requests)")
            }
        }
        let size = spec.requests ?? spec.counts?.total ?? 100
        guard (1...100_000).contains(size) else { throw .badRequest("requests must be between 1 and 100000") }

        let createdAt = now - spec.ageSeconds
        var created: [SimulatedBatch] = []
        created.reserveCapacity(spec.count)
        for _ in 0..<spec.count {
            var batch = SimulatedBatch(
                id: freshID(),
                processingStatus: spec.status,
                requestCounts: RequestCounts(processing: size),
                createdAt: createdAt
            )
            positions[batch.id] = -1
            switch spec.status {
            case .inProgress:
                break
            case .canceling:
                batch.cancelInitiatedAt = now
            case .ended:
                batch.requestCounts = spec.counts ?? completedMix(size)
                batch.endedAt = createdAt + min(spec.ageSeconds, 3600)
                batch.resultsURL = resultsURL(for: batch.id)
                if createdAt + SimulatedBatch.archiveInterval <= now {
                    batch.archivedAt = createdAt + SimulatedBatch.archiveInterval
                }
            }
            created.append(batch)
        }
        insert(created)
        for batch in created {
            switch batch.processingStatus {
            case .inProgress:
                planLifecycle(of: batch, notBefore: now)
            case .canceling:
                events.schedule(.expire, for: batch.id, at: batch.expiresAt)
                if let dynamics = configuration.dynamics {
                    events.schedule(.finishCancel, for: batch.id, at: now + rng.uniform(dynamics.cancelingDuration))
                }
            case .ended:
                if batch.archivedAt == nil {
                    events.schedule(.archive, for: batch.id, at: batch.createdAt + SimulatedBatch.archiveInterval)
                }
            }
        }
        // Batches created older than a day expire at once, as they would have.
        catchUp()
        return created.reversed().map(\.id)
    }

    /// Inserts batches that share one creation time after every batch not newer than them, in
    /// the order given (later is newer); a single reindex covers them all.
    private mutating func insert(_ batches: [SimulatedBatch]) {
        guard let createdAt = batches.first?.createdAt else { return }
        var index = records.count
        while index > 0, records[index - 1].batch.createdAt > createdAt {
            index -= 1
        }
        records.insert(contentsOf: batches.map { BatchRecord(batch: $0) }, at: index)
        for position in index..<records.count {
            positions[records[position].batch.id] = position
        }
    }

    mutating func endBatch(id: String, counts: RequestCounts?) throws(ControlError) -> SimulatedBatch {
        let now = catchUp()
        guard let index = positions[id] else { throw .notFound("no batch \(id)") }
        let batch = records[index].batch
        let size = batch.size
        let final: RequestCounts
        switch (batch.processingStatus, counts) {
        case (.ended, _):
            throw .conflict("batch \(id) has already ended")
        case (.inProgress, nil):
            final = RequestCounts(succeeded: size)
        case (.canceling, nil):
            final = RequestCounts(canceled: size)
        case (_, .some(let counts)):
            guard counts.processing == 0, counts.total == size else {
                throw .badRequest("counts must sum to the batch size \(size), got \(counts.total)")
            }
            final = counts
        }
        end(at: index, time: now, counts: final)
        return records[index].batch
    }

    mutating func cancelBatch(id: String) throws(ControlError) -> SimulatedBatch {
        let now = catchUp()
        guard let index = positions[id] else { throw .notFound("no batch \(id)") }
        switch records[index].batch.processingStatus {
        case .inProgress:
            beginCancel(at: index, time: now)
        case .canceling:
            break
        case .ended:
            throw .conflict("batch \(id) has already ended")
        }
        return records[index].batch
    }

    mutating func deleteBatch(id: String) throws(ControlError) {
        catchUp()
        guard let index = positions.removeValue(forKey: id) else { throw .notFound("no batch \(id)") }
        records.remove(at: index)
        for position in index..<records.count {
            positions[records[position].batch.id] = position
        }
    }
}
