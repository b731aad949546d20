import Basics
import BatchesAPI
import BatchesExporter
import ConfigFiles
import LogFormats
import Logging
import HTTPServing
import NIOSSL

import Glibc

/// A startup problem, said in one line.
public struct SettingsError: Error, CustomStringConvertible, Equatable {
    public let description: String

    public init(description: String) {
        self.description = description
    }
}

/// Environment variables, read in exactly one place.
public struct ProcessEnvironment: Sendable {
    let lookup: @Sendable (String) -> String?
    var hostname: @Sendable () -> String? = {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return nil }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// - Parameters:
    ///   - lookup: the value of an environment variable.
    ///   - hostname: the host name, for `--shard.from-pod-name` without `POD_NAME`.
    public init(lookup: @escaping @Sendable (String) -> String?, hostname: (@Sendable () -> String?)? = nil) {
        self.lookup = lookup
        if let hostname { self.hostname = hostname }
    }

    var apiKey: String? { lookup("ANTHROPIC_API_KEY") }

    public static var current: ProcessEnvironment {
        ProcessEnvironment { name in getenv(name).map { String(cString: $0) } }
    }
}

/// Every setting, validated and typed. Built once from the flags and the environment.
public struct ExporterSettings: Sendable {
    var listenHost: String
    var listenPort: Int
    var telemetryPath: String
    var maxConnections: Int
    var webConfig: WebConfig
    /// `--web.config.file`, followed while running (``WebConfigWatcher``).
    var webConfigFile: String?
    /// Built while validating, so a bad certificate stops the start with exit 2, like any
    /// other bad setting, before anything listens.
    var tlsContext: NIOSSLContext?
    var apiBaseURL: String
    var anthropicVersion: String
    /// From ANTHROPIC_API_KEY; `nil` with --api-key-file, --config.file or in demo mode (where
    /// the simulator's own key is used).
    var apiKey: APIKey?
    /// `--api-key-file`, checked readable at start; followed while running (``APIKeySource``).
    var apiKeyFile: String?
    /// Which workspaces of --config.file this process polls.
    var shard: ShardSelection
    var authScheme: AuthScheme
    var pollInterval: Duration
    var connectTimeout: Duration
    var requestTimeout: Duration
    var maxRetries: Int
    var maxPages: Int
    var pageSize: Int
    var maxResponseBytes: Int
    var caFile: String?
    var fullResyncInterval: Duration
    var maxRequestsPerMinute: Int
    var workspaceName: String
    var maxBatchMetrics: Int
    var endedRetention: Duration
    /// `--results.*`: whether workspaces download results by default, and how.
    var resultsEnabled: Bool
    var resultsConcurrency: Int
    var resultsMaxBytes: UInt64
    var resultsRetry: ResultsRetryPolicy
    var prices: PriceTable?
    var logLevel: Logger.Level
    var logFormat: LogFormat
    public var demo: Bool
    /// `--storage.path`: the directory of the workspaces' state files, created and checked
    /// writable at start; `nil` keeps no state across restarts.
    var storagePath: String?
    /// `--config.file`: the workspaces to poll, re-read on SIGHUP and POST /-/reload.
    var configFile: String?

    /// Reads and checks `--results.prices-file`, saying which line is wrong.
    static func prices(_ file: String) throws(SettingsError) -> PriceTable {
        guard let text = readSmallFile(file, limit: 4 << 20) else {
            throw SettingsError(description: "--results.prices-file \(file) cannot be read")
        }
        do {
            return try PriceTable.parse(text, file: file)
        } catch {
            throw SettingsError(description: "--results.prices-file \(error)")
        }
    }

    public init(_ flags: ExporterFlags, environment: ProcessEnvironment) throws(SettingsError) {
        do {
            let address = try ListenAddress.parse(flags.listenAddress)
            (listenHost, listenPort) = (address.host, address.port)
        } catch {
            throw SettingsError(description: "--web.listen-address \(error)")
        }
        guard flags.telemetryPath.hasPrefix("/"), flags.telemetryPath.count > 1, !flags.telemetryPath.hasPrefix("/-/") else {
            throw SettingsError(description: "--web.telemetry-path must start with / and not be / or under /-/ (got \"\(flags.telemetryPath)\")")
        }
        telemetryPath = flags.telemetryPath
        maxConnections = try SettingRules.within(flags.maxConnections, 1...100_000, name: "--web.max-connections")
        webConfig = try flags.webConfigFile.map(Self.webConfig) ?? WebConfig()
        webConfigFile = flags.webConfigFile
        tlsContext = try webConfig.tls.map(Self.tlsContext)
        apiBaseURL = try SettingRules.apiBaseURL(flags.apiBaseURL, name: "--api-base-url")
        guard !flags.anthropicVersion.isEmpty, !flags.anthropicVersion.contains(where: \.isNewline) else {
            throw SettingsError(description: "--anthropic-version must be a non-empty header value")
        }
        anthropicVersion = flags.anthropicVersion
        authScheme = try SettingRules.authScheme(flags.authScheme, name: "--api.auth-scheme")
        pollInterval = try SettingRules.duration(flags.pollInterval, name: "--poll-interval", minimum: SettingRules.minimumPollInterval)
        connectTimeout = try SettingRules.duration(flags.connectTimeout, name: "--api.connect-timeout", minimum: .milliseconds(1))
        requestTimeout = try SettingRules.duration(flags.requestTimeout, name: "--api.request-timeout", minimum: .milliseconds(1))
        endedRetention = try SettingRules.duration(flags.endedRetention, name: "--batch-metrics.ended-retention", minimum: .zero)
        maxRetries = try SettingRules.within(flags.maxRetries, 0...20, name: "--api.max-retries")
        maxPages = try SettingRules.atLeast(flags.maxPages, 1, name: "--api.max-pages")
        pageSize = try SettingRules.within(flags.pageSize, 1...1000, name: "--api.page-size", why: "the API's limit range")
        maxResponseBytes = try SettingRules.atLeast(flags.maxResponseBytes, 1024, name: "--api.max-response-bytes")
        if let caFile = flags.caFile, access(caFile, R_OK) != 0 {
            throw SettingsError(description: "--api.ca-file \(caFile) cannot be read")
        }
        caFile = flags.caFile
        fullResyncInterval = try SettingRules.duration(flags.fullResyncInterval, name: "--api.full-resync-interval", minimum: .zero)
        maxRequestsPerMinute = try SettingRules.notNegative(flags.maxRequestsPerMinute, name: "--api.max-requests-per-minute", zeroMeans: "no limit")
        guard !flags.workspaceName.isEmpty else {
            throw SettingsError(description: "--workspace-name must not be empty")
        }
        workspaceName = flags.workspaceName
        maxBatchMetrics = try SettingRules.notNegative(flags.maxBatchMetrics, name: "--batch-metrics.max-batches")
        // The demo shows every panel, the results ones included.
        resultsEnabled = flags.resultsEnabled || flags.demo
        resultsConcurrency = try SettingRules.within(flags.resultsConcurrency, 1...64, name: "--results.concurrency")
        guard flags.resultsMaxBytes > 0 else {
            throw SettingsError(description: "--results.max-bytes must be more than 0")
        }
        resultsMaxBytes = flags.resultsMaxBytes
        let maxAttempts = try SettingRules.within(flags.resultsMaxAttempts, 1...100, name: "--results.max-attempts")
        let retryBackoff = try SettingRules.duration(flags.resultsRetryBackoff, name: "--results.retry-backoff", minimum: .milliseconds(1))
        resultsRetry = ResultsRetryPolicy(
            maxAttempts: maxAttempts, baseDelay: retryBackoff, maxDelay: max(retryBackoff, ResultsRetryPolicy().maxDelay)
        )
        if let file = flags.resultsPricesFile {
            prices = try Self.prices(file)
        } else {
            prices = nil
        }
        guard let level = Logger.Level(prometheusName: flags.logLevel) else {
            throw SettingsError(description: "--log.level must be debug, info, warn or error (got \"\(flags.logLevel)\")")
        }
        logLevel = level
        guard let format = LogFormat(rawValue: flags.logFormat) else {
            throw SettingsError(description: "--log.format must be logfmt or json (got \"\(flags.logFormat)\")")
        }
        logFormat = format
        demo = flags.demo
        configFile = flags.configFile
        if let path = flags.storagePath {
            do {
                try StateFileIO.prepareDirectory(path)
            } catch {
                throw SettingsError(description: error.description)
            }
        }
        storagePath = flags.storagePath
        shard = try Self.shard(flags, environment: environment)
        if let configFile = flags.configFile {
            // The file names each workspace and its key; a flag for one of them would be ignored.
            for (given, flag) in [(flags.demo, "--demo"), (flags.apiKeyFile != nil, "--api-key-file"), (flags.workspaceName != "default", "--workspace-name")]
            where given {
                throw SettingsError(description: "\(flag) cannot be combined with --config.file \(configFile): the file names each workspace and its key")
            }
            apiKey = nil
        } else {
            guard shard.count == 1 else {
                throw SettingsError(description: "--shard.count \(shard.count) needs --config.file: shards split the workspaces of one configuration file")
            }
            if flags.demo {
                apiKey = nil
            } else if let file = flags.apiKeyFile {
                // Read once here so a missing or empty file stops the start with one line.
                do {
                    _ = try APIKeySource.readKey(file)
                } catch {
                    throw SettingsError(description: "--api-key-file \(error)")
                }
                apiKeyFile = file
                apiKey = nil
            } else {
                apiKey = try Self.apiKey(environment: environment)
            }
        }
    }

    /// `--shard.index`/`--shard.count`, or the index from the pod name with `--shard.from-pod-name`.
    static func shard(_ flags: ExporterFlags, environment: ProcessEnvironment) throws(SettingsError) -> ShardSelection {
        var index = flags.shardIndex ?? 0
        if flags.shardFromPodName {
            guard flags.shardIndex == nil else {
                throw SettingsError(description: "--shard.index and --shard.from-pod-name cannot be combined: give one")
            }
            let podName = environment.lookup("POD_NAME").flatMap { $0.isEmpty ? nil : $0 }
            guard let name = podName ?? environment.hostname() else {
                throw SettingsError(description: "--shard.from-pod-name: POD_NAME is not set and the host name cannot be read")
            }
            guard let ordinal = ShardSelection.ordinal(fromPodName: name) else {
                throw SettingsError(
                    description:
                        "--shard.from-pod-name: \(podName == nil ? "host name" : "POD_NAME") \"\(name)\" does not end in -<ordinal> as a StatefulSet pod's does"
                )
            }
            index = ordinal
        }
        do {
            return try ShardSelection(index: index, count: flags.shardCount)
        } catch {
            let source = flags.shardFromPodName ? " (the ordinal from --shard.from-pod-name)" : ""
            throw SettingsError(description: error.description + source)
        }
    }

    static func apiKey(environment: ProcessEnvironment) throws(SettingsError) -> APIKey {
        if let key = environment.apiKey?.trimmingWhitespace, !key.isEmpty {
            return APIKey(key)
        }
        throw SettingsError(
            description: "no API key: set ANTHROPIC_API_KEY or pass --api-key-file PATH (or run with --demo to watch a simulated workspace)"
        )
    }

    static func webConfig(_ path: String) throws(SettingsError) -> WebConfig {
        guard let text = readSmallFile(path, limit: 1 << 20) else {
            throw SettingsError(description: "--web.config.file \(path) cannot be read")
        }
        let directory = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
        do {
            return try WebConfig.parse(text, file: path, baseDirectory: directory.isEmpty ? "/" : directory)
        } catch {
            throw SettingsError(description: error.description)
        }
    }

    static func tlsContext(_ tls: WebConfig.TLS) throws(SettingsError) -> NIOSSLContext {
        do {
            return try ListenerTLS.makeContext(
                certFile: tls.certFile,
                keyFile: tls.keyFile,
                minVersion: tls.minVersion,
                clientCAFile: tls.clientAuthType == "RequireAndVerifyClientCert" ? tls.clientCAFile : nil
            )
        } catch {
            throw SettingsError(description: error.description)
        }
    }

    static func readSmallFile(_ path: String, limit: Int = 65_536) -> String? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while bytes.count < limit {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 { return nil }
            if count == 0 { break }
            bytes.append(contentsOf: chunk[0..<count])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
