import BatchesExporter
import Logging
import PrometheusExposition
import ServiceLifecycle
import UnixSignals

/// Re-reads `--config.file` on SIGHUP and POST /-/reload, one reload at a time. A bad file
/// keeps the running configuration, and says why in the log, the HTTP answer and
/// `config_last_reload_successful`.
actor ConfigReloader {
    private let loader: WorkspaceConfigLoader
    private let supervisor: WorkspaceSupervisor
    private let publisher: ExpositionPublisher
    private let logger: Logger
    private var lastSuccess: Double = 0

    init(loader: WorkspaceConfigLoader, supervisor: WorkspaceSupervisor, publisher: ExpositionPublisher, logger: Logger) {
        self.loader = loader
        self.supervisor = supervisor
        self.publisher = publisher
        self.logger = logger
    }

    /// - Returns: whether the reload took, and a one-line account of it.
    func reload(trigger: String) async -> (ok: Bool, message: String) {
        guard loader.defaults.configFile != nil else {
            return (false, "nothing to reload: the exporter was started without --config.file")
        }
        do {
            let workspaces = try loader.load()
            let changes = try await supervisor.apply(workspaces)
            publishStatus(successful: true, at: wallClockNow())
            let summary =
                "added: \(changes.added.joined(separator: ",")); removed: \(changes.removed.joined(separator: ",")); "
                + "changed: \(changes.changed.joined(separator: ",")); unchanged: \(changes.unchanged.joined(separator: ","))"
            logger.info("Configuration reloaded", metadata: ["trigger": "\(trigger)", "changes": "\(summary)"])
            return (true, "configuration reloaded; \(summary)")
        } catch {
            publishStatus(successful: false, at: nil)
            logger.error("Reload failed; keeping the running configuration", metadata: ["trigger": "\(trigger)", "error": "\(error)"])
            return (false, "reload failed, running configuration kept: \(error)")
        }
    }

    func publishStatus(successful: Bool, at time: Double?) {
        if let time { lastSuccess = time }
        publisher.publishGlobal([
            MetricFamily(
                name: "anthropic_batches_exporter_config_last_reload_successful",
                help: "1 if the last load of the configuration (start-up or reload) succeeded, 0 if it failed and the previous one is still in use.",
                type: .gauge, samples: [Sample([], successful ? 1 : 0)]
            ),
            MetricFamily(
                name: "anthropic_batches_exporter_config_last_reload_success_timestamp_seconds",
                help: "When the configuration was last loaded successfully.",
                type: .gauge, unit: "seconds", samples: [Sample([], lastSuccess)]
            ),
        ])
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
