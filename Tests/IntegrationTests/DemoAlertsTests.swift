import Foundation
import Testing

/// `--demo` against a real Prometheus loaded with the shipped rules (deploy/prometheus/alerts.yml,
/// read as shipped: whatever their expressions and thresholds are today), scraping every second
/// and evaluating every second: each alert the demo exists to show goes pending.
///
/// Pending is the claim, not firing: firing only adds each rule's `for`, which would make this
/// test wait up to the longest `for` (15 minutes). The rules run unmodified. The demo runs at
/// its normal speed (60x): its scripted batches end in its first real minutes (see
/// `SimulatorConfiguration.demoScenario`), so no speed-up is needed for pending.
@Suite("--demo shows every batch alert in a real Prometheus", .serialized)
struct DemoAlertsTests {
    /// The alerts the demo is meant to show, one situation each.
    static let demoAlerts = [
        "AnthropicBatchRequestsExpired",
        "AnthropicBatchErroredRatioHigh",
        "AnthropicBatchNearExpiry",
        "AnthropicBatchStuckCanceling",
    ]

    /// The alert names of the shipped rules file.
    static func shippedAlertNames() throws -> Set<String> {
        let url = Binaries.repositoryRoot.appendingPathComponent("deploy/prometheus/alerts.yml")
        let text = try String(contentsOf: url, encoding: .utf8)
        return Set(
            text.split(separator: "\n").compactMap { line in
                line.firstMatch(of: /^\s*-?\s*alert:\s*"?([A-Za-z0-9_]+)"?\s*$/).map { String($0.1) }
            })
    }

    @Test("within minutes of --demo every batch alert the demo is meant to show goes pending in Prometheus")
    func everyDemoAlertGoesPending() async throws {
        try PrometheusServer.requireBinary()
        let shipped = try Self.shippedAlertNames()
        for name in Self.demoAlerts {
            #expect(shipped.contains(name), "\(name) is not in deploy/prometheus/alerts.yml (has \(shipped.sorted()))")
        }

        let exporter = try await ExporterProcess(arguments: ["--demo", "--poll-interval", "1s"], environment: [:])
        defer { exporter.terminate() }
        let prometheus = try await PrometheusServer(scrapingPort: exporter.port)
        defer { prometheus.terminate() }
        try await eventually(timeout: .seconds(60), every: .milliseconds(250), "Prometheus to scrape the exporter") {
            try prometheus.query(#"up{job="anthropic-batches-exporter"} == 1"#).count == 1
        }

        // Each alert must be seen pending or firing at least once; the first ending the demo
        // scripts comes 1.5 real minutes in, so 6 minutes is a generous bound.
        var seen: [String: [String: String]] = [:]
        try await eventually(timeout: .seconds(360), every: .milliseconds(500), "every demo alert to go pending") {
            let alerts = try prometheus.get("/api/v1/alerts")
            let list = (alerts["data"] as? [String: Any])?["alerts"] as? [[String: Any]] ?? []
            for alert in list where ["pending", "firing"].contains(alert["state"] as? String ?? "") {
                let labels = alert["labels"] as? [String: String] ?? [:]
                if let name = labels["alertname"], Self.demoAlerts.contains(name), seen[name] == nil {
                    seen[name] = labels
                }
            }
            return Set(seen.keys) == Set(Self.demoAlerts)
        }

        for (name, labels) in seen {
            #expect(labels["workspace"] == "default", "\(name): \(labels)")
        }
        // The per-batch alerts name a batch.
        for name in ["AnthropicBatchNearExpiry", "AnthropicBatchStuckCanceling"] {
            #expect(seen[name]?["batch_id"]?.hasPrefix("msgbatch_") == true, "\(name): \(seen[name] ?? [:])")
        }

        // The demo's scripted lingering cancel is what the stuck-canceling alert names.
        let scrape = try exporter.scrape()
        let canceling = try #require(seen["AnthropicBatchStuckCanceling"]?["batch_id"])
        #expect(LifecycleTests.info(scrape, canceling) == "canceling")

        // Every rule evaluates without error against the demo's series.
        let rules = try prometheus.get("/api/v1/rules")
        let groups = (rules["data"] as? [String: Any])?["groups"] as? [[String: Any]] ?? []
        for rule in groups.flatMap({ $0["rules"] as? [[String: Any]] ?? [] }) {
            #expect(rule["health"] as? String != "err", "rule \(rule["name"] ?? "?") fails: \(rule["lastError"] ?? "")")
        }
    }
}
