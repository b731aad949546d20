import Foundation
import Testing

/// A real Prometheus server scraping the real exporter, which polls the simulator: the
/// dashboard's queries and the shipped alerting rules run against what the exporter serves.
///
/// The Prometheus server comes from the Debian package `prometheus`, which the project's test
/// command (scripts/test, through scripts/install-deps --test) installs: a missing server
/// fails this suite, it does not skip it.
@Suite("Prometheus scraping the exporter: dashboard queries and alerting rules", .serialized)
struct PrometheusEndToEndTests {
    /// Dashboard expressions that may answer an empty result, each with the reason. Every other
    /// expression must return at least one sample with a value that is not NaN.
    /// Dashboard expressions allowed to return no data in this scenario. None today: every
    /// panel must show something against a freshly started exporter.
    static let allowedEmpty: [(contains: String, reason: String)] = [
        ("anthropic_message_batches_errored_requests_total", "the results row (issue 13): not exported yet"),
        ("anthropic_message_batches_stop_reasons_total", "the results row (issue 13): not exported yet"),
        ("anthropic_message_batches_tokens_total", "the results row (issue 13): not exported yet"),
        ("anthropic_message_batches_estimated_cost_usd_total", "needs --results.prices-file, which this test does not give"),
    ]

    @Test("Prometheus scrapes the exporter, every dashboard query returns data, and expired requests raise the alert")
    func dashboardQueriesAndExpiredAlert() async throws {
        try PrometheusServer.requireBinary()
        let simulator = try await SimulatorProcess(batches: 20, active: 4)
        defer { simulator.terminate() }
        let exporter = try await ExporterProcess(
            arguments: ["--api-base-url", simulator.baseURL, "--poll-interval", "1s"],
            environment: ["ANTHROPIC_API_KEY": simulator.apiKey]
        )
        defer { exporter.terminate() }
        let prometheus = try await PrometheusServer(scrapingPort: exporter.port)
        defer { prometheus.terminate() }

        // The target is up, seen both ways: the targets API and the `up` series.
        try await eventually(timeout: .seconds(30), every: .milliseconds(250), "Prometheus to scrape the exporter") {
            try prometheus.query(#"up{job="anthropic-batches-exporter"} == 1"#).count == 1
        }
        let targets = try prometheus.get("/api/v1/targets")
        let active = try #require((targets["data"] as? [String: Any])?["activeTargets"] as? [[String: Any]])
        let target = try #require(active.first { ($0["labels"] as? [String: String])?["job"] == "anthropic-batches-exporter" })
        #expect(target["health"] as? String == "up", "target: \(target)")
        #expect(target["scrapeUrl"] as? String == "http://127.0.0.1:\(exporter.port)/metrics")

        // A batch the exporter sees in progress, then several scrapes of the expired counter
        // at its old value, so that increase() has two different values once the batch ends.
        let created = try simulator.control("POST", "/_sim/batches?count=1&requests=10") as? [String: Any]
        let id = try #require((created?["ids"] as? [String])?.first, "no id in \(String(describing: created))")
        try await eventually("the exporter to poll the new batch as in_progress") {
            LifecycleTests.info(try exporter.scrape(), id) == "in_progress"
        }
        let expiredSeries =
            #"anthropic_message_batches_ended_requests_total{job="anthropic-batches-exporter",workspace="default",result="expired"}"#
        try await eventually(every: .milliseconds(250), "Prometheus to hold three samples of the expired counter") {
            try prometheus.query("count_over_time(\(expiredSeries)[1m]) >= 3").count == 1
        }

        // Simulated time moves past the exporter's start, so this ending is news to it.
        try simulator.control("POST", "/_sim/advance?seconds=600")
        try simulator.control("POST", "/_sim/batches/\(id)/end?succeeded=5&expired=5")
        try await eventually(timeout: .seconds(60), every: .milliseconds(250), "AnthropicBatchRequestsExpired to go pending or firing") {
            let alerts = try prometheus.get("/api/v1/alerts")
            let list = (alerts["data"] as? [String: Any])?["alerts"] as? [[String: Any]] ?? []
            let alert = list.first {
                let labels = $0["labels"] as? [String: String] ?? [:]
                return labels["alertname"] == "AnthropicBatchRequestsExpired" && labels["workspace"] == "default"
            }
            return ["pending", "firing"].contains(alert?["state"] as? String ?? "")
        }
        #expect(try prometheus.query("\(expiredSeries) == 5").count == 1, "Prometheus holds the counted expired requests")

        // Every rule of alerts.yml loaded and evaluates without error against real series.
        let rules = try prometheus.get("/api/v1/rules")
        let groups = (rules["data"] as? [String: Any])?["groups"] as? [[String: Any]] ?? []
        #expect(Set(groups.compactMap { $0["name"] as? String }) == ["anthropic-message-batches", "anthropic-batches-exporter"])
        for rule in groups.flatMap({ $0["rules"] as? [[String: Any]] ?? [] }) {
            #expect(rule["health"] as? String != "err", "rule \(rule["name"] ?? "?") fails: \(rule["lastError"] ?? "")")
        }

        // Every dashboard query, as Grafana would send it for workspace `default`.
        let expressions = try DashboardQueries.load()
        #expect(expressions.count > 20, "found only \(expressions.count) dashboard queries")
        for query in expressions {
            let expression = DashboardQueries.substitutingVariables(query.expr)
            let label = "\(query.panel) [\(query.refId)]: \(expression)"
            #expect(expression.firstMatch(of: /\$[A-Za-z_{]/) == nil, "an unsubstituted Grafana variable in \(label)")
            let result: [[String: Any]]
            do {
                result = try prometheus.query(expression)
            } catch {
                Issue.record("Prometheus rejects \(label): \(error)")
                continue
            }
            // An allowed exception must still parse (above); data is optional.
            if Self.allowedEmpty.contains(where: { expression.contains($0.contains) }) { continue }
            guard !result.isEmpty else {
                Issue.record("no data for \(label)")
                continue
            }
            let values = result.compactMap { ($0["value"] as? [Any])?.last as? String }
            #expect(values.contains { $0 != "NaN" }, "only NaN for \(label): \(values)")
        }
    }
}

// MARK: - The dashboard's queries

private enum DashboardQueries {
    struct Query {
        var panel: String
        var refId: String
        var expr: String
    }

    /// The parts of the Grafana dashboard JSON this test reads (as DeployTests reads it).
    private struct Dashboard: Decodable {
        struct Target: Decodable {
            var refId: String?
            var expr: String?
        }
        struct Panel: Decodable {
            var id: Int
            var title: String?
            var targets: [Target]?
            /// Panels of a collapsed row.
            var panels: [Panel]?
        }
        var panels: [Panel]
    }

    static func load() throws -> [Query] {
        let url = Binaries.repositoryRoot.appendingPathComponent("dashboards/anthropic-message-batches.json")
        let dashboard = try JSONDecoder().decode(Dashboard.self, from: Data(contentsOf: url))
        func walk(_ panels: [Dashboard.Panel]) -> [Query] {
            panels.flatMap { panel in
                (panel.targets ?? []).compactMap { target in
                    target.expr.map { Query(panel: panel.title ?? "panel \(panel.id)", refId: target.refId ?? "?", expr: $0) }
                } + walk(panel.panels ?? [])
            }
        }
        return walk(dashboard.panels)
    }

    /// Grafana's variables as Grafana would fill them in for one workspace, scraped every second.
    /// Longer names first, so `$__interval_ms` is not read as `$__interval` followed by "_ms".
    static let values: [(variable: String, value: String)] = [
        ("$__rate_interval", "1m"),
        ("$__interval_ms", "15000"),
        ("$__interval", "15s"),
        ("$__range_ms", "3600000"),
        ("$__range_s", "3600"),
        ("$__range", "1h"),
        ("$workspace", "default"),
        // All of these (the dashboard's `All` value): this Prometheus adds no cluster
        // or namespace label, and `.*` also matches a missing one.
        ("$namespace", ".*"),
        ("$cluster", ".*"),
        ("$job", ".*"),
    ]

    static func substitutingVariables(_ expression: String) -> String {
        var result = expression
        for (variable, value) in values {
            let name = variable.dropFirst()
            result = result.replacingOccurrences(of: "${\(name):regex}", with: value)
            result = result.replacingOccurrences(of: "${\(name)}", with: value)
            result = result.replacingOccurrences(of: variable, with: value)
        }
        return result
    }
}

// MARK: - The Prometheus server

/// `/usr/bin/prometheus` on a free loopback port, with its own configuration and storage in a
/// fresh temporary directory that `terminate()` removes.
final class PrometheusServer {
    static let binary = URL(fileURLWithPath: "/usr/bin/prometheus")

    let process: ChildProcess
    let port: Int
    let directory: URL

    static func requireBinary() throws {
        guard FileManager.default.isExecutableFile(atPath: binary.path) else {
            throw TestFailure(
                """
                \(binary.path) is missing: this test runs a real Prometheus server from the Debian package \
                `prometheus`. The project's test command (scripts/test, through scripts/install-deps --test) \
                installs it; or run `apt-get install -y prometheus`.
                """
            )
        }
    }

    init(scrapingPort exporterPort: Int) async throws {
        try Self.requireBinary()
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("PrometheusEndToEndTests-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        do {
            let alerts = Binaries.repositoryRoot.appendingPathComponent("deploy/prometheus/alerts.yml")
            let config = directory.appendingPathComponent("prometheus.yml")
            try Self.configuration(exporterPort: exporterPort, rules: alerts.path)
                .write(to: config, atomically: true, encoding: .utf8)

            // A free port can be taken between closing the probe socket and Prometheus binding
            // it: then start again on another.
            var attempt = 0
            while true {
                attempt += 1
                let port = try Self.freePort()
                let process = try ChildProcess(
                    Self.binary,
                    arguments: [
                        "--config.file=\(config.path)",
                        "--storage.tsdb.path=\(directory.appendingPathComponent("data").path)",
                        "--web.listen-address=127.0.0.1:\(port)",
                    ],
                    name: "prometheus"
                )
                do {
                    _ = try await process.waitForLine(containing: "Server is ready to receive web requests")
                    self.process = process
                    self.port = port
                    self.directory = directory
                    return
                } catch {
                    process.terminate()
                    guard attempt < 3, process.stderr.contains("address already in use") else { throw error }
                }
            }
        } catch {
            try? FileManager.default.removeItem(at: directory)
            throw error
        }
    }

    /// One scrape job under the name the alerts expect, every second, and the shipped rules.
    /// Strings are written JSON-quoted, which YAML reads as the same strings.
    static func configuration(exporterPort: Int, rules: String) throws -> String {
        func quoted(_ text: String) throws -> String {
            String(decoding: try JSONSerialization.data(withJSONObject: text, options: [.fragmentsAllowed, .withoutEscapingSlashes]), as: UTF8.self)
        }
        return """
            global:
              scrape_interval: 1s
              scrape_timeout: 1s
              evaluation_interval: 1s
            rule_files:
              - \(try quoted(rules))
            scrape_configs:
              - job_name: anthropic-batches-exporter
                metrics_path: /metrics
                static_configs:
                  - targets: [\(try quoted("127.0.0.1:\(exporterPort)"))]

            """
    }

    /// A port nothing listens on right now: bind 127.0.0.1:0, read the port, close.
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket() failed: errno \(errno)") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        inet_pton(AF_INET, "127.0.0.1", &address.sin_addr)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        guard bound else { throw TestFailure("cannot bind 127.0.0.1:0: errno \(errno)") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// GET on the HTTP API; the decoded JSON object of a 2xx answer, or an error with Prometheus' message.
    /// HTTP/1.0, so Go answers without chunked encoding and closes: the body is all that follows the head.
    func get(_ path: String) throws -> [String: Any] {
        let connection = try RawConnection(port: port)
        try connection.send("GET \(path) HTTP/1.0\r\nHost: 127.0.0.1:\(port)\r\n\r\n")
        let bytes = connection.readToEnd()
        let separator = Array("\r\n\r\n".utf8)
        guard let headEnd = bytes.indices.dropLast(3).first(where: { Array(bytes[$0..<$0 + 4]) == separator }) else {
            throw TestFailure("GET \(path): incomplete answer: \(String(decoding: bytes, as: UTF8.self))")
        }
        let head = String(decoding: bytes[..<headEnd], as: UTF8.self)
        let statusLine = head.prefix { $0 != "\r" }.split(separator: " ")
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else { throw TestFailure("GET \(path): bad head \(head)") }
        guard !head.lowercased().contains("transfer-encoding: chunked") else { throw TestFailure("GET \(path): chunked answer") }
        let body = Data(bytes[(headEnd + 4)...])
        guard (200..<300).contains(status) else {
            throw TestFailure("GET \(path) answered \(status): \(String(decoding: body, as: UTF8.self))")
        }
        guard let json = try JSONSerialization.jsonObject(with: body) as? [String: Any], json["status"] as? String == "success" else {
            throw TestFailure("GET \(path): not a success: \(String(decoding: body, as: UTF8.self))")
        }
        return json
    }

    /// An instant query at the current time; the samples of its vector result (a scalar answer
    /// counts as one sample).
    func query(_ expression: String) throws -> [[String: Any]] {
        let encoded = expression.addingPercentEncoding(withAllowedCharacters: Self.unreserved) ?? expression
        let json = try get("/api/v1/query?query=\(encoded)")
        guard let data = json["data"] as? [String: Any] else { throw TestFailure("query \(expression): no data in \(json)") }
        switch data["resultType"] as? String {
        case "vector": return data["result"] as? [[String: Any]] ?? []
        case "scalar": return [["value": data["result"] ?? []]]
        default: throw TestFailure("query \(expression): unexpected result \(data)")
        }
    }

    private static let unreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")

    /// Stops the server and removes its configuration and storage.
    func terminate() {
        process.terminate()
        try? FileManager.default.removeItem(at: directory)
    }
}
