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

/// Runs one poller per workspace, each in its own task, so one failing or rate-limited
/// workspace never delays another; and applies a new set of workspaces without touching the
/// pollers (and snapshots) of those that did not change.
public final class WorkspaceSupervisor: Service, Sendable {
    private struct Running: Sendable {
        let settings: WorkspaceSettings
        let task: Task<Void, Never>
    }

    public struct Changes: Sendable, Equatable {
        public var added: [String] = []
        public var removed: [String] = []
        public var changed: [String] = []
        public var unchanged: [String] = []
    }

    private let running = Mutex<[String: Running]>([:])
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
        var toStart: [(WorkspaceSettings, WorkspacePoller)] = []
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
            toStart.append((settings, try makePoller(settings)))
        }
        changes.removed = current.keys.filter { wanted[$0] == nil }.sorted()

        for name in changes.removed + changes.changed {
            await stop(name)
            if changes.removed.contains(name) { publisher.remove(workspace: name) }
        }
        for (settings, poller) in toStart {
            let task = Task { _ = try? await poller.run() }
            running.withLock { $0[settings.name] = Running(settings: settings, task: task) }
        }
        return changes
    }

    public func run() async throws {
        try? await gracefulShutdown()
        for name in running.withLock({ Array($0.keys) }) {
            await stop(name)
        }
    }

    /// Cancels a poller (a request in flight is aborted) and waits until it has stopped, so it
    /// cannot publish after it was replaced.
    private func stop(_ name: String) async {
        guard let entry = running.withLock({ $0.removeValue(forKey: name) }) else { return }
        entry.task.cancel()
        await entry.task.value
    }
}
