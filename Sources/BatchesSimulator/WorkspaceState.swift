import Basics
import Synchronization

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

/// Where realtime mode reads how much real time has passed: monotonic seconds from any origin.
/// Injected so that tests move it themselves instead of depending on how soon a sleep returns
/// (a sleep on a busy 2-core machine can take a minute).
public protocol MonotonicTimeSource: Sendable {
    func seconds() -> Double
}

/// The real monotonic clock.
public struct ContinuousTimeSource: MonotonicTimeSource {
    private let origin = ContinuousClock.now

    public init() {}

    public func seconds() -> Double {
        origin.duration(to: .now).inSeconds
    }
}

/// A monotonic clock that moves only when told to, for tests of realtime mode.
public final class ManualTimeSource: MonotonicTimeSource {
    private let current: Mutex<Double>

    public init(seconds: Double = 0) {
        current = Mutex(seconds)
    }

    public func seconds() -> Double {
        current.withLock { $0 }
    }

    public func advance(by seconds: Double) {
        current.withLock { $0 += max(0, seconds) }
    }
}

/// Simulated time: manual, or real elapsed time scaled. `advance` works in both modes.
struct SimulationClock {
    private var base: Double
    private let realtime: (source: any MonotonicTimeSource, origin: Double, speed: Double)?

    init(mode: SimulatorConfiguration.TimeMode, wallClockNow: Double, source: any MonotonicTimeSource) {
        switch mode {
        case .manual(let start):
            base = start ?? wallClockNow
            realtime = nil
        case .realtime(let start, let speed):
            base = start ?? wallClockNow
            realtime = (source, source.seconds(), speed)
        }
    }

    func now() -> Double {
        guard let realtime else { return base }
        return base + (realtime.source.seconds() - realtime.origin) * realtime.speed
    }

    mutating func advance(by seconds: Double) {
        base += seconds
    }
}

struct BatchRecord {
    /// Held without its `results_url`, which is derived when the batch is read: a URL string per
    /// batch would cost ~100 MB at a million batches.
    var batch: SimulatedBatch
    /// The rendered batch object, kept until the batch changes: ended batches never change
    /// again (archiving aside), so repeated full reads mostly copy bytes. Within a budget: see
    /// `WorkspaceState.jsonCacheBudget`.
    var json: [UInt8]?
    /// Deleted, waiting for compaction: removing from the middle of a million records at once
    /// would shift them all and re-index every later position.
    var deleted = false
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
    /// Oldest first, so new batches append; list order is the reverse. Deleted batches stay as
    /// tombstones until they make up an eighth of the list, then one compaction removes them all.
    private var records: [BatchRecord] = []
    /// Id to index in `records` for live batches: cursors resolve in O(1), so a page costs
    /// O(page) (plus any tombstones crossed, which compaction bounds).
    private var positions: [String: Int] = [:]
    private var tombstones = 0
    /// Rendered batch objects are cached up to this many bytes in all (~250,000 batches); past
    /// it they are rendered per request (about a microsecond each), so memory stays bounded at
    /// a million batches.
    static let jsonCacheBudget = 128 << 20
    private var cachedJSONBytes = 0
    /// Prefix of `results_url`; settable because the simulator binary learns its port only
    /// after binding.
    private(set) var resultsBaseURL: String
    /// Per-batch results settings (long lines, large files, another host).
    private var resultsProfiles: [String: ResultsProfile] = [:]
    /// Final counts of scripted batches that have not ended yet.
    private var scriptedEndings: [String: RequestCounts] = [:]
    private var events = EventQueue()
    private var nextArrival: Double?
    private var processedUntil: Double
    var faults = FaultQueue<SimulatedFault>()
    /// Faults for results downloads, apart from the list's so each script stays predictable.
    var resultsFaults = FaultQueue<ResultsFault>()
    var requestLog = RequestLog()

    init(
        configuration: SimulatorConfiguration, wallClockNow: Double,
        timeSource: any MonotonicTimeSource = ContinuousTimeSource()
    ) {
        self.configuration = configuration
        resultsBaseURL = configuration.resultsBaseURL
        clock = SimulationClock(mode: configuration.time, wallClockNow: wallClockNow, source: timeSource)
        rng = SplitMix64(seed: configuration.seed)
        requestIDs = SplitMix64(seed: configuration.seed ^ 0xA5A5_5A5A_F00D_CAFE)
        var organizationRNG = SplitMix64(seed: configuration.seed ^ 0x0123_4567_89AB_CDEF)
        organizationID = Self.uuid(&organizationRNG)
        let now = clock.now()
        resolvedStart = now
        processedUntil = now
        seedInitialBatches(now: now)
        seedScriptedBatches(now: now)
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

    var count: Int { records.count - tombstones }

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
        case (.scriptedEnd, .inProgress), (.scriptedEnd, .canceling):
            guard let counts = scriptedEndings.removeValue(forKey: batch.id) else { break }
            // A script may keep a batch going past its simulated expiry (see ScriptedBatch);
            // its timestamps still say it ended by its expires_at.
            end(at: index, time: min(event.time, batch.expiresAt), counts: counts)
        case (.archive, .ended) where batch.archivedAt == nil:
            var archived = batch
            archived.archivedAt = event.time
            replace(at: index, with: archived)
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
        replace(at: index, with: batch)
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
        let archiveTime = batch.createdAt + SimulatedBatch.archiveInterval
        if archiveTime <= time {
            batch.archivedAt = archiveTime
        } else {
            events.schedule(.archive, for: batch.id, at: archiveTime)
        }
        replace(at: index, with: batch)
    }

    /// Changes a batch, dropping its cached rendering.
    private mutating func replace(at index: Int, with batch: SimulatedBatch) {
        cachedJSONBytes -= records[index].json?.count ?? 0
        records[index] = BatchRecord(batch: batch)
    }

    private func resultsURL(for id: String) -> String {
        "\(resultsProfiles[id]?.baseURL ?? resultsBaseURL)/v1/messages/batches/\(id)/results"
    }

    /// The batch as clients see it: with its `results_url` once it has ended.
    private func materialize(at index: Int) -> SimulatedBatch {
        var batch = records[index].batch
        if batch.processingStatus == .ended {
            batch.resultsURL = resultsURL(for: batch.id)
        }
        return batch
    }

    mutating func setResultsBaseURL(_ url: String) {
        resultsBaseURL = url
        dropJSONCache()
    }

    private mutating func dropJSONCache() {
        guard cachedJSONBytes > 0 else { return }
        for index in records.indices {
            records[index].json = nil
        }
        cachedJSONBytes = 0
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
        // Built newest first and reversed in place; each id goes into `positions` once, at its
        // final index, which is also the uniqueness check (one hash lookup per batch: at a
        // million batches the dictionary is most of the seeding time).
        records.reserveCapacity(total)
        positions.reserveCapacity(total)

        var created = now
        let activeGap = min(600, 15 * 3600 / Double(max(active, 1)))
        for _ in 0..<active {
            created -= rng.uniform(0.5...1.5) * activeGap
            let size = sampleSize()
            let batch = SimulatedBatch(
                id: reserveID(index: total - 1 - records.count),
                processingStatus: .inProgress,
                requestCounts: RequestCounts(processing: size),
                createdAt: created
            )
            records.append(BatchRecord(batch: batch))
        }

        let span = min(max(Double(endedCount) * 900, 86_400), 60 * 86_400)
        let endedGap = span / Double(max(endedCount, 1))
        let expiring = configuration.dynamics?.expiringFraction ?? 0.04
        let canceled = configuration.dynamics?.canceledFraction ?? 0.03
        for _ in 0..<endedCount {
            created -= max(0.001, rng.exponential(mean: endedGap))
            let batch = seededEndedBatch(
                index: total - 1 - records.count, createdAt: created, now: now, expiring: expiring, canceled: canceled)
            records.append(BatchRecord(batch: batch))
        }
        records.reverse()
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

    /// Adds the configuration's scripted batches (sizes from their end counts; a script with
    /// `processing` left over, or ending before now, is taken as given) and schedules their ends.
    private mutating func seedScriptedBatches(now: Double) {
        for script in configuration.scriptedBatches {
            let size = script.endCounts.total
            guard size > 0 else { continue }
            var batch = SimulatedBatch(
                id: freshID(),
                processingStatus: .inProgress,
                requestCounts: RequestCounts(processing: size),
                createdAt: now - script.createdBeforeStart
            )
            if let canceledBefore = script.cancelInitiatedBeforeStart {
                batch.processingStatus = .canceling
                batch.cancelInitiatedAt = now - canceledBefore
            }
            insert([batch])
            scriptedEndings[batch.id] = script.endCounts
            events.schedule(.scriptedEnd, for: batch.id, at: now + max(0, script.endsAfterStart))
        }
    }

    /// A fresh id, entered in `positions` at the index seeding will give it.
    private mutating func reserveID(index: Int) -> String {
        while true {
            let id = rng.identifier(prefix: "msgbatch_")
            guard let taken = positions.updateValue(index, forKey: id) else { return id }
            positions[id] = taken  // never happens with 143 random bits, but a clash must not win
        }
    }

    private mutating func seededEndedBatch(
        index: Int, createdAt: Double, now: Double, expiring: Double, canceled: Double
    ) -> SimulatedBatch {
        let size = sampleSize()
        let age = now - createdAt
        var batch = SimulatedBatch(
            id: reserveID(index: index),
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
        if createdAt + SimulatedBatch.archiveInterval <= now {
            batch.archivedAt = createdAt + SimulatedBatch.archiveInterval
        }
        return batch
    }

    // MARK: - Reading

    func batch(id: String) -> SimulatedBatch? {
        positions[id].map { materialize(at: $0) }
    }

    /// Newest first.
    func allBatches() -> [SimulatedBatch] {
        records.indices.reversed().compactMap { records[$0].deleted ? nil : materialize(at: $0) }
    }

    /// The indices in `records` a page covers, newest first, and `has_more`. Cost: the page,
    /// plus the tombstones it crosses.
    func pageIndices(limit: Int, afterID: String?, beforeID: String?) throws(ListError) -> (
        indices: [Int], hasMore: Bool
    ) {
        guard (1...1000).contains(limit) else { throw .invalidLimit(String(limit)) }
        let size = min(limit, configuration.maxPageSize ?? limit)
        var indices: [Int] = []
        indices.reserveCapacity(size)
        switch (afterID, beforeID) {
        case (.some, .some):
            throw .bothCursors
        case (nil, .some(let id)):
            guard let index = positions[id] else { throw .unknownCursor(parameter: "before_id", id: id) }
            // Newer batches sit above the cursor: take the `size` nearest it, list them newest first.
            var position = index + 1
            while position < records.count, indices.count < size {
                if !records[position].deleted { indices.append(position) }
                position += 1
            }
            return (indices.reversed(), liveRecord(in: position..<records.count))
        case (let afterID, nil):
            var position = records.count - 1
            if let afterID {
                guard let index = positions[afterID] else {
                    throw .unknownCursor(parameter: "after_id", id: afterID)
                }
                position = index - 1
            }
            while position >= 0, indices.count < size {
                if !records[position].deleted { indices.append(position) }
                position -= 1
            }
            return (indices, position >= 0 && liveRecord(in: 0..<(position + 1)))
        }
    }

    /// Whether any record in the range is live; walks from the range's end nearest the page.
    private func liveRecord(in range: Range<Int>) -> Bool {
        tombstones == 0 ? !range.isEmpty : range.contains { !records[$0].deleted }
    }

    func page(limit: Int, afterID: String?, beforeID: String?) throws(ListError) -> BatchPage {
        let (indices, hasMore) = try pageIndices(limit: limit, afterID: afterID, beforeID: beforeID)
        return BatchPage(batches: indices.map { materialize(at: $0) }, hasMore: hasMore)
    }

    /// The rendered batch objects at these indices, in order, rendering (and caching) as needed.
    mutating func renderedItems(_ indices: [Int]) -> [[UInt8]] {
        indices.map { renderedJSON(at: $0) }
    }

    mutating func renderedJSON(at index: Int) -> [UInt8] {
        if let json = records[index].json { return json }
        let json = materialize(at: index).renderJSON(omitNullArchivedAt: configuration.omitNullArchivedAt)
        if cachedJSONBytes + json.count <= Self.jsonCacheBudget {
            records[index].json = json
            cachedJSONBytes += json.count
        }
        return json
    }

    mutating func renderedJSON(id: String) -> [UInt8]? {
        positions[id].map { renderedJSON(at: $0) }
    }

    func batchID(at index: Int) -> String {
        records[index].batch.id
    }

    /// Live indices, newest first (for the truth endpoint's full listing).
    var liveIndicesNewestFirst: [Int] {
        records.indices.reversed().filter { !records[$0].deleted }
    }

    // MARK: - Results

    /// Why a batch's results cannot be served.
    enum ResultsUnavailable: Error {
        case noSuchBatch
        case notEnded(ProcessingStatus)
        case archived
    }

    /// What generates a batch's results file. Whether the real API answers 404 for a batch that
    /// has not ended, or once results are archived, is unconfirmed; the simulator answers 404.
    func resultsPlan(id: String) -> Result<ResultsPlan, ResultsUnavailable> {
        guard let index = positions[id] else { return .failure(.noSuchBatch) }
        let batch = records[index].batch
        guard batch.processingStatus == .ended else { return .failure(.notEnded(batch.processingStatus)) }
        guard batch.archivedAt == nil else { return .failure(.archived) }
        return .success(plan(for: batch))
    }

    private func plan(for batch: SimulatedBatch) -> ResultsPlan {
        ResultsPlan(
            batchID: batch.id, counts: batch.requestCounts, workspaceSeed: configuration.seed,
            profile: resultsProfiles[batch.id] ?? .standard
        )
    }

    /// Plans for every batch whose results can be downloaded now, newest first.
    func downloadablePlans() -> [ResultsPlan] {
        records.reversed().compactMap { record in
            let batch = record.batch
            guard !record.deleted, batch.processingStatus == .ended, batch.archivedAt == nil else { return nil }
            return plan(for: batch)
        }
    }

    func resultsProfile(id: String) -> ResultsProfile? {
        resultsProfiles[id]
    }

    mutating func setResultsProfile(_ profile: ResultsProfile?, id: String) throws(ControlError) {
        guard let index = positions[id] else { throw .notFound("no batch \(id)") }
        resultsProfiles[id] = profile
        replace(at: index, with: records[index].batch)
    }

    func truth(now: Double) -> SimulationTruth {
        var truth = SimulationTruth(
            now: now, batches: count, inProgress: 0, canceling: 0, ended: 0, archived: 0,
            requests: RequestCounts()
        )
        for record in records where !record.deleted {
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
        for position in index..<records.count where !records[position].deleted {
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
        return materialize(at: index)
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
        return materialize(at: index)
    }

    mutating func deleteBatch(id: String) throws(ControlError) {
        catchUp()
        guard let index = positions.removeValue(forKey: id) else { throw .notFound("no batch \(id)") }
        cachedJSONBytes -= records[index].json?.count ?? 0
        records[index].json = nil
        records[index].deleted = true
        resultsProfiles[id] = nil
        tombstones += 1
        if tombstones > max(1024, records.count / 8) {
            compact()
        }
    }

    /// Removes every tombstone and re-indexes once: O(n), but only after n/8 deletions, so
    /// O(1) per deletion on average.
    private mutating func compact() {
        records.removeAll { $0.deleted }
        tombstones = 0
        for (index, record) in records.enumerated() {
            positions[record.batch.id] = index
        }
    }
}
