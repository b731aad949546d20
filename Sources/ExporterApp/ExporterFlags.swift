import ArgumentParser

/// Every flag of the exporter, with its help text and its default: the one place a setting is
/// declared. Raw values only; ``ExporterSettings`` checks them (and `--config.file` entries go
/// through the same ``SettingRules``).
public struct ExporterFlags: ParsableArguments, Sendable {
    public init() {}

    @Option(name: .customLong("web.listen-address"), help: "Address to serve metrics on, host:port; an empty host means all IPv4 interfaces.")
    public var listenAddress = ":9869"

    @Option(name: .customLong("web.telemetry-path"), help: "Path under which to expose metrics.")
    public var telemetryPath = "/metrics"

    @Option(
        name: .customLong("config.file"),
        help:
            "YAML file listing the workspaces to poll, each with its key source and optional overrides; re-read on SIGHUP and POST /-/reload. Without it, the flags describe one workspace."
    )
    public var configFile: String?

    @Option(
        name: .customLong("shard.index"),
        help:
            "With --shard.count M: this exporter polls only the workspaces of --config.file whose name hashes to shard N (FNV-1a 64 of the name, mod M), 0 <= N < M."
    )
    public var shardIndex: Int?

    @Option(
        name: .customLong("shard.count"),
        help: "Number of exporters sharing one --config.file, each started with its own --shard.index (or --shard.from-pod-name).")
    public var shardCount = 1

    @Flag(
        name: .customLong("shard.from-pod-name"),
        help: "Take --shard.index from the ordinal N at the end of the pod name <name>-N (a StatefulSet's pods): $POD_NAME if set, else the host name.")
    public var shardFromPodName = false

    @Option(
        name: .customLong("web.config.file"),
        help:
            "Path to a web configuration file (exporter-toolkit format) enabling TLS and/or basic auth; certificates and users reload when their files change.")
    public var webConfigFile: String?

    @Option(name: .customLong("web.max-connections"), help: "Concurrent HTTP connections served; further ones are closed at once.")
    public var maxConnections = 512

    @Option(name: .customLong("api-base-url"), help: "Base URL of the Anthropic API.")
    public var apiBaseURL = "https://api.anthropic.com"

    @Option(name: .customLong("anthropic-version"), help: "Value of the anthropic-version request header.")
    public var anthropicVersion = "2023-06-01"

    @Option(
        name: .customLong("api-key-file"),
        help:
            "Read the API key from this file (e.g. a mounted secret) instead of ANTHROPIC_API_KEY. The file is followed: a changed key is used from the next request."
    )
    public var apiKeyFile: String?

    @Option(name: .customLong("api.auth-scheme"), help: "How to send the key: x-api-key (as documented) or bearer (Authorization: Bearer).")
    public var authScheme = "x-api-key"

    @Option(name: .customLong("poll-interval"), help: "Time between polls of the API (Go duration: 500ms, 30s, 5m).")
    public var pollInterval = "60s"

    @Option(name: .customLong("api.connect-timeout"), help: "Timeout for connecting to the API.")
    public var connectTimeout = "10s"

    @Option(name: .customLong("api.request-timeout"), help: "Timeout for one whole API request, body included.")
    public var requestTimeout = "60s"

    @Option(name: .customLong("api.max-retries"), help: "Retries of one failed request (transport errors, 408, 409, 429, 5xx) before the poll fails.")
    public var maxRetries = 4

    @Option(name: .customLong("api.max-pages"), help: "A listing longer than this many pages fails as a pagination error instead of looping.")
    public var maxPages = 10_000

    @Option(
        name: .customLong("api.page-size"),
        help: "Batches per list request (the API's limit parameter, 1 to 1000); a steady poll's first request asks for fewer.")
    public var pageSize = 1000

    @Option(name: .customLong("api.max-response-bytes"), help: "Largest response body accepted; larger ones fail the poll as a decode error.")
    public var maxResponseBytes = 64 << 20

    @Option(
        name: .customLong("api.full-resync-interval"),
        help:
            "How often to read every page again, to catch deletions and archival; between resyncs polls read only the newest pages. 0 reads everything on every poll."
    )
    public var fullResyncInterval = "15m"

    @Option(
        name: .customLong("api.max-requests-per-minute"),
        help:
            "Most API requests in any minute, retries included; polls wait and resyncs pause to stay under it. The batch endpoints share one per-minute limit with your real batch work. 0 for no limit."
    )
    public var maxRequestsPerMinute = 20

    @Option(
        name: .customLong("api.ca-file"),
        help: "Extra CA bundle (PEM) to trust for the API, in addition to the system's. TLS verification cannot be turned off.")
    public var caFile: String?

    @Option(name: .customLong("workspace-name"), help: "Value of the workspace label on every series.")
    public var workspaceName = "default"

    @Option(
        name: .customLong("batch-metrics.max-batches"),
        help: "Most batches with their own series (newest active first, then most recently ended); 0 turns per-batch series off.")
    public var maxBatchMetrics = 1000

    @Option(name: .customLong("batch-metrics.ended-retention"), help: "How long an ended batch keeps its own series after ended_at.")
    public var endedRetention = "24h"

    @Option(
        name: .customLong("storage.path"),
        help:
            "Directory to keep each workspace's state in across restarts (lifecycle counters, what is known of each batch); created with mode 0700 if missing. Without it, every start begins fresh."
    )
    public var storagePath: String?

    @Flag(
        name: .customLong("results.enabled"),
        help:
            "Download the results file of every batch seen ending and count results, errors by type, tokens, stop reasons and (with --results.prices-file) estimated cost by model. Keeps no content. Per workspace in --config.file: results: true."
    )
    public var resultsEnabled = false

    @Option(name: .customLong("results.concurrency"), help: "Results downloads at once per workspace.")
    public var resultsConcurrency = 1

    @Option(name: .customLong("results.max-bytes"), help: "Results files larger than this are skipped (and counted as skipped_size).")
    public var resultsMaxBytes: UInt64 = 8 << 30

    @Option(
        name: .customLong("results.retry-backoff"),
        help:
            "Wait after a results download's first failed attempt (cut, short or inconsistent stream, 404, transfer error); doubles after each further failure, capped at 10m."
    )
    public var resultsRetryBackoff = "15s"

    @Option(
        name: .customLong("results.max-attempts"),
        help: "Attempts at most per results file; after the last failed one the batch counts as failed and nothing of it is counted.")
    public var resultsMaxAttempts = 8

    @Option(
        name: .customLong("results.prices-file"),
        help:
            "YAML price file (USD per million tokens by model id or prefix; see deploy/examples/prices.yml) for anthropic_message_batches_estimated_cost_usd_total."
    )
    public var resultsPricesFile: String?

    @Option(name: .customLong("log.level"), help: "Only log messages at or above this level: debug, info, warn, error.")
    public var logLevel = "info"

    @Option(name: .customLong("log.format"), help: "Log line format: logfmt or json.")
    public var logFormat = "logfmt"

    @Flag(
        name: .customLong("demo"),
        help: "Poll a built-in simulated workspace (served on a loopback port in this process) instead of the real API; no key needed.")
    public var demo = false
}
