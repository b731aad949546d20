import Foundation
import Testing

/// Issue 12: each workspace's series are rendered and compressed on their own and served as
/// concatenated cached pieces completed per scrape (see GzipPrefix). This proves the layout with a real Prometheus server, which
/// asks for OpenMetrics with gzip: a body it cannot parse would set `up` to 0 and store nothing.
/// (promtool proves the text format: ExporterEndToEndTests and ExpositionSegmentsTests.)
@Suite("Prometheus parses the cached, per-workspace exposition", .serialized)
struct PrometheusLayoutTests {
    /// What Prometheus 2.x sends when it scrapes (scrape/scrape.go, acceptHeader).
    static let prometheusAccept =
        "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"

    /// Samples in an exposition body: every line that is not a comment, blank or `# EOF`.
    static func sampleCount(_ text: String) -> Int {
        text.split(separator: "\n").filter { !$0.hasPrefix("#") && !$0.isEmpty }.count
    }

    /// `bytes` inflated member after member with Python's zlib, failing on a truncated or
    /// corrupt member (as Go's gzip reader in Prometheus would).
    static func inflate(_ bytes: [UInt8]) throws -> String {
        let script = """
            import sys, zlib
            data = sys.stdin.buffer.read(); out = b""
            while data:
                d = zlib.decompressobj(16 + zlib.MAX_WBITS); out += d.decompress(data)
                if not d.eof: sys.exit("truncated gzip member")
                data = d.unused_data
            sys.stdout.buffer.write(out)
            """
        let result = try runTool("python3", ["-c", script], input: bytes)
        guard result.status == 0 else { throw TestFailure("inflating: \(result.output)") }
        return String(decoding: result.stdout, as: UTF8.self)
    }

    @Test(
        "Three workspaces from --config.file: Prometheus scrapes OpenMetrics + gzip assembled from cached pieces, stores every workspace, and counts every sample"
    )
    func threeWorkspacesScrapedByPrometheus() async throws {
        try PrometheusServer.requireBinary()
        let simulators = [
            try await SimulatorProcess(batches: 30, active: 3),
            try await SimulatorProcess(batches: 12, active: 2),
            try await SimulatorProcess(batches: 5, active: 1),
        ]
        defer { simulators.forEach { $0.terminate() } }
        let names = ["alpha", "beta", "gamma"]
        let directory = try MultiWorkspaceTests.ConfigDirectory()
        var config = "workspaces:\n"
        var environment: [String: String] = [:]
        for (index, simulator) in simulators.enumerated() {
            config += "  - name: \(names[index])\n    api_key_env: KEY_\(index)\n    api_base_url: \(simulator.baseURL)\n"
            environment["KEY_\(index)"] = simulator.apiKey
        }
        let exporter = try await ExporterProcess(
            arguments: [
                "--config.file", try directory.write("exporter.yml", config), "--poll-interval", "1s",
                "--api.max-requests-per-minute", "0",
            ],
            environment: environment
        )
        defer { exporter.terminate() }
        try await eventually(timeout: .seconds(60), "every workspace's first listing") {
            let scrape = try exporter.scrape()
            return names.allSatisfy { scrape[#"anthropic_batches_exporter_poll_success{workspace="\#($0)"}"#] == 1 }
        }

        // What Prometheus gets for its headers: OpenMetrics, gzip.
        let headers = [("Accept", Self.prometheusAccept), ("Accept-Encoding", "gzip")]
        let compressed = try RawHTTP.request(port: exporter.port, path: "/metrics", headers: headers)
        #expect(compressed.status == 200)
        #expect(compressed.header("Content-Type")?.hasPrefix("application/openmetrics-text") == true, "\(compressed.header("Content-Type") ?? "none")")
        #expect(compressed.header("Content-Encoding") == "gzip")
        // The cached pieces and the per-scrape completion make one valid stream, ending at # EOF.
        let inflated = try Self.inflate(compressed.body)
        #expect(inflated.hasSuffix("# EOF\n"))
        for name in names { #expect(inflated.contains(#"workspace="\#(name)""#), "workspace \(name) in the gzip body") }

        let prometheus = try await PrometheusServer(scrapingPort: exporter.port)
        defer { prometheus.terminate() }
        let job = #"job="anthropic-batches-exporter""#
        try await eventually(timeout: .seconds(60), every: .milliseconds(250), "Prometheus to scrape the exporter successfully") {
            try prometheus.query("up{\(job)} == 1").count == 1
        }
        // Every workspace's series reached the TSDB, not just the first segment's.
        for name in names {
            let series = try prometheus.query(#"anthropic_batches_exporter_poll_success{\#(job),workspace="\#(name)"} == 1"#)
            #expect(series.count == 1, "workspace \(name) in Prometheus: \(series)")
        }
        let families = try prometheus.query(#"count by (workspace) ({\#(job),workspace=~"alpha|beta|gamma"})"#)
        #expect(families.count == names.count, "series of every workspace: \(families)")

        // Prometheus parsed as many samples as the body holds: none dropped at a member boundary.
        // The body can change between two scrapes (self-metrics move), so both are read until
        // they agree on one scrape's count.
        var lastSeen = ""
        do {
            try await eventually(timeout: .seconds(60), every: .milliseconds(200), "Prometheus' sample count to equal the body's") {
                let plain = try RawHTTP.request(port: exporter.port, path: "/metrics", headers: [("Accept", Self.prometheusAccept)])
                let expected = Self.sampleCount(plain.text)
                let scraped = try prometheus.query("scrape_samples_scraped{\(job)}")
                let value = (scraped.first?["value"] as? [Any])?.last as? String
                lastSeen = "body \(expected), Prometheus \(value ?? "none")"
                return value.flatMap { Double($0) } == Double(expected)
            }
        } catch {
            Issue.record("last seen: \(lastSeen)")
            throw error
        }
        #expect(try prometheus.query(#"scrape_samples_post_metric_relabeling{\#(job)} > 0"#).count == 1)
    }
}
