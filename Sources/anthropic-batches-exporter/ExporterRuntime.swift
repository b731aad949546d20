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

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Wires the settings into running services: the (optional) demo simulator, the poller and
/// the metrics listener, in one service group that stops on SIGTERM or SIGINT.
struct ExporterRuntime {
    let settings: ExporterSettings

    func run() async throws {
        let format = settings.logFormat
        let level = settings.logLevel
        LoggingSystem.bootstrap { label in StructuredLogHandler(label: label, format: format, level: level) }
        let logger = Logger(label: "anthropic-batches-exporter")
        let startedAt = wallClockNow()

        var services: [any Service] = []
        var baseURL = settings.apiBaseURL
        var apiKey = settings.apiKey
        if settings.demo {
            let demoKey = "sk-ant-demo-\(UInt64.random(in: 0...UInt64.max))"
            let simulator = HTTPServer(
                configuration: HTTPServerConfiguration(host: "127.0.0.1", port: 0),
                responder: SimulatorResponder(
                    workspace: SimulatedWorkspace(configuration: .demo(apiKey: demoKey, seed: UInt64.random(in: 0...UInt64.max))),
                    controlEndpoints: false
                ),
                logger: logger
            )
            let port = try await simulator.start()
            services.append(ListenerService(server: simulator))
            baseURL = "http://127.0.0.1:\(port)"
            apiKey = APIKey(demoKey)
            logger.info("Demo mode: polling a simulated workspace instead of the real API", metadata: ["api_base_url": "\(baseURL)"])
        }
        guard let apiKey else {
            throw SettingsError(description: "no API key")
        }

        let http = try CurlClient(
            configuration: .init(
                connectTimeout: settings.connectTimeout,
                requestTimeout: settings.requestTimeout,
                maxBodyBytes: settings.maxResponseBytes,
                userAgent: BuildInfo.userAgent,
                caFile: settings.caFile
            )
        )
        let client = BatchesClient(
            configuration: .init(
                baseURL: baseURL,
                apiKey: apiKey,
                authScheme: settings.authScheme,
                anthropicVersion: settings.anthropicVersion,
                pageLimit: settings.pageSize,
                maxPages: settings.maxPages,
                retryPolicy: RetryPolicy(maxRetries: settings.maxRetries)
            ),
            http: http,
            logger: logger,
            now: wallClockNow
        )
        let store = ExpositionStore()
        let publisher = ExpositionPublisher(store: store, constantFamilies: [BuildInfo.family], now: wallClockNow)
        let poller = WorkspacePoller(
            configuration: PollerConfiguration(
                workspace: settings.workspaceName,
                pollInterval: settings.pollInterval,
                maxBatchMetrics: settings.maxBatchMetrics,
                endedRetention: settings.endedRetention,
                fullResyncInterval: settings.fullResyncInterval,
                maxRequestsPerMinute: settings.maxRequestsPerMinute
            ),
            client: client,
            publisher: publisher,
            logger: logger,
            exporterStartedAt: startedAt,
            now: wallClockNow
        )
        var serverConfiguration = HTTPServerConfiguration(host: settings.listenHost, port: settings.listenPort)
        serverConfiguration.maxConnections = settings.maxConnections
        serverConfiguration.tls = settings.tlsContext
        var responder: any HTTPResponder = MetricsRoutes(
            telemetryPath: settings.telemetryPath,
            version: BuildInfo.version,
            store: store,
            perScrapeFamilies: { publisher.perScrapeFamilies() },
            isReady: { publisher.hasSucceededOnce }
        )
        if !settings.webConfig.basicAuthUsers.isEmpty {
            responder = BasicAuthResponder(wrapping: responder, users: settings.webConfig.basicAuthUsers)
        }
        let server = HTTPServer(configuration: serverConfiguration, responder: responder, logger: logger)
        let port: Int
        do {
            port = try await server.start()
        } catch {
            throw SettingsError(description: "cannot listen on \(settings.listenHost):\(settings.listenPort): \(error)")
        }
        logger.info(
            "Listening",
            metadata: [
                "address": "\(settings.listenHost):\(port)", "telemetry_path": "\(settings.telemetryPath)",
                "tls": "\(settings.webConfig.tls != nil)", "basic_auth": "\(!settings.webConfig.basicAuthUsers.isEmpty)",
                "version": "\(BuildInfo.version)", "poll_interval": "\(GoDuration.format(settings.pollInterval))",
            ]
        )
        services.append(ListenerService(server: server))
        services.append(poller)

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

/// Keeps an already started ``HTTPServer`` serving until graceful shutdown, then drains it.
struct ListenerService: Service {
    let server: HTTPServer

    func run() async throws {
        try? await gracefulShutdown()
        await server.shutdown()
    }
}

/// Wall-clock seconds since the epoch.
@Sendable func wallClockNow() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}
