import BatchesAPI
import FoundationEssentials
import PrometheusExposition

/// Who a saved state belongs to. A file whose fingerprint differs (another API, another
/// workspace id, another name) is refused: its batches are not this workspace's.
public struct WorkspaceIdentity: Sendable, Equatable {
    public var name: String
    public var baseURL: String
    public var workspaceID: String?

    public init(name: String, baseURL: String, workspaceID: String?) {
        self.name = name
        self.baseURL = baseURL
        self.workspaceID = workspaceID
    }

    /// FNV-1a 64 over the three parts, each followed by a 0 byte so that parts cannot shift
    /// into one another.
    public var fingerprint: UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for part in [baseURL, workspaceID ?? "", name] {
            for byte in part.utf8 + [0] {
                hash ^= UInt64(byte)
                hash &*= 0x0000_0100_0000_01b3
            }
        }
        return hash
    }
}

/// What a workspace's poller needs to continue where it stopped.
public struct SavedWorkspaceState: Sendable {
    public var ledger: BatchLedger
    public var lifecycle: BatchLifecycle
    public var corrections: [LedgerCorrection: UInt64]
    /// The first run's start: batches that ended after it and were never seen are counted.
    public var countEndedAfter: Double
    /// Wall time the last complete full read started; `nil` if none has completed.
    public var lastFullReadAt: Double?
    /// The results collector's own saved state, opaque here.
    public var results: Data?

    public init(
        ledger: BatchLedger,
        lifecycle: BatchLifecycle,
        corrections: [LedgerCorrection: UInt64],
        countEndedAfter: Double,
        lastFullReadAt: Double?,
        results: Data? = nil
    ) {
        self.ledger = ledger
        self.lifecycle = lifecycle
        self.corrections = corrections
        self.countEndedAfter = countEndedAfter
        self.lastFullReadAt = lastFullReadAt
        self.results = results
    }
}

/// Why a state file was not used. Every case is a refusal: the exporter starts fresh.
public struct StateFileError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String

    public init(_ description: String) {
        self.description = description
    }
}

/// The on-disk form of a ``SavedWorkspaceState``.
///
/// Layout, every integer little-endian:
/// ```
/// "ABXSTATE"               8 bytes
/// format version           u32
/// identity fingerprint     u64
/// JSON length              u32, then the JSON section (lifecycle, corrections, records, ...)
/// entry count              u64, then 32 bytes per entry: key u64, processing, succeeded,
///                          errored, canceled, expired u32, status u8, archived u8, 2 zero bytes
/// checksum                 u64: FNV-1a 64 over every byte before it
/// ```
/// The entries are the bulk (a million batches is 32 MB) and stay fixed-width binary; the rest is
/// small and JSON, so fields can be added without a new layout.
public enum StateFile {
    static let magic = Array("ABXSTATE".utf8)
    public static let formatVersion: UInt32 = 1
    static let entrySize = 32
    /// The largest JSON section accepted (records are at most the active batches, which the API
    /// caps; 1 GiB is far beyond any real file and keeps a corrupt length from allocating).
    static let maxJSONBytes = 1 << 30

    /// `<directory>/<name, sanitized>-<8 hex of FNV-1a of the name>.state`: readable, and two
    /// names that sanitize alike still get their own files.
    public static func path(directory: String, workspace: String) -> String {
        var safe = String(
            workspace.unicodeScalars.map { scalar -> Character in
                scalar.isASCII && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) || "._-".unicodeScalars.contains(scalar))
                    ? Character(scalar) : "_"
            }
        )
        if safe.count > 64 { safe = String(safe.prefix(64)) }
        if safe.hasPrefix(".") { safe = "_" + safe.dropFirst() }
        let hash = UInt32(truncatingIfNeeded: batchKey(workspace))
        let hex = String(hash, radix: 16)
        let padded = String(repeating: "0", count: 8 - hex.count) + hex
        let trimmed = directory.hasSuffix("/") && directory.count > 1 ? String(directory.dropLast()) : directory
        return "\(trimmed)/\(safe)-\(padded).state"
    }

    // MARK: - Encoding

    public static func encode(_ state: SavedWorkspaceState, identity: WorkspaceIdentity) throws(StateFileError) -> [UInt8] {
        let payload = Payload(state)
        let json: Data
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            json = try encoder.encode(payload)
        } catch {
            throw StateFileError("cannot encode the state: \(error)")
        }
        guard json.count <= maxJSONBytes else { throw StateFileError("the state's JSON section is too large") }
        let entries = state.ledger.entries
        var bytes: [UInt8] = []
        bytes.reserveCapacity(8 + 4 + 8 + 4 + json.count + 8 + entries.count * entrySize + 8)
        bytes += magic
        append(formatVersion, to: &bytes)
        append(identity.fingerprint, to: &bytes)
        append(UInt32(json.count), to: &bytes)
        bytes += json
        append(UInt64(entries.count), to: &bytes)
        for entry in entries {
            append(entry.key, to: &bytes)
            append(entry.processing, to: &bytes)
            append(entry.succeeded, to: &bytes)
            append(entry.errored, to: &bytes)
            append(entry.canceled, to: &bytes)
            append(entry.expired, to: &bytes)
            bytes.append(entry.status.rawValue)
            bytes.append(entry.archived ? 1 : 0)
            bytes.append(0)
            bytes.append(0)
        }
        append(checksum(bytes[...]), to: &bytes)
        return bytes
    }

    // MARK: - Decoding

    /// Decodes and checks a state file. Every length is checked against the size before it is
    /// used, then the checksum, the version, the identity, every value, and the ledger's
    /// consistency; any failure throws, nothing traps.
    public static func decode(_ bytes: [UInt8], identity: WorkspaceIdentity) throws(StateFileError) -> SavedWorkspaceState {
        var reader = Reader(bytes: bytes)
        guard bytes.count >= magic.count, Array(bytes[0..<magic.count]) == magic else {
            throw StateFileError("not a state file (no ABXSTATE header)")
        }
        reader.offset = magic.count
        let version = try reader.u32("format version")
        guard version == formatVersion else {
            throw StateFileError("format version \(version), this exporter reads version \(formatVersion)")
        }
        guard bytes.count >= 8 + 4 + 8 + 4 + 8 + 8 else { throw StateFileError("truncated (\(bytes.count) bytes)") }
        var trailer = Reader(bytes: bytes, offset: bytes.count - 8)
        let stored = try trailer.u64("checksum")
        let fingerprint = try reader.u64("fingerprint")
        let jsonLength = Int(try reader.u32("JSON length"))
        guard jsonLength <= bytes.count - reader.offset - 8 - 8 else { throw StateFileError("truncated (JSON section)") }
        let jsonStart = reader.offset
        reader.offset += jsonLength
        let entryCount = try reader.u64("entry count")
        let remaining = bytes.count - reader.offset - 8
        let (size, overflow) = entryCount.multipliedReportingOverflow(by: UInt64(entrySize))
        guard !overflow, size == UInt64(remaining) else {
            throw StateFileError(size > UInt64(remaining) || overflow ? "truncated (entries)" : "trailing bytes after the entries")
        }
        guard checksum(bytes[..<(bytes.count - 8)]) == stored else { throw StateFileError("checksum mismatch (corrupt)") }
        guard fingerprint == identity.fingerprint else {
            throw StateFileError("saved for another workspace identity (base URL, workspace_id or name differ)")
        }

        let payload: Payload
        do {
            payload = try JSONDecoder().decode(Payload.self, from: Data(bytes[jsonStart..<(jsonStart + jsonLength)]))
        } catch {
            throw StateFileError("unreadable JSON section")
        }

        var entries: [LedgerEntry] = []
        entries.reserveCapacity(Int(entryCount))
        for _ in 0..<Int(entryCount) {
            let key = try reader.u64("entry")
            let processing = try reader.u32("entry")
            let succeeded = try reader.u32("entry")
            let errored = try reader.u32("entry")
            let canceled = try reader.u32("entry")
            let expired = try reader.u32("entry")
            let tail = Array(try reader.bytes(4, "entry"))
            guard let status = LedgerEntry.Status(rawValue: tail[0]), tail[1] <= 1, tail[2] == 0, tail[3] == 0 else {
                throw StateFileError("invalid entry at position \(entries.count)")
            }
            entries.append(
                LedgerEntry(
                    key: key, processing: processing, succeeded: succeeded, errored: errored, canceled: canceled,
                    expired: expired, status: status, archived: tail[1] == 1
                )
            )
        }
        return try payload.restore(entries: entries)
    }

    // MARK: - Helpers

    static func append<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    static func checksum(_ bytes: ArraySlice<UInt8>) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        return hash
    }

    struct Reader {
        let bytes: [UInt8]
        var offset = 0

        mutating func bytes(_ count: Int, _ what: String) throws(StateFileError) -> ArraySlice<UInt8> {
            guard count >= 0, count <= bytes.count - offset else { throw StateFileError("truncated (\(what))") }
            defer { offset += count }
            return bytes[offset..<(offset + count)]
        }

        mutating func integer<T: FixedWidthInteger>(_: T.Type, _ what: String) throws(StateFileError) -> T {
            let slice = try bytes(MemoryLayout<T>.size, what)
            var value: T = 0
            for (shift, byte) in slice.enumerated() { value |= T(byte) << (8 * shift) }
            return value
        }

        mutating func u32(_ what: String) throws(StateFileError) -> UInt32 { try integer(UInt32.self, what) }
        mutating func u64(_ what: String) throws(StateFileError) -> UInt64 { try integer(UInt64.self, what) }
    }
}

// MARK: - The JSON section

/// Non-finite doubles have no JSON form; they are saved as absent.
private func finite(_ value: Double?) -> Double? {
    value.flatMap { $0.isFinite ? $0 : nil }
}

private struct Payload: Codable {
    struct Counts: Codable {
        var processing, succeeded, errored, canceled, expired: Int

        init(_ counts: RequestCounts) {
            processing = counts.processing
            succeeded = counts.succeeded
            errored = counts.errored
            canceled = counts.canceled
            expired = counts.expired
        }

        func restore() throws(StateFileError) -> RequestCounts {
            guard [processing, succeeded, errored, canceled, expired].allSatisfy({ $0 >= 0 }) else {
                throw StateFileError("negative request count")
            }
            return RequestCounts(processing: processing, succeeded: succeeded, errored: errored, canceled: canceled, expired: expired)
        }
    }

    struct Histogram: Codable {
        var bounds: [Double]
        var buckets: [UInt64]
        var sum: Double
        var count: UInt64
    }

    struct Batch: Codable {
        var id: String
        var status: String
        var counts: Counts
        var created: Double?
        var expires: Double?
        var ended: Double?
        var cancelInitiated: Double?
        var archived: Double?

        init(_ batch: MessageBatch) {
            id = batch.id
            status = batch.processingStatus.rawValue
            counts = Counts(batch.requestCounts)
            created = finite(batch.createdAt)
            expires = finite(batch.expiresAt)
            ended = finite(batch.endedAt)
            cancelInitiated = finite(batch.cancelInitiatedAt)
            archived = finite(batch.archivedAt)
        }

        func restore() throws(StateFileError) -> MessageBatch {
            MessageBatch(
                id: id, processingStatus: ProcessingStatus(rawValue: status), requestCounts: try counts.restore(),
                createdAt: created, expiresAt: expires, endedAt: ended, cancelInitiatedAt: cancelInitiated, archivedAt: archived
            )
        }
    }

    var endedBatches: UInt64
    var endedRequests: Counts
    var durations: Histogram
    var corrections: [String: UInt64]
    var countEndedAfter: Double
    var lastFullReadAt: Double?
    var refreshedAt: Double?
    var records: [Batch]
    var results: Data?

    init(_ state: SavedWorkspaceState) {
        endedBatches = state.lifecycle.endedBatches
        endedRequests = Counts(state.lifecycle.endedRequests)
        let histogram = state.lifecycle.processingDurations
        durations = Histogram(bounds: histogram.bounds, buckets: histogram.bucketCounts, sum: histogram.sum, count: histogram.count)
        if !durations.sum.isFinite { durations.sum = 0 }
        corrections = Dictionary(uniqueKeysWithValues: state.corrections.map { ($0.key.rawValue, $0.value) })
        // Not finite only if the clock was broken; the file must still be writable.
        countEndedAfter = finite(state.countEndedAfter) ?? 0
        lastFullReadAt = finite(state.lastFullReadAt)
        refreshedAt = finite(state.ledger.refreshedAt)
        // Sorted so that equal states give equal files.
        records = state.ledger.records.values.sorted { $0.id < $1.id }.map(Batch.init)
        results = state.results
    }

    func restore(entries: [LedgerEntry]) throws(StateFileError) -> SavedWorkspaceState {
        guard durations.bounds == BatchLifecycle.durationBuckets,
            let histogram = HistogramCounts(bounds: durations.bounds, bucketCounts: durations.buckets, sum: durations.sum, count: durations.count)
        else {
            throw StateFileError("duration histogram does not match this exporter's buckets")
        }
        guard countEndedAfter.isFinite, lastFullReadAt?.isFinite ?? true, refreshedAt?.isFinite ?? true else {
            throw StateFileError("a timestamp is not a number")
        }
        let lifecycle = BatchLifecycle(endedBatches: endedBatches, endedRequests: try endedRequests.restore(), processingDurations: histogram)
        var restoredRecords: [UInt64: MessageBatch] = [:]
        restoredRecords.reserveCapacity(records.count)
        for record in records {
            guard restoredRecords.updateValue(try record.restore(), forKey: batchKey(record.id)) == nil else {
                throw StateFileError("batch \(record.id) saved twice")
            }
        }
        guard let ledger = BatchLedger(restoring: entries, records: restoredRecords, refreshedAt: refreshedAt ?? -.infinity) else {
            throw StateFileError("inconsistent ledger (a batch twice, or a record without entry)")
        }
        // A record must agree with its entry: the entry is what the totals are built from.
        for (key, record) in restoredRecords where ledger.entry(for: key) != LedgerEntry(record) {
            throw StateFileError("batch \(record.id) disagrees with its entry")
        }
        var restoredCorrections: [LedgerCorrection: UInt64] = [:]
        for (name, count) in corrections {
            // A kind a later version added is dropped, not fatal.
            if let kind = LedgerCorrection(rawValue: name) { restoredCorrections[kind] = count }
        }
        return SavedWorkspaceState(
            ledger: ledger, lifecycle: lifecycle, corrections: restoredCorrections, countEndedAfter: countEndedAfter,
            lastFullReadAt: lastFullReadAt, results: results
        )
    }
}

extension StateFile {
    /// The results collector's state as the JSON of ``SavedWorkspaceState/results``; `nil`
    /// if it cannot be encoded (then the collector starts fresh after a restart).
    public static func encodeResults(_ state: ResultsCollectorState) -> Data? {
        try? JSONEncoder().encode(state)
    }

    /// The results collector's state from ``SavedWorkspaceState/results``; `nil` for none or
    /// for JSON this version cannot read.
    public static func decodeResults(_ data: Data?) -> ResultsCollectorState? {
        data.flatMap { try? JSONDecoder().decode(ResultsCollectorState.self, from: $0) }
    }
}
