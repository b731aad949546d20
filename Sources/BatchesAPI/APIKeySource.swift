import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// What identifies one version of a file: `stat(2)` of its path (symlinks followed), so both a
/// write in place (new mtime, ctime or size) and Kubernetes' update of a mounted Secret (a
/// symlink swapped to a new file: new inode) count as a change.
public struct FileStamp: Sendable, Equatable {
    public let device: UInt64
    public let inode: UInt64
    public let size: Int64
    public let modified: Duration
    public let changed: Duration

    /// The stamp of `path` now, or `nil` (with `errno` set) when it cannot be stat'ed.
    public static func of(_ path: String) -> FileStamp? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return FileStamp(
            device: UInt64(info.st_dev),
            inode: UInt64(info.st_ino),
            size: Int64(info.st_size),
            modified: .seconds(info.st_mtim.tv_sec) + .nanoseconds(info.st_mtim.tv_nsec),
            changed: .seconds(info.st_ctim.tv_sec) + .nanoseconds(info.st_ctim.tv_nsec)
        )
    }
}

/// The API key of one workspace, asked for before every request. A fixed key (from the
/// environment) never changes; a key file is followed: its path is stat'ed at most once per
/// ``checkInterval`` and re-read when it changed (new content, or a new file swapped in),
/// with no restart or signal. A file that turns unreadable, empty or malformed keeps the
/// last good key in use, counts a ``readErrors`` and reports it to the observer (which logs
/// it); the key itself never leaves this type except into a request header.
///
/// Two sources are equal when they name the same file (or hold the same fixed key), so a
/// reloaded configuration whose workspace still points at the same file counts as unchanged
/// and keeps its running poller, which keeps following the file.
public final class APIKeySource: Sendable, Equatable, CustomStringConvertible {
    public enum Origin: Sendable, Equatable {
        case fixed(APIKey)
        case file(path: String)
    }

    /// What happened on a re-read, for logs and metrics. Never carries key material.
    public enum Event: Sendable, Equatable {
        /// The file changed and holds a new, valid key, now in use.
        case keyReplaced(path: String)
        /// The file changed back to holding the key already in use (e.g. touched, or restored).
        case keyUnchanged(path: String)
        /// A re-read failed; the last good key stays in use. `repeated` is true when the
        /// previous read failed on the same version of the file (a forced re-read of a file
        /// still broken): log only the first.
        case readFailed(path: String, problem: String, repeated: Bool)
    }

    /// Why a key file cannot give a key.
    public struct ReadError: Error, Equatable, CustomStringConvertible {
        public let path: String
        public let problem: String
        public var description: String { "\(path) \(problem)" }
    }

    public let origin: Origin
    /// Shortest time between two stats of the file.
    public let checkInterval: Duration
    private let state: Mutex<State>
    private let now: @Sendable () -> ContinuousClock.Instant
    private let observer: @Sendable (Event) -> Void

    private struct State {
        var key: APIKey
        /// The version of the file the last read saw (failed reads included), or `nil` when
        /// it could not be stat'ed.
        var stamp: FileStamp?
        var lastCheck: ContinuousClock.Instant
        var readErrors = 0
        var lastReadFailed = false
    }

    /// A key that never changes.
    public init(key: APIKey) {
        origin = .fixed(key)
        checkInterval = .zero
        now = { .now }
        observer = { _ in }
        state = Mutex(State(key: key, stamp: nil, lastCheck: .now))
    }

    /// Follows the key file at `path`. Reads it now: a file that cannot give a key throws,
    /// since there is no earlier key to fall back on.
    /// - Parameters:
    ///   - checkInterval: shortest time between two stats of the file.
    ///   - now: the clock for that interval; injected so tests need not wait.
    ///   - observer: told of every re-read that replaced the key or failed. Called without
    ///     any lock held, on the thread that asked for the key.
    public init(
        file path: String,
        checkInterval: Duration = .seconds(1),
        now: @escaping @Sendable () -> ContinuousClock.Instant = { .now },
        observer: @escaping @Sendable (Event) -> Void = { _ in }
    ) throws(ReadError) {
        origin = .file(path: path)
        self.checkInterval = checkInterval
        self.now = now
        self.observer = observer
        let stamp = FileStamp.of(path)
        let key = try Self.readKey(path)
        state = Mutex(State(key: key, stamp: stamp, lastCheck: now()))
    }

    /// The key to send now. For a key file, stats it if ``checkInterval`` has passed since the
    /// last look and re-reads it if it changed.
    public func current() -> APIKey {
        guard case .file(let path) = origin else { return state.withLock { $0.key } }
        let (key, event) = state.withLock { state -> (APIKey, Event?) in
            let time = now()
            guard time - state.lastCheck >= checkInterval else { return (state.key, nil) }
            state.lastCheck = time
            // A missing file has no stamp: it counts as one version too, read (and counted)
            // once until it comes back.
            let stamp = FileStamp.of(path)
            guard stamp != state.stamp else { return (state.key, nil) }
            let event = Self.reread(path, stamp: stamp, state: &state)
            return (state.key, event)
        }
        if let event { observer(event) }
        return key
    }

    /// Re-reads a key file now, changed or not (SIGHUP, POST /-/reload). Nothing for a fixed key.
    public func refresh() {
        guard case .file(let path) = origin else { return }
        let event = state.withLock { state -> Event? in
            state.lastCheck = now()
            return Self.reread(path, stamp: FileStamp.of(path), state: &state)
        }
        if let event { observer(event) }
    }

    /// Returns once the key in use differs from `key`, looking at the file every
    /// ``checkInterval`` (a fixed key never changes: this waits until cancelled, then throws).
    /// For a poller backing off after the API refused the key: race it with the backoff so a
    /// rotated file ends the wait instead of the backoff's full length.
    /// - Parameter sleep: waits between looks; injected so tests need not wait.
    public func waitForKey(
        otherThan key: APIKey,
        sleep: @Sendable (Duration) async throws -> Void = { try await Task.sleep(for: $0) }
    ) async throws {
        let interval = checkInterval > .zero ? checkInterval : .seconds(1)
        while current() == key {
            try await sleep(interval)
        }
    }

    /// Failed re-reads so far (the last good key was kept each time).
    public var readErrors: Int { state.withLock { $0.readErrors } }

    /// The key file's path; `nil` for a fixed key.
    public var path: String? {
        if case .file(let path) = origin { return path }
        return nil
    }

    public var description: String {
        switch origin {
        case .fixed: "fixed key"
        case .file(let path): "key file \(path)"
        }
    }

    public static func == (lhs: APIKeySource, rhs: APIKeySource) -> Bool {
        lhs.origin == rhs.origin
    }

    private static func reread(_ path: String, stamp: FileStamp?, state: inout State) -> Event? {
        let previousStamp = state.stamp
        let previousFailed = state.lastReadFailed
        state.stamp = stamp
        do {
            let key = try readKey(path)
            state.lastReadFailed = false
            let changed = key != state.key
            state.key = key
            return changed ? .keyReplaced(path: path) : (previousFailed ? .keyUnchanged(path: path) : nil)
        } catch {
            state.readErrors += 1
            state.lastReadFailed = true
            return .readFailed(path: path, problem: error.problem, repeated: previousFailed && previousStamp == stamp)
        }
    }

    /// The key in a file: its only line, surrounding whitespace ignored.
    public static func readKey(_ path: String, limit: Int = 65_536) throws(ReadError) -> APIKey {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw ReadError(path: path, problem: "cannot be read (\(errnoName(errno)))") }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 { throw ReadError(path: path, problem: "cannot be read (\(errnoName(errno)))") }
            if count == 0 { break }
            bytes.append(contentsOf: chunk[0..<count])
            guard bytes.count <= limit else { throw ReadError(path: path, problem: "is larger than \(limit) bytes; it must hold only the key") }
        }
        let isSpace: (UInt8) -> Bool = { $0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D }
        let trimmed = Array(bytes.drop(while: isSpace).reversed().drop(while: isSpace).reversed())
        guard !trimmed.isEmpty else { throw ReadError(path: path, problem: "is empty") }
        guard !trimmed.contains(0x0A), !trimmed.contains(0x0D) else {
            throw ReadError(path: path, problem: "holds more than one line; it must hold only the key")
        }
        return APIKey(String(decoding: trimmed, as: UTF8.self))
    }

    private static func errnoName(_ code: Int32) -> String {
        switch code {
        case ENOENT: "no such file"
        case EACCES: "permission denied"
        case EISDIR: "is a directory"
        default: "errno \(code)"
        }
    }
}
