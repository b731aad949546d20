import Foundation
import Testing

/// No workspace waits for another: transfers run on libcurl's multi interface, not on borrowed
/// threads, so hung APIs far outnumbering the cores leave a healthy workspace on schedule.
@Suite("Hung workspaces", .serialized)
struct HungWorkspacesTests {
    static let hungWorkspaces = 20

    static func value(_ scrape: Scrape, _ family: String, workspace: String, _ extra: String = "") -> Double? {
        scrape[#"\#(family){workspace="\#(workspace)"\#(extra)}"#]
    }

    static func polls(_ scrape: Scrape, workspace: String) -> Double {
        value(scrape, "anthropic_batches_exporter_poll_duration_seconds_count", workspace: workspace) ?? 0
    }

    @Test("Twenty workspaces whose API hangs and one healthy: the healthy one follows a change within two polls")
    func healthyFollowsWithinTwoPolls() async throws {
        let healthy = try await SimulatorProcess(batches: 30, active: 3)
        // Every request to this one is accepted and never answered (until the 60 s timeout).
        let hung = try await SimulatorProcess(batches: 10, active: 1)
        try hung.enqueueFault("kind=hang&count=100000")
        let directory = try MultiWorkspaceTests.ConfigDirectory()
        var config = "workspaces:\n  - name: healthy\n    api_key_env: HEALTHY_KEY\n    api_base_url: \(healthy.baseURL)\n"
        for index in 0..<Self.hungWorkspaces {
            config += "  - name: hung-\(index)\n    api_key_env: HUNG_KEY\n    api_base_url: \(hung.baseURL)\n"
        }
        let exporter = try await ExporterProcess(
            arguments: [
                "--config.file", try directory.write("exporter.yml", config), "--poll-interval", "500ms",
                "--api.request-timeout", "60s", "--api.max-requests-per-minute", "0", "--log.level", "debug",
            ],
            environment: ["HEALTHY_KEY": healthy.apiKey, "HUNG_KEY": hung.apiKey]
        )
        defer { exporter.terminate(); healthy.terminate(); hung.terminate() }

        // Every hung workspace has a request in flight before the change below.
        try await eventually(timeout: .seconds(60), "all hung workspaces to have requests in flight") {
            try hung.requestLog().filter { ($0["path"] as? String)?.hasPrefix("/v1/messages/batches") == true }.count >= Self.hungWorkspaces
        }
        try await eventually("the healthy workspace's first listing") {
            Self.value(try exporter.scrape(), "anthropic_message_batches", workspace: "healthy", #",processing_status="in_progress""#) == 3
        }
        let before = try exporter.scrape()
        #expect(Self.polls(before, workspace: "hung-0") == 0, "no hung poll has finished: they are all still waiting")

        // The change, then the first scrape that shows two more finished polls must show it.
        let pollsAtChange = Self.polls(before, workspace: "healthy")
        try healthy.control("POST", "/_sim/batches?count=1&requests=5")
        var afterTwoPolls: Scrape?
        try await eventually(timeout: .seconds(60), every: .milliseconds(20), "two more polls of the healthy workspace") {
            let scrape = try exporter.scrape()
            guard Self.polls(scrape, workspace: "healthy") >= pollsAtChange + 2 else { return false }
            afterTwoPolls = scrape
            return true
        }
        let scrape = try #require(afterTwoPolls)
        #expect(
            Self.value(scrape, "anthropic_message_batches", workspace: "healthy", #",processing_status="in_progress""#) == 4,
            "the new batch is served within two polls of the change"
        )
        #expect(Self.value(scrape, "anthropic_batches_exporter_poll_success", workspace: "healthy") == 1)
        // And the hung ones are still hung, not failed over early or starved into errors.
        #expect(Self.polls(scrape, workspace: "hung-\(Self.hungWorkspaces - 1)") == 0)
    }
}
