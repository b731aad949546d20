import BatchesAPI

/// A batch id folded to 64 bits: FNV-1a over its UTF-8 bytes. Stable across processes and
/// versions (a saved state refers to batches by it), unlike Swift's seeded `Hasher`.
///
/// Two ids sharing a key would be taken for one batch. Among a million ids the chance that any
/// two collide is about 3 in 100 million; ids are opaque API strings, not chosen by an adversary.
public func batchKey(_ id: String) -> UInt64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in id.utf8 {
        hash ^= UInt64(byte)
        hash &*= 0x0000_0100_0000_01b3
    }
    return hash
}

/// What the ledger keeps of every batch: 24 bytes, whatever the batch's history. A million
/// batches is 24 MB, so the five counts and the status are packed into two words beside the
/// key: 21 bits per count (a batch holds at most 100,000 requests).
public struct LedgerEntry: Sendable, Equatable {
    public enum Status: UInt8, Sendable, Codable {
        case inProgress, canceling, ended
        /// A status the API added after this exporter was written; its name is in the record.
        case other
    }

    /// The largest count an entry holds; larger ones (nonsense: a batch holds at most 100,000
    /// requests) are clamped to it rather than trapping or spilling into the next field.
    public static let maxCount: UInt32 = (1 << 21) - 1

    public var key: UInt64
    /// processing, succeeded and errored, 21 bits each from bit 0; `archived` in bit 63.
    private var first: UInt64
    /// canceled and expired, 21 bits each from bit 0; the status in bits 42–43.
    private var second: UInt64

    public var processing: UInt32 { Self.count(first, 0) }
    public var succeeded: UInt32 { Self.count(first, 1) }
    public var errored: UInt32 { Self.count(first, 2) }
    public var canceled: UInt32 { Self.count(second, 0) }
    public var expired: UInt32 { Self.count(second, 1) }

    public var status: Status {
        // Only the four cases are ever stored, so the fallback is unreachable.
        Status(rawValue: UInt8(truncatingIfNeeded: second >> 42) & 0b11) ?? .other
    }

    public var archived: Bool {
        get { first >> 63 == 1 }
        set { first = first & ~(1 << 63) | (newValue ? 1 << 63 : 0) }
    }

    init(
        key: UInt64, processing: UInt32, succeeded: UInt32, errored: UInt32, canceled: UInt32, expired: UInt32,
        status: Status, archived: Bool
    ) {
        self.key = key
        first = Self.packed(processing, succeeded, errored) | (archived ? 1 << 63 : 0)
        second = Self.packed(canceled, expired, 0) | UInt64(status.rawValue) << 42
    }

    init(_ batch: MessageBatch) {
        let counts = batch.requestCounts
        func clamp(_ value: Int) -> UInt32 { UInt32(clamping: max(0, value)) }
        let status: Status =
            switch batch.processingStatus {
            case .inProgress: .inProgress
            case .canceling: .canceling
            case .ended: .ended
            case .other: .other
            }
        self.init(
            key: batchKey(batch.id), processing: clamp(counts.processing), succeeded: clamp(counts.succeeded),
            errored: clamp(counts.errored), canceled: clamp(counts.canceled), expired: clamp(counts.expired),
            status: status, archived: batch.archivedAt != nil
        )
    }

    private static func packed(_ a: UInt32, _ b: UInt32, _ c: UInt32) -> UInt64 {
        UInt64(min(a, maxCount)) | UInt64(min(b, maxCount)) << 21 | UInt64(min(c, maxCount)) << 42
    }

    private static func count(_ word: UInt64, _ field: UInt64) -> UInt32 {
        UInt32(truncatingIfNeeded: word >> (21 * field)) & maxCount
    }

    var requestCounts: RequestCounts {
        RequestCounts(
            processing: Int(processing), succeeded: Int(succeeded), errored: Int(errored), canceled: Int(canceled),
            expired: Int(expired)
        )
    }

    var isEnded: Bool { status == .ended }
}

/// The aggregates the batch gauges show, kept as running totals.
public struct LedgerTotals: Sendable, Equatable {
    /// Batches by status; the documented three are always present.
    public var byStatus: [ProcessingStatus: Int]
    /// `request_counts` summed over every listed batch.
    public var requests: RequestCounts
    public var batches: Int

    public init() {
        byStatus = Dictionary(uniqueKeysWithValues: ProcessingStatus.documented.map { ($0, 0) })
        requests = RequestCounts()
        batches = 0
    }

    mutating func add(_ entry: LedgerEntry, status: ProcessingStatus, sign: Int) {
        byStatus[status, default: 0] += sign
        requests.processing += sign * Int(entry.processing)
        requests.succeeded += sign * Int(entry.succeeded)
        requests.errored += sign * Int(entry.errored)
        requests.canceled += sign * Int(entry.canceled)
        requests.expired += sign * Int(entry.expired)
        batches += sign
        // A status the API added and that no batch has any more leaves the gauge, as it would
        // from a fresh listing; the documented three stay, at zero.
        if byStatus[status] == 0, !ProcessingStatus.documented.contains(status) {
            byStatus[status] = nil
        }
    }
}

/// Why a full read changed what incremental polls had built. `drift` means the running totals
/// disagreed with a recount of the ledger: a bug, never expected.
public enum LedgerCorrection: String, Sendable, CaseIterable, Codable {
    case deleted, archived, changed, added, drift
}

/// What the lifecycle rules need of one poll's context.
public struct LedgerContext: Sendable {
    /// Batches first seen already ended count as newly ended only if they ended after this.
    public var countEndedAfter: Double
    public var now: Double
    /// Ended batches keep their full record (and per-batch series) this long after `ended_at`;
    /// `nil` keeps none (per-batch series are off).
    public var endedRetention: Double?

    public init(countEndedAfter: Double, now: Double, endedRetention: Double?) {
        self.countEndedAfter = countEndedAfter
        self.now = now
        self.endedRetention = endedRetention
    }

    func keepsRecord(of batch: MessageBatch) -> Bool {
        guard batch.processingStatus == .ended else { return true }
        guard let retention = endedRetention, let ended = batch.endedAt else { return false }
        return ended >= now - retention
    }
}

/// Everything a workspace has listed, folded so that a poll costs what changed.
///
/// An ended batch never changes again, but for `archived_at` and deletion. So the ledger keeps
/// full records only for batches that can still change (not ended) and for ended ones that
/// still have per-batch series; every other batch is a 24-byte ``LedgerEntry``. Entries are in
/// listing order, oldest first, so new batches append and positions of older ones never move.
/// The aggregates are running totals, moved by what each poll saw change; a full read
/// (``adopt(_:context:)``) recounts them and reports any drift.
public struct BatchLedger: Sendable {
    /// Oldest first: the reverse of the listing's order.
    public private(set) var entries: [LedgerEntry] = []
    private var index = PositionIndex()
    /// Batches not ended, and ended ones within the per-batch retention, by key.
    public private(set) var records: [UInt64: MessageBatch] = [:]
    public private(set) var totals = LedgerTotals()
    /// Changes whenever anything the ledger holds has changed, expired records included (the
    /// state file follows it).
    public private(set) var version: UInt64 = 0
    /// Changes whenever a walk or a full read changed what the ledger holds; not when records
    /// merely expire (``expireRecords(context:)`` says which went, so that what is derived from
    /// the records can follow without being rebuilt).
    public private(set) var listingVersion: UInt64 = 0
    /// When a poll last read every batch that has not ended (each walk reaches all of them).
    public private(set) var refreshedAt: Double = -.infinity
    /// The records of ended batches by `ended_at`, so that ``expireRecords(context:)`` takes the
    /// few that are due from the front instead of passing over every record.
    private var expiryQueue = ExpiryQueue()

    public init() {}

    /// A ledger restored from saved parts (``entries`` oldest first, ``records``,
    /// ``refreshedAt``); the index and the totals are rebuilt, not trusted from the file.
    /// Returns `nil` when the parts contradict each other (a key twice, a record without entry).
    public init?(restoring entries: [LedgerEntry], records: [UInt64: MessageBatch], refreshedAt: Double) {
        var index = PositionIndex(capacity: entries.count)
        for position in entries.indices {
            guard index.position(of: entries[position].key, in: entries) == nil else { return nil }
            index.insert(position: position, in: entries)
        }
        guard records.keys.allSatisfy({ index.position(of: $0, in: entries) != nil }) else { return nil }
        self.entries = entries
        self.index = index
        self.records = records
        self.refreshedAt = refreshedAt
        totals = recount()
        expiryQueue = ExpiryQueue(records)
        version = 1
        listingVersion = 1
    }

    public var count: Int { entries.count }

    /// Where a batch stands, oldest first; `nil` for a batch the ledger does not know.
    public func position(of key: UInt64) -> Int? {
        index.position(of: key, in: entries)
    }

    public func entry(for key: UInt64) -> LedgerEntry? {
        index.position(of: key, in: entries).map { entries[$0] }
    }

    /// The oldest position of a batch that has not ended, or the newest position when every
    /// batch has ended; `nil` for an empty ledger. An incremental walk may stop once it has seen
    /// a known batch at or below this position: everything older has ended and cannot change.
    ///
    /// Batches that have not ended are almost always the newest, so the entries are scanned from
    /// the newest down until the running totals' count of them is reached: a few steps per poll,
    /// where a pass over the records would cost every retained batch.
    public var walkFloor: Int? {
        guard !entries.isEmpty else { return nil }
        var floor = entries.count - 1
        var notEndedLeft = totals.batches - (totals.byStatus[.ended] ?? 0)
        var position = entries.count - 1
        while notEndedLeft > 0, position >= 0 {
            if !entries[position].isEnded {
                floor = position
                notEndedLeft -= 1
            }
            position -= 1
        }
        return floor
    }

    /// The full records of the batches that have not ended, newest first: found from the walk
    /// floor up, so this costs the few newest positions, not a pass over every record.
    public var activeRecords: [MessageBatch] {
        guard let floor = walkFloor else { return [] }
        var active: [MessageBatch] = []
        for position in stride(from: entries.count - 1, through: floor, by: -1) where !entries[position].isEnded {
            if let record = records[entries[position].key] { active.append(record) }
        }
        return active
    }

    /// The records of ended batches, the most recently ended first (ties by id, descending),
    /// at most `limit`: taken from the back of the expiry queue, so this costs about `limit`
    /// steps however long the retention. Call after ``expireRecords(context:)``, so that every
    /// record it can return is within the retention.
    public func recentlyEndedRecords(limit: Int) -> [MessageBatch] {
        guard limit > 0 else { return [] }
        var picked: [MessageBatch] = []
        var seen = Set<UInt64>()
        var cutoff: Double?
        expiryQueue.forEachNewestFirst { endedAt, key in
            if let cutoff, endedAt < cutoff { return false }
            // Pairs of records since gone or changed are skipped, as expiry skips them.
            guard let record = records[key], Self.expiryTime(of: record) == endedAt, seen.insert(key).inserted else { return true }
            picked.append(record)
            // Batches that ended at the same moment as the last one taken are all taken, so
            // the order by id below decides among them.
            if picked.count == limit { cutoff = endedAt }
            return true
        }
        picked.sort { ($0.endedAt ?? 0, $0.id) > ($1.endedAt ?? 0, $1.id) }
        return Array(picked.prefix(limit))
    }

    private func status(of entry: LedgerEntry) -> ProcessingStatus {
        switch entry.status {
        case .inProgress: .inProgress
        case .canceling: .canceling
        case .ended: .ended
        case .other: records[entry.key]?.processingStatus ?? .other("unknown")
        }
    }

    // MARK: - Incremental walks

    /// Replaces what an incremental walk covered with what it read.
    ///
    /// - Parameters:
    ///   - fresh: the batches the walk read, newest first.
    ///   - covering: the oldest position the walk reached (everything from there up is replaced);
    ///     `nil` when the walk read the listing to its end, which replaces everything.
    /// - Returns: the batches this walk saw reach `ended`, by the counting rule: known and not
    ///   ended before, or first seen already ended after `context.countEndedAfter`; the keys of
    ///   batches the walk found deleted, and of batches it saw for the first time.
    @discardableResult
    public mutating func apply(
        walk fresh: [MessageBatch],
        covering lowest: Int?,
        context: LedgerContext
    ) -> (newlyEnded: [MessageBatch], deleted: [UInt64], arrived: [UInt64]) {
        let lower = min(lowest ?? 0, entries.count)
        // The listing never repeats a batch, but if it did, the newest listing of it stands.
        var seen = Set<UInt64>(minimumCapacity: fresh.count)
        var ordered: [(MessageBatch, LedgerEntry)] = []
        ordered.reserveCapacity(fresh.count)
        for batch in fresh {
            let entry = LedgerEntry(batch)
            if seen.insert(entry.key).inserted { ordered.append((batch, entry)) }
        }

        var previous: [UInt64: (entry: LedgerEntry, record: MessageBatch?)] = [:]
        previous.reserveCapacity(entries.count - lower)
        for entry in entries[lower...] {
            let record = records.removeValue(forKey: entry.key)
            previous[entry.key] = (entry, record)
            totals.add(entry, status: entry.status == .other ? (record?.processingStatus ?? .other("unknown")) : status(of: entry), sign: -1)
            index.remove(entry.key, in: entries)
        }
        // A copy, not a slice: a slice would keep the whole buffer alive and make the removal
        // below copy every entry.
        let removed = Array(entries[lower...])
        entries.removeSubrange(lower...)
        var replaced = removed.count != ordered.count

        var newlyEnded: [MessageBatch] = []
        for (offset, (batch, entry)) in ordered.reversed().enumerated() {
            let before = previous[entry.key]
            if entry.isEnded {
                let wasActive = before.map { !$0.entry.isEnded } ?? false
                let firstSeenEndedSinceStart = before == nil && (batch.endedAt ?? -.infinity) > context.countEndedAfter
                if wasActive || firstSeenEndedSinceStart { newlyEnded.append(batch) }
            }
            if !replaced {
                let old = removed[offset]
                replaced = old != entry || before?.record != (context.keepsRecord(of: batch) ? batch : nil)
            }
            let kept = context.keepsRecord(of: batch)
            insert(entry, record: kept ? batch : nil, queued: before?.record)
        }
        if replaced {
            version &+= 1
            listingVersion &+= 1
        }
        refreshedAt = context.now
        let deleted = removed.lazy.map(\.key).filter { !seen.contains($0) }
        let arrived = ordered.lazy.map(\.1.key).filter { previous[$0] == nil }
        return (newlyEnded, Array(deleted), Array(arrived))
    }

    /// - Parameter queued: the record this batch had before, whose place in the expiry queue
    ///   the new one takes when it ended at the same time.
    private mutating func insert(_ entry: LedgerEntry, record: MessageBatch?, queued: MessageBatch? = nil) {
        entries.append(entry)
        index.insert(position: entries.count - 1, in: entries)
        if let record {
            records[entry.key] = record
            if let ended = Self.expiryTime(of: record), queued.flatMap(Self.expiryTime(of:)) != ended {
                expiryQueue.push(endedAt: ended, key: entry.key)
            }
        }
        totals.add(entry, status: status(of: entry), sign: 1)
    }

    /// When an ended record may expire; `nil` for a batch that has not ended.
    fileprivate static func expiryTime(of record: MessageBatch) -> Double? {
        record.processingStatus == .ended ? (record.endedAt ?? -.infinity) : nil
    }

    /// Drops the full records of ended batches past the retention; their entries stay.
    /// Moves ``version`` but not ``listingVersion``: an expired batch leaves the per-batch
    /// series, which the caller can tell from the keys without rebuilding them.
    /// - Returns: the keys of the batches whose record went.
    @discardableResult
    public mutating func expireRecords(context: LedgerContext) -> [UInt64] {
        let retentionStart = context.endedRetention.map { context.now - $0 } ?? .infinity
        var expired: [UInt64] = []
        while let (endedAt, key) = expiryQueue.popFirst(before: retentionStart) {
            // The queue may hold a record since replaced or dropped: only a record that still
            // ended then and is past the retention goes.
            guard let record = records[key], Self.expiryTime(of: record) == endedAt, !context.keepsRecord(of: record) else { continue }
            records[key] = nil
            expired.append(key)
        }
        if !expired.isEmpty { version &+= 1 }
        return expired
    }

    // MARK: - Full reads

    /// The sum of every entry, counted again from scratch.
    public func recount() -> LedgerTotals {
        var totals = LedgerTotals()
        for entry in entries { totals.add(entry, status: status(of: entry), sign: 1) }
        return totals
    }

    /// Takes a complete listing read by a full read or a paced resync, which may have taken
    /// several polls while incremental polls went on over this ledger.
    ///
    /// Merge rules: an ended batch is final, so a batch this ledger has as ended stays ended even
    /// where the listing, read earlier, still had it running; a batch the listing has as ended
    /// that this ledger had running ended in between (counted now); of two views of a running
    /// batch the one read last stands; batches incremental walks first saw while the read went
    /// on stay (the read may have passed their place before they arrived); any other batch the
    /// listing lacks was deleted.
    /// - Returns: the batches counted as newly ended, and the corrections by kind (none for the
    ///   first read, when there was nothing to correct).
    /// - Parameters:
    ///   - deletedSince: batches incremental walks found deleted while the read went on; the
    ///     read may still list them, and they must not come back.
    ///   - arrivedSince: batches incremental walks saw for the first time while the read went on.
    public mutating func adopt(
        _ read: consuming LedgerBuilder,
        deletedSince: Set<UInt64> = [],
        arrivedSince: Set<UInt64> = [],
        context: LedgerContext
    ) -> (newlyEnded: [MessageBatch], corrections: [LedgerCorrection: Int]) {
        var corrections: [LedgerCorrection: Int] = [:]
        let isFirstRead = entries.isEmpty
        if recount() != totals { corrections[.drift, default: 0] += 1 }
        let listedRecords = read.records
        let readAt = read.readAt
        // Reused in place as the merged ledger's entries: a million-batch read is not copied.
        var listed = read.takeEntriesOldestFirst()

        // Unknown batches above the newest one this ledger knew are arrivals, not corrections.
        var newestKnownInListing = -1
        for (offset, entry) in listed.enumerated() where index.position(of: entry.key, in: entries) != nil {
            newestKnownInListing = offset
        }
        var listedOld = [Bool](repeating: false, count: entries.count)
        var merged = BatchLedger()
        // Sized for everything the merge inserts, so it never rebuilds half-way.
        merged.index = PositionIndex(capacity: listed.count + arrivedSince.count)
        var newlyEnded: [MessageBatch] = []
        var kept = 0
        for offset in listed.indices {
            let entry = listed[offset]
            // The listing never repeats a batch; if it did, the batch is taken once.
            guard merged.index.position(of: entry.key, in: listed) == nil, !deletedSince.contains(entry.key) else { continue }
            let record = listedRecords[entry.key]
            var final = entry
            var finalRecord = record.flatMap { context.keepsRecord(of: $0) ? $0 : nil }
            if let position = index.position(of: entry.key, in: entries) {
                listedOld[Int(position)] = true
                let known = entries[Int(position)]
                let knownRecord = records[entry.key]
                switch (known.isEnded, entry.isEnded) {
                case (true, false):
                    // Ended is final: the listing read it before it ended.
                    final = known
                    finalRecord = knownRecord
                case (false, false):
                    // Both running: whichever was read last tells the current state.
                    if (readAt[entry.key] ?? -.infinity) < refreshedAt {
                        final = known
                        finalRecord = knownRecord
                    }
                case (false, true):
                    if let record { newlyEnded.append(record) }
                case (true, true):
                    if known != entry {
                        var unarchived = entry
                        unarchived.archived = known.archived
                        corrections[unarchived == known ? .archived : .changed, default: 0] += 1
                    }
                    finalRecord = finalRecord ?? knownRecord
                }
            } else {
                if entry.isEnded, let record, (record.endedAt ?? -.infinity) > context.countEndedAfter {
                    newlyEnded.append(record)
                }
                if offset < newestKnownInListing { corrections[.added, default: 0] += 1 }
            }
            listed[kept] = final
            merged.index.insert(position: kept, in: listed)
            if let finalRecord { merged.records[final.key] = finalRecord }
            kept += 1
        }
        listed.removeSubrange(kept...)
        merged.entries = listed
        for entry in merged.entries { merged.totals.add(entry, status: merged.status(of: entry), sign: 1) }
        for (position, entry) in entries.enumerated() where !listedOld[position] {
            if arrivedSince.contains(entry.key) {
                merged.insert(entry, record: records[entry.key])
            } else {
                corrections[.deleted, default: 0] += 1
            }
        }
        merged.expiryQueue = ExpiryQueue(merged.records)
        merged.version = version &+ 1
        merged.listingVersion = listingVersion &+ 1
        merged.refreshedAt = max(refreshedAt, context.now)
        self = merged
        if isFirstRead { corrections = [:] }
        return (newlyEnded, corrections)
    }
}

/// The records of ended batches as (`ended_at`, key), oldest first; expiry takes from the front.
/// Batches end in about the order they are listed, so a push is almost always an append. It may
/// hold pairs whose record has since gone or changed: the ledger checks each pair it takes.
struct ExpiryQueue: Sendable {
    private var pairs: [(endedAt: Double, key: UInt64)] = []
    /// Pairs before this have been taken.
    private var head = 0

    init() {}

    init(_ records: [UInt64: MessageBatch]) {
        for (key, record) in records {
            if let ended = BatchLedger.expiryTime(of: record) { pairs.append((ended, key)) }
        }
        pairs.sort { $0.endedAt < $1.endedAt }
    }

    var count: Int { pairs.count - head }

    mutating func push(endedAt: Double, key: UInt64) {
        if let last = pairs.last, last.endedAt > endedAt {
            var low = head
            var high = pairs.count
            while low < high {
                let middle = (low + high) / 2
                if pairs[middle].endedAt <= endedAt { low = middle + 1 } else { high = middle }
            }
            pairs.insert((endedAt, key), at: low)
        } else {
            pairs.append((endedAt, key))
        }
    }

    /// Calls `body` with the pairs not taken yet, newest first, until it returns false.
    func forEachNewestFirst(_ body: (Double, UInt64) -> Bool) {
        var position = pairs.count - 1
        while position >= head, body(pairs[position].endedAt, pairs[position].key) {
            position -= 1
        }
    }

    /// Takes the oldest pair if it ended before `limit`.
    mutating func popFirst(before limit: Double) -> (endedAt: Double, key: UInt64)? {
        guard head < pairs.count, pairs[head].endedAt < limit else { return nil }
        let first = pairs[head]
        head += 1
        // Taken pairs are dropped in bulk, so taking stays O(1) on average.
        if head >= 1024, head * 2 >= pairs.count {
            pairs.removeFirst(head)
            head = 0
        }
        return first
    }
}

/// Collects a complete listing page by page, already folded: a full read of a million batches
/// never holds a million full records.
public struct LedgerBuilder: Sendable {
    /// Newest first, as read.
    private var newestFirst: [LedgerEntry] = []
    fileprivate private(set) var records: [UInt64: MessageBatch] = [:]
    /// When each batch that had not ended was read.
    fileprivate private(set) var readAt: [UInt64: Double] = [:]

    public init() {}

    public var count: Int { newestFirst.count }

    /// Adds one page. Keeps the full record of every batch not ended, of ended batches within
    /// the retention, and of ended batches that ``BatchLedger/adopt(_:deletedSince:arrivedSince:context:)``
    /// may count as newly ended: those `ledger` has as running, and those it does not know that
    /// ended after `context.countEndedAfter`. Not the rest: on a first read of a long history
    /// that would hold every batch's full record until the read ends.
    public mutating func add(_ page: [MessageBatch], comparingWith ledger: BatchLedger, context: LedgerContext) {
        for batch in page {
            let entry = LedgerEntry(batch)
            newestFirst.append(entry)
            if context.keepsRecord(of: batch) || Self.mayCountAsNewlyEnded(batch, known: ledger.entry(for: entry.key), context: context) {
                records[entry.key] = batch
            }
            if !entry.isEnded { readAt[entry.key] = context.now }
        }
    }

    /// The same rule as ``BatchLedger/adopt(_:deletedSince:arrivedSince:context:)`` applies to an
    /// ended batch in the listing.
    private static func mayCountAsNewlyEnded(
        _ batch: MessageBatch, known: LedgerEntry?, context: LedgerContext
    ) -> Bool {
        if let known { return !known.isEnded }
        return (batch.endedAt ?? -.infinity) > context.countEndedAfter
    }

    /// The listing oldest first, reversed in place.
    consuming func takeEntriesOldestFirst() -> [LedgerEntry] {
        var entries = newestFirst
        newestFirst = []
        entries.reverse()
        return entries
    }
}

/// An incremental walk's bookkeeping: collects the newest pages and decides when to stop.
///
/// The listing is newest first, and an ended batch never changes again (but for `archived_at`
/// and deletion). So once the walk has seen a batch the ledger knows at or below the ledger's
/// ``BatchLedger/walkFloor`` (every batch from there down had ended), everything older is as the
/// ledger has it. Batches the walk passed over in the ledger's order but did not see were deleted.
public struct IncrementalWalk: Sendable {
    private let floor: Int?
    public private(set) var fresh: [MessageBatch] = []
    /// The oldest ledger position the walk has seen; `nil` before any known batch.
    public private(set) var lowest: Int?

    public init(floor: Int?) {
        self.floor = floor
    }

    /// Batches the walk's first request asks for: the newest down to the floor, plus room for
    /// arrivals since the last poll (twice as many as that poll found, at least 100).
    ///
    /// A steady poll's walk ends on the first page that reaches the floor, and the batches not
    /// ended are almost always the newest few. Asking for a full page anyway (1,000) made every
    /// steady poll transfer, decode and fold 1,000 batches to learn about 20: most of its CPU.
    /// If more arrived than there is room for, the walk simply goes on with full pages, so the
    /// cost of guessing low is one more request, and the next poll makes more room.
    public static func firstPageLimit(floor: Int?, ledgerCount: Int, recentArrivals: Int, pageLimit: Int) -> Int {
        guard let floor else { return pageLimit }
        let depth = max(ledgerCount - floor, 0)
        let room = max(100, 2 * max(recentArrivals, 0))
        return min(depth + room, pageLimit)
    }

    /// Takes one page; returns whether the walk must go on.
    public mutating func observe(_ page: [MessageBatch], in ledger: BatchLedger) -> Bool {
        fresh.append(contentsOf: page)
        for batch in page {
            if let position = ledger.position(of: batchKey(batch.id)) {
                lowest = min(lowest ?? position, position)
            }
        }
        guard let lowest, let floor else { return true }
        return lowest > floor
    }

    /// What ``BatchLedger/apply(walk:covering:context:)`` replaces: from the oldest position
    /// seen up, or everything when the walk read the listing to its end.
    public func covering(listingEnded: Bool) -> Int? {
        listingEnded ? nil : lowest
    }
}

/// The ledger's index: open addressing over positions alone. A slot holds a position in the
/// entries (or empty, or deleted) and the key is read from the entry itself, so the index
/// costs about 6 bytes a batch where a `[UInt64: Int32]` costs over 20: at a million batches
/// the difference is most of what the exporter holds.
struct PositionIndex: Sendable {
    private static let empty: Int32 = -1
    private static let deleted: Int32 = -2
    private var slots: [Int32]
    private var mask: Int
    private(set) var count = 0
    /// Slots not empty: live ones and deleted ones, which probes must step over.
    private var used = 0

    init(capacity: Int = 0) {
        let size = Self.size(for: capacity)
        slots = Array(repeating: Self.empty, count: size)
        mask = size - 1
    }

    private static func size(for capacity: Int) -> Int {
        var size = 16
        // At most 70% full.
        while size * 7 < max(capacity, 1) * 10 { size <<= 1 }
        return size
    }

    /// Keys are FNV-1a hashes; a finaliser spreads their low bits before masking.
    private static func home(_ key: UInt64, mask: Int) -> Int {
        var mixed = key
        mixed ^= mixed >> 33
        mixed &*= 0xff51_afd7_ed55_8ccd
        mixed ^= mixed >> 33
        return Int(truncatingIfNeeded: mixed) & mask
    }

    func position(of key: UInt64, in entries: [LedgerEntry]) -> Int? {
        var slot = Self.home(key, mask: mask)
        while true {
            let value = slots[slot]
            if value == Self.empty { return nil }
            if value >= 0, entries[Int(value)].key == key { return Int(value) }
            slot = (slot + 1) & mask
        }
    }

    /// Indexes `entries[position]`, which must not be indexed yet; every position before it
    /// must be indexed (the index may be rebuilt from them).
    mutating func insert(position: Int, in entries: [LedgerEntry]) {
        if (used + 1) * 10 > slots.count * 7 {
            rebuild(from: entries[...position], capacity: max(count + 1, 16) * 2)
            return
        }
        var slot = Self.home(entries[position].key, mask: mask)
        while slots[slot] >= 0 { slot = (slot + 1) & mask }
        if slots[slot] == Self.empty { used += 1 }
        slots[slot] = Int32(position)
        count += 1
    }

    /// Forgets `key`, which `entries` still holds where the index says.
    mutating func remove(_ key: UInt64, in entries: [LedgerEntry]) {
        var slot = Self.home(key, mask: mask)
        while true {
            let value = slots[slot]
            if value == Self.empty { return }
            if value >= 0, entries[Int(value)].key == key {
                slots[slot] = Self.deleted
                count -= 1
                return
            }
            slot = (slot + 1) & mask
        }
    }

    private mutating func rebuild(from entries: ArraySlice<LedgerEntry>, capacity: Int) {
        var fresh = PositionIndex(capacity: capacity)
        for position in entries.indices {
            var slot = Self.home(entries[position].key, mask: fresh.mask)
            while fresh.slots[slot] >= 0 { slot = (slot + 1) & fresh.mask }
            fresh.slots[slot] = Int32(position)
        }
        fresh.count = entries.count
        fresh.used = entries.count
        self = fresh
    }
}
