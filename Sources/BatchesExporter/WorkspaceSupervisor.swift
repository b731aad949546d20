import BatchesAPI
import Logging
import ServiceLifecycle
import Synchronization

/// Everything that defines one workspace's poller. Two equal values mean nothing changed.
public struct WorkspaceSettings: Sendable, Equatable {
    public var poller: PollerConfiguration
    public var client: BatchesClient.Configuration

    public init(poller: PollerConfiguration, client: BatchesClient.Configuration) {
        self.poller = poller
        self.client = client
    }

    public var name: String { poller.workspace }
}

/// Runs one poller per workspace, each in its own child task of ``run()``, so one failing or
/// rate-limited workspace never delays another; and applies a new set of workspaces without
/// touching the pollers (and snapshots) of those that did not change. Pollers given by
/// ``apply(_:)`` before ``run()`` starts wait for it; when ``run()`` returns, every poller has
/// stopped.
public final class WorkspaceSupervisor: Service, Sendable {
    /// One poller, from its start until it has stopped.
    private struct Running: Sendable {
        let settings: WorkspaceSettings
        let poller: WorkspacePoller
        /// Asks this one poller to stop (a task group cannot cancel one child).
        let stopRequest = WakeSignal()
        let stopped = Completion()

        /// The child task's work: the poller until it ends, is asked to stop, or the group is
        /// cancelled; then says it has stopped.
        func run() async {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { _ = try? await poller.run() }
                group.addTask { await stopRequest.wait() }
                await group.next()
                group.cancelAll()
            }
            stopped.complete()
        }
    }

    public struct Changes: Sendable, Equatable {
        public var added: [String] = []
        public var removed: [String] = []
        public var changed: [String] = []
        public var unchanged: [String] = []
    }

    private let running = Mutex<[String: Running]>([:])
    /// Pollers to start, handed from ``apply(_:)`` to the task group of ``run()``.
    private let starts: AsyncStream<Running>
    private let startsContinuation: AsyncStream<Running>.Continuation
    private let publisher: ExpositionPublisher
    private let makePoller: @Sendable (WorkspaceSettings) throws -> WorkspacePoller
    private let logger: Logger

    public init(
        publisher: ExpositionPublisher,
        logger: Logger,
        makePoller: @escaping @Sendable (WorkspaceSettings) throws -> WorkspacePoller
    ) {
        self.publisher = publisher
        self.logger = logger
        self.makePoller = makePoller
        (starts, startsContinuation) = AsyncStream.makeStream()
    }

    /// The workspaces being polled now.
    public var workspaces: [WorkspaceSettings] {
        running.withLock { $0.values.map(\.settings) }.sorted { $0.name < $1.name }
    }

    /// Starts, stops and restarts pollers so the running set matches `workspaces`. A changed
    /// workspace starts over (its old snapshot goes with its old settings); an unchanged one
    /// keeps running undisturbed. Pollers are built before anything stops, so a poller that
    /// cannot be built leaves everything as it was.
    @discardableResult
    public func apply(_ workspaces: [WorkspaceSettings]) async throws -> Changes {
        let current = running.withLock { $0.mapValues(\.settings) }
        let wanted = Dictionary(workspaces.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        var changes = Changes()
        var toStart: [Running] = []
        for (name, settings) in wanted.sorted(by: { $0.key < $1.key }) {
            if let old = current[name] {
                guard old != settings else {
                    changes.unchanged.append(name)
                    continue
                }
                changes.changed.append(name)
            } else {
                changes.added.append(name)
            }
            toStart.append(Running(settings: settings, poller: try makePoller(settings)))
        }
        changes.removed = current.keys.filter { wanted[$0] == nil }.sorted()

        for name in changes.removed + changes.changed {
            await stop(name)
            if changes.removed.contains(name) { publisher.remove(workspace: name) }
        }
        for entry in toStart {
            running.withLock { $0[entry.settings.name] = entry }
            if case .terminated = startsContinuation.yield(entry) {
                // run() has ended: nothing will start it, and nobody may wait for it to stop.
                entry.stopped.complete()
            }
        }
        return changes
    }

    /// Runs the pollers until graceful shutdown (each also stops at it, after its poll), then
    /// cancels those still running and returns once all have stopped.
    public func run() async throws {
        await withDiscardingTaskGroup { group in
            // Graceful shutdown closes the hand-over; pollers handed over before it still get
            // their child task, so everyone waiting for one to stop is answered.
            group.addTask { [startsContinuation] in
                try? await gracefulShutdown()
                startsContinuation.finish()
            }
            for await entry in starts {
                group.addTask { await entry.run() }
            }
            group.cancelAll()
        }
    }

    /// Asks a poller to stop (a request in flight is aborted) and waits until it has stopped,
    /// so it cannot publish after it was replaced.
    private func stop(_ name: String) async {
        guard let entry = running.withLock({ $0.removeValue(forKey: name) }) else { return }
        entry.stopRequest.signal()
        await entry.stopped.wait()
    }
}

/// Something that happens once; any number wait for it, and a wait after it returns at once.
/// The wait ignores cancellation: who waits for a poller to stop must not go on while it runs.
final class Completion: Sendable {
    private let state = Mutex<(done: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func complete() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            guard !state.done else { return [] }
            state.done = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    func wait() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = state.withLock { state -> Bool in
                if !state.done { state.waiters.append(continuation) }
                return state.done
            }
            if done { continuation.resume() }
        }
    }
}
