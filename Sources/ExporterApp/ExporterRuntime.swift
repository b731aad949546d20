import Basics
import BatchesAPI
import BatchesExporter
import BatchesSimulator
import ConfigFiles
import CurlHTTP
import HTTPServing
import LogFormats
import Logging
import MetricsServer
import PrometheusExposition
import ServiceLifecycle
import UnixSignals

import Glibc

/// Wires the settings into running services: the (optional) demo simulator, the poller and
/// the metrics listener, in one service group that stops on SIGTERM or SIGINT.
public struct ExporterRuntime: Sendable {
    let settings: ExporterSettings
    let loader: WorkspaceConfigLoader
    /// The workspaces, loaded and checked before anything runs; `nil` in demo mode, where the
    /// simulator supplies the one workspace.
    let loaded: WorkspaceConfigLoader.Loaded?

    /// Checks every setting and loads the workspaces, so a bad value or a bad configuration
    /// file stops the start with one line before anything listens or polls.
    public init(flags: ExporterFlags, environment: ProcessEnvironment) throws(SettingsError) {
        settings = try ExporterSettings(flags, environment: environment)
        loader = WorkspaceConfigLoader(defaults: settings, environment: environment)
        loaded = settings.demo ? nil : try loader.load()
    }

    /// Runs the services until SIGTERM or SIGINT.
    public func run() async throws {
        let loader = self.loader
        let format = settings.logFormat
        let level = settings.logLevel
        LoggingSystem.bootstrap { label in StructuredLogHandler(label: label, format: format, level: level) }
        let logger = Logger(label: "anthropic-batches-exporter")
        let startedAt = WallClock.now()

        var services: [any Service] = []
        var workspaces = loaded?.workspaces ?? []
        if settings.demo {
            let demoKey = "sk-ant-demo-\(UInt64.random(in: 0...UInt64.max))"
            let simulated = SimulatedWorkspace(configuration: .demo(apiKey: demoKey, seed: UInt64.random(in: 0...UInt64.max)))
            let simulator = HTTPServer(
                configuration: HTTPServerConfiguration(host: "127.0.0.1", port: 0),
                responder: SimulatorResponder(workspace: simulated, controlEndpoints: false),
                logger: logger
            )
            let port = try await simulator.start()
            // Results files come from the simulator itself, the only host the key may go to.
            simulated.resultsBaseURL = "http://127.0.0.1:\(port)"
            services.append(StartedListenerService(server: simulator))
            var demo = loader.workspace(name: settings.workspaceName, keySource: APIKeySource(key: APIKey(demoKey)))
            demo.client.baseURL = "http://127.0.0.1:\(port)"
            workspaces = [demo]
            logger.info("Demo mode: polling a simulated workspace instead of the real API", metadata: ["api_base_url": "\(demo.client.baseURL)"])
        }

        let store = ExpositionStore()
        let publisher = ExpositionPublisher(store: store, constantFamilies: [BuildInfo.family], now: WallClock.now)
        let settings = self.settings
        let supervisor = WorkspaceSupervisor(publisher: publisher, logger: logger) { workspace in
            // One libcurl handle per workspace: each keeps its own connection, and a slow
            // workspace never waits for another's transfer.
            let http = try CurlClient(
                configuration: .init(
                    connectTimeout: settings.connectTimeout,
                    requestTimeout: settings.requestTimeout,
                    maxBodyBytes: settings.maxResponseBytes,
                    userAgent: BuildInfo.userAgent,
                    caFile: settings.caFile
                )
            )
            return WorkspacePoller(
                configuration: workspace.poller,
                client: BatchesClient(configuration: workspace.client, http: http, logger: logger, now: WallClock.now),
                publisher: publisher,
                logger: logger,
                // A workspace added by a reload counts only batches that end from now on.
                exporterStartedAt: WallClock.now(),
                results: workspace.poller.results
                    ? (
                        ResultsCollector.Configuration(
                            baseURL: workspace.client.baseURL,
                            concurrency: settings.resultsConcurrency,
                            maxBytes: settings.resultsMaxBytes,
                            retry: settings.resultsRetry,
                            prices: settings.prices
                        ),
                        http
                    ) : nil,
                now: WallClock.now,
                // With --storage.path: counters and what is known of each batch continue
                // across restarts (a state saved for other settings is refused, and logged).
                stateStore: settings.storagePath.map { directory in
                    var storeLogger = logger
                    storeLogger[metadataKey: "workspace"] = "\(workspace.name)"
                    return StateFileStore(
                        directory: directory,
                        identity: WorkspaceIdentity(
                            name: workspace.name, baseURL: workspace.client.baseURL, workspaceID: workspace.client.workspaceID
                        ),
                        logger: storeLogger
                    )
                }
            )
        }
        let globalMetrics = GlobalMetrics(publisher: publisher)
        loader.keyEvents.attach { [supervisor] workspace, event in
            KeyFileEvents.log(event, workspace: workspace, logger: logger)
            globalMetrics.setKeyFileErrors(supervisor.workspaces)
        }
        try await supervisor.apply(workspaces)
        globalMetrics.setShard(settings.shard, configured: loaded?.configured ?? workspaces.count, polled: workspaces.count)
        globalMetrics.setKeyFileErrors(supervisor.workspaces)
        if workspaces.isEmpty {
            logger.warning(
                "No workspace of the configuration falls in this shard; serving only the exporter's own metrics",
                metadata: ["shard_index": "\(settings.shard.index)", "shard_count": "\(settings.shard.count)"]
            )
        }
        let reloader = ConfigReloader(loader: loader, supervisor: supervisor, metrics: globalMetrics, logger: logger)
        await reloader.publishStatus(successful: true, at: startedAt)

        var serverConfiguration = HTTPServerConfiguration(host: settings.listenHost, port: settings.listenPort)
        serverConfiguration.maxConnections = settings.maxConnections
        serverConfiguration.tls = settings.tlsContext
        let routes = MetricsRoutes(
            telemetryPath: settings.telemetryPath,
            version: BuildInfo.version,
            store: store,
            perScrapeFamilies: { publisher.perScrapeFamilies() },
            // A shard with no workspace has nothing to wait for: unready forever, it would
            // block a StatefulSet's rolling update.
            isReady: { publisher.hasSucceededOnce || supervisor.workspaces.isEmpty },
            reload: { await reloader.reload(trigger: "POST /-/reload") }
        )
        var responder: any HTTPResponder = routes
        if let webConfigFile = settings.webConfigFile {
            // Followed while running: renewed certificates and changed users apply without a restart.
            let watcher = WebConfigWatcher(
                path: webConfigFile, config: settings.webConfig, tls: settings.tlsContext, inner: routes, logger: logger
            )
            responder = ReloadingBasicAuth(inner: routes, watcher: watcher)
            if let initial = settings.tlsContext {
                serverConfiguration.tlsContextProvider = { watcher.tlsContext(fallback: initial) }
            }
        }
        let server = HTTPServer(configuration: serverConfiguration, responder: responder, logger: logger)
        let listening: Logger.Metadata = [
            "telemetry_path": "\(settings.telemetryPath)",
            "tls": "\(settings.webConfig.tls != nil)", "basic_auth": "\(!settings.webConfig.basicAuthUsers.isEmpty)",
            "version": "\(BuildInfo.version)", "workspaces": "\(workspaces.map(\.name).joined(separator: ","))",
            "shard": "\(settings.shard.index)/\(settings.shard.count)",
        ]
        services.append(
            ListenerService(server: server, address: "\(settings.listenHost):\(settings.listenPort)") { port in
                logger.info("Listening", metadata: listening.merging(["address": "\(settings.listenHost):\(port)"]) { $1 })
            }
        )
        services.append(supervisor)
        services.append(ReloadOnSignal(reloader: reloader))
        // Graceful shutdown runs from the last service to the first: the reload trigger, then
        // the pollers, then the listener (scrapes are served while the pollers stop), then the
        // demo's simulator, and the publisher's put-off render last.
        services.insert(publisher, at: 0)

        let group = ServiceGroup(
            configuration: .init(
                services: services.map { ServiceGroupConfiguration.ServiceConfiguration(service: $0) },
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        try await group.run()
        logger.info("Stopped")
    }
}

/// The metrics listener as a service: binds when it starts to run, serves until graceful
/// shutdown, then drains its connections. A port that cannot be bound fails the group.
struct ListenerService: Service {
    let server: HTTPServer
    /// The address asked for, for the error that says it cannot be bound.
    let address: String
    /// Called once bound, with the port (the one the system chose for port 0).
    let onListening: @Sendable (Int) -> Void

    func run() async throws {
        let port: Int
        do {
            port = try await server.start()
        } catch {
            throw SettingsError(description: "cannot listen on \(address): \(error)")
        }
        onListening(port)
        try? await gracefulShutdown()
        await server.shutdown()
    }
}

/// Keeps an already started ``HTTPServer`` serving until graceful shutdown, then drains it.
/// Only the demo's simulator: its port must be known before the workspace that polls it is
/// configured.
struct StartedListenerService: Service {
    let server: HTTPServer

    func run() async throws {
        try? await gracefulShutdown()
        await server.shutdown()
    }
}
