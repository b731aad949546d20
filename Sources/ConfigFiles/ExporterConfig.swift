import Yams

/// A value from the file with the line it came from, so a later check (a duration that does
/// not parse, a key file that does not exist) can still say where.
public struct Located<Value: Sendable & Equatable>: Sendable, Equatable {
    public var value: Value
    public var line: Int?

    public init(_ value: Value, line: Int?) {
        self.value = value
        self.line = line
    }
}

/// `--config.file`: the workspaces one exporter watches.
///
/// ```yaml
/// workspaces:
///   - name: prod                      # the `workspace` label
///     api_key_file: /run/secrets/prod # or api_key_env: PROD_ANTHROPIC_API_KEY
///     workspace_id: wrkspc_01...      # optional: sent as anthropic-workspace-id
///     poll_interval: 60s              # optional overrides of the flags
///     max_requests_per_minute: 20
///     full_resync_interval: 15m
///     api_base_url: https://api.anthropic.com
///     auth_scheme: x-api-key
///     batch_metrics:
///       max_batches: 1000
///       ended_retention: 24h
///     results: true                   # optional: download and count results files
/// ```
public struct ExporterConfig: Sendable, Equatable {
    public struct Workspace: Sendable, Equatable {
        public enum KeySource: Sendable, Equatable {
            case file(String)
            case environment(String)
        }

        public var name: String
        public var line: Int?
        public var keySource: Located<KeySource>
        public var workspaceID: String?
        public var pollInterval: Located<String>?
        public var maxRequestsPerMinute: Located<Int>?
        public var fullResyncInterval: Located<String>?
        public var apiBaseURL: Located<String>?
        public var authScheme: Located<String>?
        public var maxBatches: Located<Int>?
        public var endedRetention: Located<String>?
        /// Download and count results files (`--results.enabled` for this workspace).
        public var results: Bool?
    }

    public var workspaces: [Workspace]

    public static func parse(_ text: String, file: String) throws(ConfigError) -> ExporterConfig {
        let reader = YAMLReader(file: file)
        let root = try reader.document(text)
        let top = try reader.mapping(root, "config", allowed: ["workspaces"])
        guard let list = top["workspaces"] else { throw reader.error(root, "workspaces is required") }
        guard case .sequence(let entries) = list, !entries.isEmpty else {
            throw reader.error(list, "workspaces must be a non-empty list")
        }
        var workspaces: [Workspace] = []
        var names: Set<String> = []
        for entry in entries {
            let fields = try reader.mapping(
                entry, "workspace",
                allowed: [
                    "name", "api_key_file", "api_key_env", "workspace_id", "poll_interval", "max_requests_per_minute",
                    "full_resync_interval", "api_base_url", "auth_scheme", "batch_metrics", "results",
                ]
            )
            let name = try reader.requiredString(fields["name"], "workspace name", in: entry)
            guard names.insert(name).inserted else { throw reader.error(fields["name"], "workspace \"\(name)\" is listed twice") }
            let what = "workspace \"\(name)\""
            let keyFile = try reader.string(fields["api_key_file"], "\(what): api_key_file")
            let keyEnv = try reader.string(fields["api_key_env"], "\(what): api_key_env")
            let keySource: Located<Workspace.KeySource>
            switch (keyFile, keyEnv) {
            case (let path?, nil): keySource = Located(.file(path), line: fields["api_key_file"]?.mark?.line)
            case (nil, let variable?): keySource = Located(.environment(variable), line: fields["api_key_env"]?.mark?.line)
            case (.some, .some): throw reader.error(fields["api_key_env"], "\(what): give api_key_file or api_key_env, not both")
            case (nil, nil): throw reader.error(entry, "\(what): api_key_file or api_key_env is required")
            }
            func located(_ key: String) throws(ConfigError) -> Located<String>? {
                try reader.string(fields[key], "\(what): \(key)").map { Located($0, line: fields[key]?.mark?.line) }
            }
            func locatedInteger(_ node: Node?, _ key: String) throws(ConfigError) -> Located<Int>? {
                try reader.integer(node, "\(what): \(key)").map { Located($0, line: node?.mark?.line) }
            }
            var maxBatches: Located<Int>?
            var endedRetention: Located<String>?
            if let batchMetrics = fields["batch_metrics"] {
                let nested = try reader.mapping(batchMetrics, "\(what): batch_metrics", allowed: ["max_batches", "ended_retention"])
                maxBatches = try locatedInteger(nested["max_batches"], "batch_metrics.max_batches")
                endedRetention = try reader.string(nested["ended_retention"], "\(what): batch_metrics.ended_retention")
                    .map { Located($0, line: nested["ended_retention"]?.mark?.line) }
            }
            workspaces.append(
                Workspace(
                    name: name,
                    line: entry.mark?.line,
                    keySource: keySource,
                    workspaceID: try reader.string(fields["workspace_id"], "\(what): workspace_id"),
                    pollInterval: try located("poll_interval"),
                    maxRequestsPerMinute: try locatedInteger(fields["max_requests_per_minute"], "max_requests_per_minute"),
                    fullResyncInterval: try located("full_resync_interval"),
                    apiBaseURL: try located("api_base_url"),
                    authScheme: try located("auth_scheme"),
                    maxBatches: maxBatches,
                    endedRetention: endedRetention,
                    results: try reader.bool(fields["results"], "\(what): results")
                )
            )
        }
        return ExporterConfig(workspaces: workspaces)
    }
}
