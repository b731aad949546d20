import BatchesAPI
import BatchesExporter
import ConfigFiles

/// Turns the flags, or `--config.file` with the flags as defaults, into one ``WorkspaceSettings``
/// per workspace, keys read and every value checked. Run at start-up and on every reload.
struct WorkspaceConfigLoader: Sendable {
    let defaults: ExporterSettings
    let environment: ProcessEnvironment

    func load() throws(SettingsError) -> [WorkspaceSettings] {
        guard let path = defaults.configFile else {
            guard let key = defaults.apiKey else { throw SettingsError(description: "no API key") }
            return [workspace(name: defaults.workspaceName, key: key)]
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
        return try config.workspaces.map { entry throws(SettingsError) in try workspace(entry, file: path) }
    }

    private func workspace(_ entry: ExporterConfig.Workspace, file: String) throws(SettingsError) -> WorkspaceSettings {
        func fail(_ line: Int?, _ problem: String) -> SettingsError {
            SettingsError(description: ConfigError(file: file, line: line, problem: "workspace \"\(entry.name)\": \(problem)").description)
        }
        func duration(_ value: Located<String>?, _ key: String, minimum: Duration, default fallback: Duration) throws(SettingsError) -> Duration {
            guard let value else { return fallback }
            do {
                let parsed = try GoDuration.parse(value.value)
                guard parsed >= minimum else { throw fail(value.line, "\(key) must be at least \(GoDuration.format(minimum))") }
                return parsed
            } catch let error as SettingsError {
                throw error
            } catch {
                throw fail(value.line, "\(key): \(error)")
            }
        }
        let key: String
        switch entry.keySource.value {
        case .file(let path):
            guard let contents = ExporterSettings.readSmallFile(path) else {
                throw fail(entry.keySource.line, "api_key_file \(path) cannot be read")
            }
            key = contents.trimmingWhitespace
            guard !key.isEmpty, !key.contains(where: \.isNewline) else {
                throw fail(entry.keySource.line, "api_key_file \(path) must hold exactly one key")
            }
        case .environment(let variable):
            guard let value = environment.lookup(variable)?.trimmingWhitespace, !value.isEmpty else {
                throw fail(entry.keySource.line, "api_key_env \(variable) is not set")
            }
            key = value
        }
        var scheme = defaults.authScheme
        if let text = entry.authScheme {
            guard let parsed = AuthScheme(rawValue: text.value) else { throw fail(text.line, "auth_scheme must be x-api-key or bearer") }
            scheme = parsed
        }
        if let url = entry.apiBaseURL, !(url.value.hasPrefix("https://") || url.value.hasPrefix("http://")) {
            throw fail(url.line, "api_base_url must be an http:// or https:// URL")
        }
        if let budget = entry.maxRequestsPerMinute, budget.value < 0 { throw fail(budget.line, "max_requests_per_minute must be 0 or more") }
        if let maxBatches = entry.maxBatches, maxBatches.value < 0 { throw fail(maxBatches.line, "batch_metrics.max_batches must be 0 or more") }
        var settings = workspace(name: entry.name, key: APIKey(key))
        settings.client.authScheme = scheme
        settings.client.workspaceID = entry.workspaceID
        settings.client.baseURL = entry.apiBaseURL?.value ?? defaults.apiBaseURL
        settings.poller.pollInterval = try duration(entry.pollInterval, "poll_interval", minimum: .milliseconds(100), default: defaults.pollInterval)
        settings.poller.fullResyncInterval = try duration(
            entry.fullResyncInterval, "full_resync_interval", minimum: .zero, default: defaults.fullResyncInterval
        )
        settings.poller.endedRetention = try duration(
            entry.endedRetention, "batch_metrics.ended_retention", minimum: .zero, default: defaults.endedRetention
        )
        settings.poller.maxRequestsPerMinute = entry.maxRequestsPerMinute?.value ?? defaults.maxRequestsPerMinute
        settings.poller.maxBatchMetrics = entry.maxBatches?.value ?? defaults.maxBatchMetrics
        return settings
    }

    /// One workspace with every value from the flags.
    func workspace(name: String, key: APIKey) -> WorkspaceSettings {
        WorkspaceSettings(
            poller: PollerConfiguration(
                workspace: name,
                pollInterval: defaults.pollInterval,
                maxBatchMetrics: defaults.maxBatchMetrics,
                endedRetention: defaults.endedRetention,
                fullResyncInterval: defaults.fullResyncInterval,
                maxRequestsPerMinute: defaults.maxRequestsPerMinute
            ),
            client: BatchesClient.Configuration(
                baseURL: defaults.apiBaseURL,
                apiKey: key,
                authScheme: defaults.authScheme,
                anthropicVersion: defaults.anthropicVersion,
                pageLimit: defaults.pageSize,
                maxPages: defaults.maxPages,
                retryPolicy: RetryPolicy(maxRetries: defaults.maxRetries)
            )
        )
    }
}
