import BatchesAPI
import BatchesExporter
import ConfigFiles
import Logging
import PrometheusExposition
import Synchronization

/// The families about the process rather than one workspace's polls: the configuration's
/// reload status, the shard, the key files' read errors. One owner for all of them, because
/// ``ExpositionPublisher/publishGlobal(_:)`` replaces the whole set each time.
final class GlobalMetrics: Sendable {
    private struct Parts {
        var reload: [MetricFamily] = []
        var shard: [MetricFamily] = []
        var keyFiles: [MetricFamily] = []
    }

    private let publisher: ExpositionPublisher
    private let parts = Mutex(Parts())

    init(publisher: ExpositionPublisher) {
        self.publisher = publisher
    }

    func setReloadStatus(successful: Bool, lastSuccess: Double) {
        update {
            $0.reload = [
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
            ]
        }
    }

    /// - Parameters:
    ///   - configured: workspaces in the configuration, all shards together.
    ///   - polled: workspaces this process polls.
    func setShard(_ shard: ShardSelection, configured: Int, polled: Int) {
        update {
            $0.shard = [
                MetricFamily(
                    name: "anthropic_batches_exporter_shard",
                    help: "The shard of the configuration this exporter polls (--shard.index, --shard.count); the value is always 1.",
                    type: .info, samples: [Sample([Label("count", String(shard.count)), Label("index", String(shard.index))], 1)]
                ),
                MetricFamily(
                    name: "anthropic_batches_exporter_config_workspaces",
                    help: "Workspaces in the configuration, all shards together.",
                    type: .gauge, samples: [Sample([], Double(configured))]
                ),
                MetricFamily(
                    name: "anthropic_batches_exporter_shard_workspaces",
                    help: "Workspaces this exporter polls: those of the configuration in its shard.",
                    type: .gauge, samples: [Sample([], Double(polled))]
                ),
            ]
        }
    }

    /// One series per running workspace whose key comes from a file.
    func setKeyFileErrors(_ workspaces: [WorkspaceSettings]) {
        let samples = workspaces.compactMap { workspace -> Sample? in
            guard workspace.client.keySource.path != nil else { return nil }
            return Sample([Label("workspace", workspace.name)], Double(workspace.client.keySource.readErrors))
        }
        update {
            $0.keyFiles =
                samples.isEmpty
                ? []
                : [
                    MetricFamily(
                        name: "anthropic_batches_exporter_api_key_file_errors",
                        help: "Re-reads of the workspace's key file that failed (unreadable, empty or more than one line); the last good key stays in use.",
                        type: .counter, samples: samples
                    )
                ]
        }
    }

    /// Changes one part and publishes the whole set, under the lock so two updates cannot
    /// publish out of order.
    private func update(_ change: (inout Parts) -> Void) {
        parts.withLock { parts in
            change(&parts)
            publisher.publishGlobal(parts.reload + parts.shard + parts.keyFiles)
        }
    }
}

/// Where the key files' re-reads report. Created with the loader, before logging and metrics
/// exist; the runtime attaches the handler once they do.
final class KeyFileEvents: Sendable {
    typealias Handler = @Sendable (_ workspace: String, _ event: APIKeySource.Event) -> Void
    private let handler = Mutex<Handler?>(nil)

    func attach(_ handler: @escaping Handler) {
        self.handler.withLock { $0 = handler }
    }

    func report(workspace: String, _ event: APIKeySource.Event) {
        handler.withLock { $0 }?(workspace, event)
    }

    /// The log line for an event: once per failure, never with key material.
    static func log(_ event: APIKeySource.Event, workspace: String, logger: Logger) {
        switch event {
        case .keyReplaced(let path):
            logger.info("API key file changed; using the new key", metadata: ["workspace": "\(workspace)", "path": "\(path)"])
        case .keyUnchanged(let path):
            logger.info("API key file is readable again; the key in use is unchanged", metadata: ["workspace": "\(workspace)", "path": "\(path)"])
        case .readFailed(let path, let problem, let repeated):
            let metadata: Logger.Metadata = ["workspace": "\(workspace)", "path": "\(path)", "problem": "\(problem)"]
            if repeated {
                logger.debug("API key file still cannot be used; keeping the last good key", metadata: metadata)
            } else {
                logger.warning("API key file cannot be used; keeping the last good key", metadata: metadata)
            }
        }
    }
}
