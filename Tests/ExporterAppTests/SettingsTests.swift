import ArgumentParser
import BatchesAPI
import BatchesExporter
import Foundation
import Testing

@testable import ExporterApp

/// An environment with a key and nothing else, so a test depends on no variable of the machine.
let testEnvironment = ProcessEnvironment(
    lookup: { ["ANTHROPIC_API_KEY": "sk-ant-test", "FILE_KEY": "sk-ant-test"][$0] },
    hostname: { "test-host" }
)

func settings(_ arguments: [String]) throws -> ExporterSettings {
    try ExporterSettings(ExporterFlags.parse(arguments), environment: testEnvironment)
}

/// The problem the flags give, or `nil` when they are accepted.
func flagProblem(_ arguments: [String]) throws -> String? {
    do {
        _ = try settings(arguments)
        return nil
    } catch let error as SettingsError {
        return error.description
    }
}

/// A `--config.file` with one workspace, its key from `FILE_KEY`, and `fields` added to it.
func configFile(_ fields: [String]) throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("exporter-app-\(UUID().uuidString).yml").path
    let entry = (["name: ws", "api_key_env: FILE_KEY"] + fields).map { "    \($0)" }.joined(separator: "\n")
    try "workspaces:\n  - \(entry.dropFirst(4))\n".write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

/// The problem loading a config file with `fields` gives, or `nil` when it loads.
func fileProblem(_ fields: [String]) throws -> String? {
    let path = try configFile(fields)
    defer { try? FileManager.default.removeItem(atPath: path) }
    let loader = WorkspaceConfigLoader(defaults: try settings(["--config.file", path]), environment: testEnvironment)
    do {
        _ = try loader.load()
        return nil
    } catch {
        return error.description
    }
}

@Suite struct SettingRulesTests {
    /// The two URL checks disagreed before they were one: the flag refused `http://x` (it wanted
    /// more than 8 characters) and the file accepted `https://` (it checked only the prefix).
    @Test(
        "The flag and the config file accept and refuse the same API base URLs",
        arguments: [
            ("https://api.anthropic.com", true), ("http://127.0.0.1:8080/v1", true), ("http://x", true),
            ("https://", false), ("http://", false), ("https:///v1", false), ("ftp://example.com", false),
            ("api.anthropic.com", false), ("https://api .anthropic.com", false), ("", false),
        ]
    )
    func apiBaseURL(url: String, valid: Bool) throws {
        let flag = try flagProblem(["--api-base-url", url])
        let file = try fileProblem(["api_base_url: \"\(url)\""])
        #expect((flag == nil) == valid, "flag: \(flag ?? "accepted")")
        #expect((file == nil) == valid, "file: \(file ?? "accepted")")
        if !valid {
            #expect(flag?.hasPrefix("--api-base-url must be an http:// or https:// URL") == true)
            #expect(file?.contains("api_base_url must be an http:// or https:// URL") == true)
        }
    }

    @Test(
        "A value the flag refuses, the config file refuses with the same words, at its line",
        arguments: [
            (["--poll-interval", "50ms"], "poll_interval: 50ms", "must be at least 100ms (got 50ms)"),
            (["--poll-interval", "soon"], "poll_interval: soon", "invalid duration"),
            (["--api.full-resync-interval=-1s"], "full_resync_interval: -1s", "-1s"),
            (["--batch-metrics.ended-retention", "1x"], "batch_metrics: {ended_retention: 1x}", "invalid duration \"1x\""),
            (["--api.auth-scheme", "basic"], "auth_scheme: basic", "must be x-api-key or bearer (got \"basic\")"),
            (["--api.max-requests-per-minute=-1"], "max_requests_per_minute: -1", "must be 0 (no limit) or more (got -1)"),
            (["--batch-metrics.max-batches=-2"], "batch_metrics: {max_batches: -2}", "must be 0 or more (got -2)"),
        ]
    )
    func sameRule(flags: [String], field: String, problem: String) throws {
        let flag = try #require(try flagProblem(flags))
        let file = try #require(try fileProblem([field]))
        #expect(flag.contains(problem), "flag: \(flag)")
        #expect(file.contains(problem), "file: \(file)")
        // The file's problem names the file, the line and the workspace, then the setting.
        #expect(file.contains(":3:") || file.contains(":4:"), "file: \(file)")
        #expect(file.contains("workspace \"ws\""), "file: \(file)")
        // The part after the setting's name is the same sentence in both.
        let flagRest = flag.drop { $0 != " " && $0 != ":" }
        #expect(file.hasSuffix(flagRest), "flag: \(flag); file: \(file)")
    }

    @Test(
        "A bad flag value stops the start with one line that names the flag and what it got",
        arguments: [
            (["--web.listen-address", "9869"], "--web.listen-address must be host:port"),
            (["--web.listen-address", "[::1:9869"], "--web.listen-address must be host:port"),
            (["--web.telemetry-path", "/-/metrics"], "--web.telemetry-path must start with /"),
            (["--web.max-connections", "0"], "--web.max-connections must be between 1 and 100000 (got 0)"),
            (["--api.page-size", "1001"], "--api.page-size must be between 1 and 1000"),
            (["--api.max-retries", "21"], "--api.max-retries must be between 0 and 20 (got 21)"),
            (["--api.max-response-bytes", "1023"], "--api.max-response-bytes must be at least 1024 (got 1023)"),
            (["--log.level", "verbose"], "--log.level must be debug, info, warn or error (got \"verbose\")"),
            (["--log.format", "xml"], "--log.format must be logfmt or json (got \"xml\")"),
            (["--results.concurrency", "65"], "--results.concurrency must be between 1 and 64 (got 65)"),
            (["--shard.count", "2"], "--shard.count 2 needs --config.file"),
            (["--config.file", "/x.yml", "--demo"], "--demo cannot be combined with --config.file"),
        ]
    )
    func badFlag(arguments: [String], expected: String) throws {
        let problem = try #require(try flagProblem(arguments))
        #expect(problem.hasPrefix(expected), "\(problem)")
        #expect(!problem.contains("\n"))
    }

    @Test("Without a key in the environment or a key file, the start says how to give one")
    func noKey() throws {
        let empty = ProcessEnvironment(lookup: { _ in nil }, hostname: { nil })
        #expect(throws: SettingsError.self) { try ExporterSettings(ExporterFlags.parse([]), environment: empty) }
        #expect(try ExporterSettings(ExporterFlags.parse(["--demo"]), environment: empty).apiKey == nil)
    }

    @Test("--web.listen-address: an empty host is every IPv4 interface; brackets hold an IPv6 host")
    func listenAddress() throws {
        let all = try settings(["--web.listen-address", ":0"])
        #expect(all.listenHost == "0.0.0.0" && all.listenPort == 0)
        let v6 = try settings(["--web.listen-address", "[::1]:9000"])
        #expect(v6.listenHost == "::1" && v6.listenPort == 9000)
    }
}

@Suite struct WorkspaceDefaultsTests {
    /// Each setting's default lives with its flag; a config file entry that overrides nothing
    /// must poll exactly as the flags describe, whatever they say.
    @Test("A config file entry without overrides takes every value from the flags")
    func entryInheritsFlags() throws {
        let flags = [
            "--poll-interval", "7s", "--api.full-resync-interval", "3m", "--api.max-requests-per-minute", "5",
            "--batch-metrics.max-batches", "9", "--batch-metrics.ended-retention", "2h", "--api.page-size", "50",
            "--api.max-pages", "12", "--api.max-retries", "2", "--api.auth-scheme", "bearer",
            "--api-base-url", "http://127.0.0.1:1", "--anthropic-version", "2099-01-01", "--results.enabled",
        ]
        let single = WorkspaceConfigLoader(defaults: try settings(flags + ["--workspace-name", "ws"]), environment: testEnvironment)
        let fromFlags = try #require(try single.load().workspaces.first)

        let path = try configFile([])
        defer { try? FileManager.default.removeItem(atPath: path) }
        let multi = WorkspaceConfigLoader(defaults: try settings(flags + ["--config.file", path]), environment: testEnvironment)
        let loaded = try multi.load()
        #expect(loaded.configured == 1)
        let fromFile = try #require(loaded.workspaces.first)

        // Both keys are the same value from the environment, so the two are equal only if every
        // other value is.
        #expect(fromFile == fromFlags)
        // And the flags were not simply ignored by both.
        #expect(fromFile.poller.pollInterval == .seconds(7))
        #expect(fromFile.client.authScheme == .bearer)
        #expect(fromFile.client.baseURL == "http://127.0.0.1:1")
    }

    @Test("A config file entry's overrides replace the flags' values for that workspace only")
    func entryOverrides() throws {
        let path = try configFile(["poll_interval: 2s", "auth_scheme: bearer", "max_requests_per_minute: 0", "batch_metrics: {max_batches: 3}"])
        defer { try? FileManager.default.removeItem(atPath: path) }
        let loader = WorkspaceConfigLoader(defaults: try settings(["--config.file", path, "--poll-interval", "9s"]), environment: testEnvironment)
        let workspace = try #require(try loader.load().workspaces.first)
        #expect(workspace.poller.pollInterval == .seconds(2))
        #expect(workspace.client.authScheme == .bearer)
        #expect(workspace.poller.maxRequestsPerMinute == 0)
        #expect(workspace.poller.maxBatchMetrics == 3)
    }
}
