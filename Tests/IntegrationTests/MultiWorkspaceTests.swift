import Foundation
import Testing

/// Several workspaces from one exporter (--config.file), and reloading it.
@Suite("Many workspaces", .serialized)
struct MultiWorkspaceTests {
    final class ConfigDirectory {
        let url: URL
        init() throws {
            url = FileManager.default.temporaryDirectory.appendingPathComponent("multi-workspace-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        }
        func write(_ name: String, _ text: String) throws -> String {
            let path = url.appendingPathComponent(name).path
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
        deinit { try? FileManager.default.removeItem(at: url) }
    }

    static func value(_ scrape: Scrape, _ family: String, workspace: String, _ extra: String = "") -> Double? {
        scrape[#"\#(family){workspace="\#(workspace)"\#(extra)}"#]
    }

    @Test("Three workspaces (healthy, rate-limited, rejected key) are each right and independent; reload adds and removes")
    func threeWorkspaces() async throws {
        let main = try await SimulatorProcess(batches: 40, active: 4)
        let limited = try await SimulatorProcess(batches: 25, active: 3)
        try limited.enqueueFault("kind=status&status=429&retry_after=0&count=100000")
        let directory = try ConfigDirectory()
        let healthyKey = try directory.write("healthy.key", main.apiKey + "\n")
        let limitedKey = try directory.write("limited.key", limited.apiKey)
        // The first two workspaces stay the same across the reload below; the third changes.
        func configuration(third: String) -> String {
            """
            workspaces:
              - name: healthy
                api_key_file: \(healthyKey)
                workspace_id: wrkspc_healthy
              - name: limited
                api_key_file: \(limitedKey)
                api_base_url: \(limited.baseURL)
                poll_interval: 200ms
            \(third)
            """
        }
        let config = try directory.write("exporter.yml", configuration(third: "  - name: rejected\n    api_key_env: REJECTED_KEY"))
        let exporter = try await ExporterProcess(
            arguments: [
                "--config.file", config, "--api-base-url", main.baseURL, "--poll-interval", "300ms",
                "--api.max-retries", "1", "--api.max-requests-per-minute", "0", "--log.level", "debug",
            ],
            environment: ["REJECTED_KEY": "sk-ant-not-the-key"]
        )
        defer { exporter.terminate(); main.terminate(); limited.terminate() }

        try await eventually("each workspace's state") {
            let scrape = try exporter.scrape()
            return Self.value(scrape, "anthropic_batches_exporter_snapshot_batches", workspace: "healthy") == 40
                && (Self.value(scrape, "anthropic_batches_exporter_poll_errors_total", workspace: "limited", #",reason="rate_limited""#) ?? 0) >= 1
                && (Self.value(scrape, "anthropic_batches_exporter_poll_errors_total", workspace: "rejected", #",reason="auth""#) ?? 0) >= 1
        }
        let scrape = try exporter.scrape()
        #expect(Self.value(scrape, "anthropic_message_batches", workspace: "healthy", #",processing_status="in_progress""#) == 4)
        #expect(Self.value(scrape, "anthropic_batches_exporter_poll_success", workspace: "healthy") == 1)
        #expect(Self.value(scrape, "anthropic_batches_exporter_poll_success", workspace: "limited") == 0)
        #expect(Self.value(scrape, "anthropic_batches_exporter_poll_success", workspace: "rejected") == 0)
        #expect(Self.value(scrape, "anthropic_batches_exporter_poll_interval_seconds", workspace: "limited") == 0.2)
        #expect(Self.value(scrape, "anthropic_batches_exporter_poll_interval_seconds", workspace: "healthy") == 0.3)
        #expect(scrape.family("anthropic_message_batches").keys.allSatisfy { $0.contains(#"workspace="healthy""#) }, "only the healthy one has data")
        #expect(scrape[#"anthropic_batches_exporter_config_last_reload_successful"#] == 1)
        // The healthy workspace's id travels as anthropic-workspace-id; the others send none.
        let headers = try main.requestLog().compactMap { $0["anthropic_workspace_id"] as? String }
        #expect(headers.contains("wrkspc_healthy"))
        #expect(try limited.requestLog().allSatisfy { $0["anthropic_workspace_id"] as? String == nil })
        // A rate-limited and a rejected workspace do not slow the healthy one down.
        let healthyPolls = try #require(Self.value(scrape, "anthropic_batches_exporter_poll_duration_seconds_count", workspace: "healthy"))
        try await eventually("the healthy workspace to keep polling") {
            (Self.value(try exporter.scrape(), "anthropic_batches_exporter_poll_duration_seconds_count", workspace: "healthy") ?? 0) >= healthyPolls + 3
        }

        // Reload: drop "rejected", add "second" (the healthy workspace again under another name).
        _ = try directory.write("exporter.yml", configuration(third: "  - name: second\n    api_key_file: \(healthyKey)"))
        let healthyBefore = try #require(Self.value(try exporter.scrape(), "anthropic_batches_exporter_last_success_timestamp_seconds", workspace: "healthy"))
        let response = try RawHTTP.request("POST", port: exporter.port, path: "/-/reload")
        #expect(response.status == 200, "\(response.text)")
        #expect(response.text.contains("added: second"))
        #expect(response.text.contains("removed: rejected"))
        #expect(response.text.contains("unchanged: healthy,limited"))
        try await eventually("the added workspace's data") {
            Self.value(try exporter.scrape(), "anthropic_batches_exporter_snapshot_batches", workspace: "second") == 40
        }
        let afterReload = try exporter.scrape()
        #expect(!afterReload.text.contains(#"workspace="rejected""#), "the removed workspace's series are gone")
        // The unchanged workspace kept its poller: its counters continued, they did not restart.
        #expect((Self.value(afterReload, "anthropic_batches_exporter_poll_duration_seconds_count", workspace: "healthy") ?? 0) > healthyPolls)
        #expect((Self.value(afterReload, "anthropic_batches_exporter_last_success_timestamp_seconds", workspace: "healthy") ?? 0) >= healthyBefore)

        // A bad reload keeps the running configuration and says why.
        _ = try directory.write("exporter.yml", "workspaces:\n  - name: broken\n    api_key_file: /nonexistent/key\n")
        exporter.process.signal(SIGHUP)
        try await eventually("the failed reload to show") {
            try exporter.scrape()[#"anthropic_batches_exporter_config_last_reload_successful"#] == 0
        }
        let afterBadReload = try exporter.scrape()
        #expect(Self.value(afterBadReload, "anthropic_batches_exporter_snapshot_batches", workspace: "second") == 40)
        #expect(exporter.process.stderr.contains("Reload failed; keeping the running configuration"))
        #expect(exporter.process.stderr.contains("/nonexistent/key"))
        #expect(!exporter.process.stderr.contains(main.apiKey) && !exporter.process.stderr.contains("sk-ant-not-the-key"))
    }

    @Test(
        "A bad config is refused at start with exit 2, the file, the line and the problem",
        arguments: [
            ("workspaces:\n  - name: a\n    api_key_env: K\n    poll_intervall: 5s\n", "exporter.yml:4: workspace: unknown key \"poll_intervall\""),
            ("workspaces:\n  - name: a\n    api_key_file: /nonexistent/key\n", "exporter.yml:3: workspace \"a\": api_key_file /nonexistent/key cannot be read"),
            ("workspaces:\n  - name: a\n    api_key_env: K\n    poll_interval: soon\n", "exporter.yml:4: workspace \"a\": poll_interval: invalid duration"),
            ("workspaces:\n  - name: a\n    api_key_env: K\n  - name: a\n    api_key_env: K\n", "exporter.yml:4: workspace \"a\" is listed twice"),
            ("workspaces:\n  - name: a\n", "exporter.yml:2: workspace \"a\": api_key_file or api_key_env is required"),
            ("workspaces: []\n", "workspaces must be a non-empty list"),
        ])
    func badConfig(text: String, message: String) async throws {
        let directory = try ConfigDirectory()
        let config = try directory.write("exporter.yml", text)
        let process = try ChildProcess(Binaries.exporter, arguments: ["--config.file", config], environment: ["K": "sk-ant-x"])
        #expect(try await process.waitForExit() == 2)
        #expect(process.stderr.split(separator: "\n").count == 1, "\(process.stderr)")
        #expect(process.stderr.contains(message), "\(process.stderr)")
    }

    @Test("POST /-/reload without --config.file says there is nothing to reload")
    func reloadWithoutConfig() async throws {
        let simulator = try await SimulatorProcess(batches: 3, active: 1)
        let exporter = try await ExporterProcess(polling: simulator)
        defer { exporter.terminate(); simulator.terminate() }
        let response = try RawHTTP.request("POST", port: exporter.port, path: "/-/reload")
        #expect(response.status == 500)
        #expect(response.text.contains("without --config.file"))
        #expect(try RawHTTP.request(port: exporter.port, path: "/-/reload").status == 405)
    }
}
