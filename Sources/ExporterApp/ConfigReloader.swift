import Basics
import BatchesAPI
import BatchesExporter
import Logging
import PrometheusExposition
import ServiceLifecycle
import UnixSignals

/// Re-reads `--config.file` and every key file on SIGHUP and POST /-/reload, one reload at a
/// time. A bad file keeps the running configuration, and says why in the log, the HTTP answer
/// and `config_last_reload_successful`. Key files are re-read whether or not the
/// configuration changed, and without --config.file too (they are also followed on their own,
/// see ``APIKeySource``; a reload makes it immediate).
actor ConfigReloader {
    private let loader: WorkspaceConfigLoader
    private let supervisor: WorkspaceSupervisor
    private let metrics: GlobalMetrics
    private let logger: Logger
    private var lastSuccess: Double = 0

    init(loader: WorkspaceConfigLoader, supervisor: WorkspaceSupervisor, metrics: GlobalMetrics, logger: Logger) {
        self.loader = loader
        self.supervisor = supervisor
        self.metrics = metrics
        self.logger = logger
    }

    /// - Returns: whether the reload took, and a one-line account of it.
    func reload(trigger: String) async -> (ok: Bool, message: String) {
        guard loader.defaults.configFile != nil else {
            let keyFiles = rereadKeyFiles()
            guard keyFiles > 0 else {
                return (false, "nothing to reload: the exporter was started without --config.file")
            }
            logger.info("API key file re-read", metadata: ["trigger": "\(trigger)"])
            return (true, "API key file re-read; no --config.file to reload")
        }
        do {
            let loaded = try loader.load(reusing: supervisor.workspaces)
            let changes = try await supervisor.apply(loaded.workspaces)
            rereadKeyFiles()
            metrics.setShard(loader.defaults.shard, configured: loaded.configured, polled: loaded.workspaces.count)
            publishStatus(successful: true, at: WallClock.now())
            let summary =
                "added: \(changes.added.joined(separator: ",")); removed: \(changes.removed.joined(separator: ",")); "
                + "changed: \(changes.changed.joined(separator: ",")); unchanged: \(changes.unchanged.joined(separator: ","))"
            logger.info("Configuration reloaded", metadata: ["trigger": "\(trigger)", "changes": "\(summary)"])
            return (true, "configuration reloaded; \(summary)")
        } catch {
            rereadKeyFiles()
            publishStatus(successful: false, at: nil)
            logger.error("Reload failed; keeping the running configuration", metadata: ["trigger": "\(trigger)", "error": "\(error)"])
            return (false, "reload failed, running configuration kept: \(error)")
        }
    }

    /// Re-reads the key file of every running workspace that has one; returns how many.
    @discardableResult
    private func rereadKeyFiles() -> Int {
        let running = supervisor.workspaces
        let sources = running.map(\.client.keySource).filter { $0.path != nil }
        for source in sources { source.refresh() }
        metrics.setKeyFileErrors(running)
        return sources.count
    }

    func publishStatus(successful: Bool, at time: Double?) {
        if let time { lastSuccess = time }
        metrics.setReloadStatus(successful: successful, lastSuccess: lastSuccess)
    }
}

/// Reloads the configuration on SIGHUP until shutdown.
struct ReloadOnSignal: Service {
    let reloader: ConfigReloader

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        for await _ in signals.cancelOnGracefulShutdown() {
            _ = await reloader.reload(trigger: "SIGHUP")
        }
    }
}
