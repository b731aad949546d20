import FoundationEssentials
import Logging
import PrometheusExposition
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// File-system side of ``StateFile``: creating the directory, reading a file, and replacing it
/// atomically.
public enum StateFileIO {
    /// Creates `path` (and missing parents) with mode 0700 and checks a file can be created in it.
    /// - Throws: a one-line reason, for the start-up error (exit 2).
    public static func prepareDirectory(_ path: String) throws(StateFileError) {
        guard !path.isEmpty else { throw StateFileError("--storage.path must not be empty") }
        var prefix = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            prefix += "/" + component
            if mkdir(prefix, 0o700) != 0, errno != EEXIST {
                throw StateFileError("--storage.path \(path): cannot create \(prefix): \(String(cString: strerror(errno)))")
            }
        }
        var status = stat()
        guard stat(path, &status) == 0, (status.st_mode & S_IFMT) == S_IFDIR else {
            throw StateFileError("--storage.path \(path) is not a directory")
        }
        // access(W_OK) says yes to root on a read-only mount: create a file instead.
        let probe = "\(path)/.write-probe-\(getpid())"
        let descriptor = open(probe, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw StateFileError("--storage.path \(path) is not writable: \(String(cString: strerror(errno)))")
        }
        close(descriptor)
        unlink(probe)
    }

    /// The file's bytes; `nil` when it does not exist.
    public static func read(_ path: String) throws(StateFileError) -> [UInt8]? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            if errno == ENOENT { return nil }
            throw StateFileError("cannot open: \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw StateFileError("cannot read: \(String(cString: strerror(errno)))")
            }
            if count == 0 { return bytes }
            bytes += chunk[0..<count]
        }
    }

    /// Replaces `path` with `bytes` so that a crash at any moment leaves the old file or the new
    /// one, never a mix: write `<path>.tmp-<pid>`, fsync it, rename it over, fsync the directory.
    public static func writeAtomically(_ bytes: [UInt8], to path: String) throws(StateFileError) {
        let temporary = "\(path).tmp-\(getpid())"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw StateFileError("cannot create \(temporary): \(String(cString: strerror(errno)))") }
        var failure: StateFileError?
        bytes.withUnsafeBytes { buffer in
            var written = 0
            while written < buffer.count {
                let count = Glibc.write(descriptor, buffer.baseAddress! + written, buffer.count - written)
                if count < 0 {
                    if errno == EINTR { continue }
                    failure = StateFileError("cannot write \(temporary): \(String(cString: strerror(errno)))")
                    return
                }
                written += count
            }
        }
        if failure == nil, fsync(descriptor) != 0 {
            failure = StateFileError("cannot fsync \(temporary): \(String(cString: strerror(errno)))")
        }
        close(descriptor)
        if failure == nil, rename(temporary, path) != 0 {
            failure = StateFileError("cannot rename \(temporary) to \(path): \(String(cString: strerror(errno)))")
        }
        if let failure {
            unlink(temporary)
            throw failure
        }
        // The rename is durable only once the directory is.
        let directory = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        let directoryDescriptor = open(directory.isEmpty ? (path.hasPrefix("/") ? "/" : ".") : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryDescriptor >= 0 {
            fsync(directoryDescriptor)
            close(directoryDescriptor)
        }
    }
}

/// When to save: after a poll that changed something, at most once per `minimumInterval`. The
/// first change after a quiet spell saves at once; changes within the interval are coalesced
/// into one save when it has passed. Pure, so it is tested with plain numbers.
public struct SaveCadence: Sendable, Equatable {
    public let minimumInterval: Double
    public private(set) var lastSaveAt: Double?
    public private(set) var pending = false

    public init(minimumInterval: Double = 30) {
        self.minimumInterval = minimumInterval
    }

    /// Whether to save now, after a poll that did (`changed`) or did not change anything.
    public mutating func shouldSave(changed: Bool, now: Double) -> Bool {
        if changed { pending = true }
        guard pending else { return false }
        if let last = lastSaveAt, now - last < minimumInterval, now >= last { return false }
        return true
    }

    /// Records a save attempt's end: a failed one stays pending and is retried after the interval.
    public mutating func saved(at now: Double, succeeded: Bool) {
        lastSaveAt = now
        if succeeded { pending = false }
    }
}

/// One workspace's state file: loads it at start, saves it on the cadence, counts failures.
public final class StateFileStore: Sendable {
    public enum Loaded: Sendable {
        case missing
        case restored(SavedWorkspaceState)
        /// The file was refused (the reason was logged); start fresh.
        case refused(StateFileError)

        public var restoredState: SavedWorkspaceState? {
            if case .restored(let state) = self { state } else { nil }
        }
    }

    public let path: String
    public let identity: WorkspaceIdentity
    private let logger: Logger
    private struct Status {
        var cadence: SaveCadence
        var saveErrors: UInt64 = 0
        var failing = false
        var restored = false
    }
    private let status: Mutex<Status>

    public init(directory: String, identity: WorkspaceIdentity, logger: Logger, minimumInterval: Double = 30) {
        path = StateFile.path(directory: directory, workspace: identity.name)
        self.identity = identity
        self.logger = logger
        status = Mutex(Status(cadence: SaveCadence(minimumInterval: minimumInterval)))
    }

    /// Reads and checks the file. A refused file is logged once, as a warning naming the file and
    /// the reason; the caller starts fresh (the next save replaces the file).
    public func load() -> Loaded {
        do throws(StateFileError) {
            guard let bytes = try StateFileIO.read(path) else { return .missing }
            let state = try StateFile.decode(bytes, identity: identity)
            status.withLock { $0.restored = true }
            logger.info(
                "Restored the saved state",
                metadata: ["file": "\(path)", "batches": "\(state.ledger.count)", "ended_batches": "\(state.lifecycle.endedBatches)"]
            )
            return .restored(state)
        } catch {
            logger.warning("Refused the saved state; starting fresh", metadata: ["file": "\(path)", "reason": "\(error.description)"])
            return .refused(error)
        }
    }

    /// Whether a save is due after a poll (see ``SaveCadence``).
    public func isDue(changed: Bool, now: Double) -> Bool {
        status.withLock { $0.cadence.shouldSave(changed: changed, now: now) }
    }

    /// Encodes and writes `state`. Call outside any lock that scrapes wait on: a large ledger
    /// takes a while. A failure is logged once per streak of failures and counted.
    @discardableResult
    public func save(_ state: SavedWorkspaceState, now: Double) -> Bool {
        var failure: StateFileError?
        do throws(StateFileError) {
            try StateFileIO.writeAtomically(try StateFile.encode(state, identity: identity), to: path)
        } catch {
            failure = error
        }
        let firstOfStreak = status.withLock { status -> Bool in
            status.cadence.saved(at: now, succeeded: failure == nil)
            defer { status.failing = failure != nil }
            guard failure != nil else { return false }
            status.saveErrors += 1
            return !status.failing
        }
        if let failure, firstOfStreak {
            logger.warning("Cannot save the state; will retry", metadata: ["file": "\(path)", "reason": "\(failure.description)"])
        }
        return failure == nil
    }

    public var saveErrors: UInt64 { status.withLock { $0.saveErrors } }
    public var restored: Bool { status.withLock { $0.restored } }

    /// `state_restored` and `state_save_errors_total`.
    public func families(workspace name: String) -> [MetricFamily] {
        let (restored, errors) = status.withLock { ($0.restored, $0.saveErrors) }
        let workspace = Label("workspace", name)
        return [
            MetricFamily(
                name: "anthropic_batches_exporter_state_restored",
                help: "1 when this workspace's state came from --storage.path at start, 0 when it started fresh.",
                type: .gauge, samples: [Sample([workspace], restored ? 1 : 0)]
            ),
            MetricFamily(
                name: "anthropic_batches_exporter_state_save_errors",
                help: "Failed saves of this workspace's state to --storage.path.",
                type: .counter, samples: [Sample([workspace], Double(errors))]
            ),
        ]
    }
}
