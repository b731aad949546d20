import Basics
import BatchesAPI
import BatchesExporter
import ConfigFiles

/// Turns the flags, or `--config.file` with the flags as defaults, into one ``WorkspaceSettings``
/// per workspace this process polls (its shard of the file), keys read and every value
/// checked. Run at start-up and on every reload.
public struct WorkspaceConfigLoader: Sendable {
    let defaults: ExporterSettings
    let environment: ProcessEnvironment
    /// Where the key files' re-reads report (to the log and the error counter); attached once
    /// logging and metrics are up.
    let keyEvents = KeyFileEvents()

    struct Loaded: Sendable {
        /// The workspaces of this shard.
        var workspaces: [WorkspaceSettings]
        /// How many workspaces the configuration lists, all shards together.
        var configured: Int
    }

    /// - Parameter running: the workspaces polled now. A workspace that keeps its name and key
    ///   file keeps its ``APIKeySource`` (its last good key and its error count), so a key file
    ///   that is broken at the moment of a reload does not fail the reload: the running source
    ///   goes on with the last good key. A new key file must be readable.
    func load(reusing running: [WorkspaceSettings] = []) throws(SettingsError) -> Loaded {
        guard let path = defaults.configFile else {
            let source: APIKeySource
            if let file = defaults.apiKeyFile {
                source = try keySource(file: file, workspace: defaults.workspaceName) { SettingsError(description: "--api-key-file \($0)") }
            } else if let key = defaults.apiKey {
                source = APIKeySource(key: key)
            } else {
                throw SettingsError(description: "no API key")
            }
            return Loaded(workspaces: [workspace(name: defaults.workspaceName, keySource: source)], configured: 1)
        }
        guard let text = ExporterSettings.readSmallFile(path, limit: 4 << 20) else {
            throw SettingsError(description: "--config.file \(path) cannot be read")
        }
        let config: ExporterConfig
        do {
            config = try ExporterConfig.parse(text, file: path)
        } catch {
            throw SettingsError(description: error.description)
        }
        var selected: [WorkspaceSettings] = []
        for entry in config.workspaces {
            // Every entry is checked, so all shards agree on whether a file is valid; only this
            // shard's keys are read (another shard's key file need not even be mounted here).
            let settings = try workspace(
                entry, file: path, readKey: defaults.shard.selects(entry.name),
                running: running.first { $0.name == entry.name }?.client.keySource
            )
            if let settings { selected.append(settings) }
        }
        return Loaded(workspaces: selected, configured: config.workspaces.count)
    }

    private func keySource(file: String, workspace: String, describe: (APIKeySource.ReadError) -> SettingsError) throws(SettingsError) -> APIKeySource {
        let events = keyEvents
        do {
            return try APIKeySource(file: file, observer: { event in events.report(workspace: workspace, event) })
        } catch {
            throw describe(error)
        }
    }

    /// The entry's settings; `nil` (after every check but the key's) when `readKey` is false.
    private func workspace(
        _ entry: ExporterConfig.Workspace, file: String, readKey: Bool, running: APIKeySource?
    ) throws(SettingsError) -> WorkspaceSettings? {
        func fail(_ line: Int?, _ problem: String) -> SettingsError {
            SettingsError(description: ConfigError(file: file, line: line, problem: "workspace \"\(entry.name)\": \(problem)").description)
        }
        /// A value through the rule its flag uses too, the problem placed at its line.
        func checked<Value, Result>(_ value: Located<Value>, _ rule: (Value) throws(SettingsError) -> Result) throws(SettingsError) -> Result {
            do {
                return try rule(value.value)
            } catch {
                throw fail(value.line, error.description)
            }
        }
        func duration(_ value: Located<String>?, _ key: String, minimum: Duration, default fallback: Duration) throws(SettingsError) -> Duration {
            guard let value else { return fallback }
            return try checked(value) { (text) throws(SettingsError) in try SettingRules.duration(text, name: key, minimum: minimum) }
        }
        // The key last: another shard's workspace is checked for everything else.
        func keySource() throws(SettingsError) -> APIKeySource {
            switch entry.keySource.value {
            case .file(let path):
                if let running, running.path == path { return running }
                return try self.keySource(file: path, workspace: entry.name) { error in
                    fail(entry.keySource.line, "api_key_file \(error)")
                }
            case .environment(let variable):
                guard let value = environment.lookup(variable)?.trimmingWhitespace, !value.isEmpty else {
                    throw fail(entry.keySource.line, "api_key_env \(variable) is not set")
                }
                return APIKeySource(key: APIKey(value))
            }
        }
        var scheme = defaults.authScheme
        if let text = entry.authScheme {
            scheme = try checked(text) { (text) throws(SettingsError) in try SettingRules.authScheme(text, name: "auth_scheme") }
        }
        if let url = entry.apiBaseURL {
            _ = try checked(url) { (text) throws(SettingsError) in try SettingRules.apiBaseURL(text, name: "api_base_url") }
        }
        if let budget = entry.maxRequestsPerMinute {
            _ = try checked(budget) { (value) throws(SettingsError) in
                try SettingRules.notNegative(value, name: "max_requests_per_minute", zeroMeans: "no limit")
            }
        }
        if let maxBatches = entry.maxBatches {
            _ = try checked(maxBatches) { (value) throws(SettingsError) in try SettingRules.notNegative(value, name: "batch_metrics.max_batches") }
        }
        var settings = workspace(name: entry.name, keySource: APIKeySource(key: APIKey("")))
        settings.client.authScheme = scheme
        settings.client.workspaceID = entry.workspaceID
        settings.client.baseURL = entry.apiBaseURL?.value ?? defaults.apiBaseURL
        settings.poller.pollInterval = try duration(
            entry.pollInterval, "poll_interval", minimum: SettingRules.minimumPollInterval, default: defaults.pollInterval)
        settings.poller.fullResyncInterval = try duration(
            entry.fullResyncInterval, "full_resync_interval", minimum: .zero, default: defaults.fullResyncInterval
        )
        settings.poller.endedRetention = try duration(
            entry.endedRetention, "batch_metrics.ended_retention", minimum: .zero, default: defaults.endedRetention
        )
        settings.poller.maxRequestsPerMinute = entry.maxRequestsPerMinute?.value ?? defaults.maxRequestsPerMinute
        settings.poller.maxBatchMetrics = entry.maxBatches?.value ?? defaults.maxBatchMetrics
        settings.poller.results = entry.results ?? defaults.resultsEnabled
        guard readKey else { return nil }
        settings.client.keySource = try keySource()
        return settings
    }

    /// One workspace with every value from the flags.
    func workspace(name: String, keySource: APIKeySource) -> WorkspaceSettings {
        WorkspaceSettings(
            poller: PollerConfiguration(
                workspace: name,
                pollInterval: defaults.pollInterval,
                maxBatchMetrics: defaults.maxBatchMetrics,
                endedRetention: defaults.endedRetention,
                fullResyncInterval: defaults.fullResyncInterval,
                maxRequestsPerMinute: defaults.maxRequestsPerMinute,
                results: defaults.resultsEnabled
            ),
            client: BatchesClient.Configuration(
                baseURL: defaults.apiBaseURL,
                keySource: keySource,
                authScheme: defaults.authScheme,
                anthropicVersion: defaults.anthropicVersion,
                pageLimit: defaults.pageSize,
                maxPages: defaults.maxPages,
                retryPolicy: RetryPolicy(maxRetries: defaults.maxRetries)
            )
        )
    }
}
