import Foundation
import Testing

// Checks of the operator-facing files in deploy/ and dashboards/: the Prometheus
// configuration, the alerting rules and their unit tests (through promtool), the
// Kubernetes PrometheusRule generated from the same rules, and the Grafana
// dashboard's structure and queries.
//
// promtool comes from the Debian package `prometheus`, which the project's test
// command installs: a missing promtool fails these tests, it does not skip them.

// MARK: - What the exporter exposes

/// Every metric family the exporter serves (its fixed interface). Queries in the
/// rules and the dashboard may name these and nothing else.
private let exporterFamilies: Set<String> = [
    "anthropic_message_batches",
    "anthropic_message_batches_requests",
    "anthropic_message_batches_ended_total",
    "anthropic_message_batches_ended_requests_total",
    "anthropic_message_batch_info",
    "anthropic_message_batch_requests",
    "anthropic_message_batch_created_timestamp_seconds",
    "anthropic_message_batch_expires_timestamp_seconds",
    "anthropic_message_batch_ended_timestamp_seconds",
    "anthropic_message_batch_cancel_initiated_timestamp_seconds",
    "anthropic_message_batches_oldest_active_created_timestamp_seconds",
    "anthropic_message_batches_next_expiry_timestamp_seconds",
    "anthropic_batches_exporter_poll_success",
    "anthropic_batches_exporter_last_success_timestamp_seconds",
    "anthropic_batches_exporter_snapshot_age_seconds",
    "anthropic_batches_exporter_api_requests_total",
    "anthropic_batches_exporter_poll_errors_total",
    "anthropic_batches_exporter_batch_metrics_dropped",
    "anthropic_batches_exporter_snapshot_batches",
    "anthropic_batches_exporter_api_budget_exhausted_total",
    "anthropic_batches_exporter_poll_interval_seconds",
    "anthropic_batches_exporter_build_info",
    "process_cpu_seconds_total",
    "process_open_fds",
    "process_max_fds",
    "process_virtual_memory_bytes",
    "process_virtual_memory_max_bytes",
    "process_resident_memory_bytes",
    "process_start_time_seconds",
]

/// Histogram families: queried through their `_bucket`, `_sum` and `_count` series.
private let exporterHistograms: Set<String> = [
    "anthropic_message_batch_processing_duration_seconds",
    "anthropic_batches_exporter_poll_duration_seconds",
]

private let exporterSeriesNames: Set<String> = exporterFamilies.union(
    exporterHistograms.flatMap { [$0 + "_bucket", $0 + "_sum", $0 + "_count"] }
)

/// The alerts the brief asks for (the exporter failing to poll is two alerts:
/// polls failing, and a snapshot gone stale).
private let expectedAlerts: Set<String> = [
    "AnthropicBatchRequestsExpired",
    "AnthropicBatchErroredRatioHigh",
    "AnthropicBatchNearExpiry",
    "AnthropicBatchStuckCanceling",
    "AnthropicBatchesExporterPollFailing",
    "AnthropicBatchesExporterSnapshotStale",
    "AnthropicBatchesExporterAuthFailing",
    "AnthropicBatchesExporterRateLimited",
    "AnthropicBatchesExporterDown",
]

private let runbookBase = "https://github.com/anthropic-batches-exporter/anthropic-batches-exporter#runbook-"

// MARK: - Files

/// The repository root, three levels above this file (Tests/DeployTests/DeployTests.swift).
private let repoRoot: URL = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent()
    .deletingLastPathComponent()
    .deletingLastPathComponent()

private func repoFile(_ relativePath: String) -> URL {
    repoRoot.appendingPathComponent(relativePath)
}

private func readRepoFile(_ relativePath: String) throws -> String {
    try String(contentsOf: repoFile(relativePath), encoding: .utf8)
}

private let alertsPath = "deploy/prometheus/alerts.yml"
private let prometheusRulePath = "deploy/kubernetes/prometheusrule.yaml"
private let dashboardPath = "dashboards/anthropic-message-batches.json"

private func ruleTestFiles() throws -> [URL] {
    let folder = repoFile("deploy/prometheus/tests")
    return try FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: nil)
        .filter { $0.pathExtension == "yml" }
        .sorted { $0.lastPathComponent < $1.lastPathComponent }
}

private func makeScratchDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("DeployTests-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

// MARK: - Running tools

private struct ToolRun {
    var status: Int32
    var stdout: String
    var stderr: String
    var output: String { stdout + stderr }
}

private struct ToolNotFound: Error, CustomStringConvertible {
    var description: String
}

/// Looks `name` up on PATH.
private func findTool(_ name: String) -> URL? {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
    for directory in path.split(separator: ":") where !directory.isEmpty {
        let candidate = URL(fileURLWithPath: String(directory)).appendingPathComponent(name)
        if FileManager.default.isExecutableFile(atPath: candidate.path) {
            return candidate
        }
    }
    return nil
}

private func promtool() throws -> URL {
    guard let url = findTool("promtool") else {
        throw ToolNotFound(
            description: """
                promtool is not installed (not found on PATH). It comes with the Debian package \
                `prometheus`: run `apt-get install -y prometheus`. The project's test command installs \
                it, so a missing promtool is a setup error, not a reason to skip these checks.
                """
        )
    }
    return url
}

/// Runs a program to completion from the repository root. Output goes through
/// files, so a chatty program cannot fill a pipe and hang.
private func run(_ executable: URL, _ arguments: [String]) throws -> ToolRun {
    let scratch = try makeScratchDirectory()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let outURL = scratch.appendingPathComponent("stdout")
    let errURL = scratch.appendingPathComponent("stderr")
    try Data().write(to: outURL)
    try Data().write(to: errURL)
    let out = try FileHandle(forWritingTo: outURL)
    let err = try FileHandle(forWritingTo: errURL)

    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    process.currentDirectoryURL = repoRoot
    process.standardInput = FileHandle.nullDevice
    process.standardOutput = out
    process.standardError = err
    try process.run()
    process.waitUntilExit()
    try out.close()
    try err.close()

    return ToolRun(
        status: process.terminationStatus,
        stdout: try String(contentsOf: outURL, encoding: .utf8),
        stderr: try String(contentsOf: errURL, encoding: .utf8)
    )
}

// MARK: - Reading the rule files

private struct AlertBlock {
    var name: String
    var lines: [Substring]
}

/// Splits a rule file into its alerting rules: each block runs from its
/// `- alert:` line to the next rule or group. `promtool check rules` has
/// validated the YAML itself; this reads the layout alerts.yml keeps.
private func alertBlocks(in text: String) -> [AlertBlock] {
    var blocks: [AlertBlock] = []
    for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
        let trimmed = line.drop { $0 == " " }
        if trimmed.hasPrefix("- alert:") {
            let name = trimmed.dropFirst("- alert:".count).trimmingCharacters(in: .whitespaces)
            blocks.append(AlertBlock(name: name, lines: []))
        } else if trimmed.hasPrefix("- record:") || trimmed.hasPrefix("- name:") {
            blocks.append(AlertBlock(name: "", lines: []))
        } else if !blocks.isEmpty {
            blocks[blocks.count - 1].lines.append(line)
        }
    }
    return blocks.filter { !$0.name.isEmpty }
}

/// The value of `key:` in a block, if present (first occurrence, unquoted).
private func value(of key: String, in block: AlertBlock) -> String? {
    for line in block.lines {
        let trimmed = line.drop { $0 == " " }
        if trimmed.hasPrefix(key + ":") {
            var value = trimmed.dropFirst(key.count + 1).trimmingCharacters(in: .whitespaces)
            if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") {
                value = String(value.dropFirst().dropLast())
            }
            return value
        }
    }
    return nil
}

/// The number promtool reports in "SUCCESS: N rules found".
private func promtoolRuleCount(_ output: String) -> Int? {
    guard let match = output.firstMatch(of: /SUCCESS: (\d+) rules found/) else { return nil }
    return Int(match.1)
}

/// The PromQL in a rule or rule-test file: every `expr:` (inline, or a block
/// scalar spanning the more-indented lines below it) and every `series:`.
private func promQLValues(in text: String) -> [String] {
    let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
    func indentation(_ line: Substring) -> Int { line.prefix { $0 == " " }.count }
    func unquoted(_ value: String) -> String {
        guard value.count >= 2, let first = value.first, first == value.last, first == "'" || first == "\"" else {
            return value
        }
        return String(value.dropFirst().dropLast())
    }
    var values: [String] = []
    var index = 0
    while index < lines.count {
        let line = lines[index]
        var trimmed: Substring = line.drop(while: { $0 == " " })
        if trimmed.hasPrefix("- ") { trimmed = trimmed.dropFirst(2) }
        index += 1
        for key in ["expr:", "series:"] where trimmed.hasPrefix(key) {
            let inline = trimmed.dropFirst(key.count).trimmingCharacters(in: .whitespaces)
            if inline.hasPrefix("|") || inline.hasPrefix(">") {
                var block: [Substring] = []
                while index < lines.count,
                    lines[index].allSatisfy({ $0 == " " }) || indentation(lines[index]) > indentation(line)
                {
                    block.append(lines[index])
                    index += 1
                }
                values.append(block.joined(separator: "\n"))
            } else {
                values.append(unquoted(inline))
            }
        }
    }
    return values
}

// MARK: - Metric names in PromQL

/// Metric-like names an expression uses: every identifier that starts with an
/// exporter prefix, and every identifier directly followed by a `{` selector.
/// String literals are removed first, so label values do not count.
private func metricNames(in expression: String) -> Set<String> {
    let withoutStrings = expression.replacing(/"(?:[^"\\]|\\.)*"/, with: "\"\"")
    var names: Set<String> = []
    for match in withoutStrings.matches(of: /([A-Za-z_:][A-Za-z0-9_:]*)(\s*\{)?/) {
        let name = String(match.1)
        let hasSelector = match.2 != nil
        if name.hasPrefix("anthropic_") || name.hasPrefix("process_") || hasSelector {
            names.insert(name)
        }
    }
    return names
}

// MARK: - The dashboard's shape

private struct Dashboard: Decodable {
    struct Templating: Decodable { var list: [Variable] }
    struct Variable: Decodable {
        var name: String
        var type: String
        var query: VariableQuery?
        var datasource: DataSourceRef?
        var multi: Bool?
        var includeAll: Bool?
    }
    /// A variable's query: a plain string (datasource variables) or an object
    /// with a `query` string (query variables).
    struct VariableQuery: Decodable {
        var text: String
        private struct Object: Decodable { var query: String }
        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let string = try? container.decode(String.self) {
                text = string
            } else {
                text = try container.decode(Object.self).query
            }
        }
    }
    struct DataSourceRef: Decodable {
        var type: String?
        var uid: String?
    }
    struct GridPos: Decodable { var h: Int, w: Int, x: Int, y: Int }
    struct Target: Decodable {
        var refId: String?
        var expr: String?
        var datasource: DataSourceRef?
    }
    struct Panel: Decodable {
        var id: Int
        var type: String
        var title: String?
        var gridPos: GridPos
        var datasource: DataSourceRef?
        var targets: [Target]?
        /// Panels of a collapsed row.
        var panels: [Panel]?
    }

    var uid: String
    var title: String
    var schemaVersion: Int
    var templating: Templating
    var panels: [Panel]

    /// Every panel, those inside collapsed rows included.
    var allPanels: [Panel] {
        panels.flatMap { [$0] + ($0.panels ?? []) }
    }
}

private func loadDashboard() throws -> Dashboard {
    let data = try Data(contentsOf: repoFile(dashboardPath))
    return try JSONDecoder().decode(Dashboard.self, from: data)
}

/// Grafana's variables replaced by values PromQL accepts, for `promtool`.
private func substitutingGrafanaVariables(_ expression: String) -> String {
    expression
        .replacingOccurrences(of: "$__rate_interval", with: "5m")
        .replacingOccurrences(of: "$__interval", with: "1m")
        .replacingOccurrences(of: "$__range", with: "1d")
        .replacingOccurrences(of: "$workspace", with: ".*")
}

// MARK: - Prometheus configuration and rules

@Suite("Prometheus configuration and alerting rules")
struct PrometheusRulesTests {
    @Test("promtool accepts the example Prometheus configuration and its rule files")
    func configurationIsValid() throws {
        let result = try run(try promtool(), ["check", "config", "deploy/prometheus/prometheus.yml"])
        #expect(result.status == 0, "promtool check config failed:\n\(result.output)")
    }

    @Test("promtool accepts the alerting rules, duplicate-rule lint included")
    func rulesAreValid() throws {
        let result = try run(try promtool(), ["check", "rules", "--lint=all", "--lint-fatal", alertsPath])
        #expect(result.status == 0, "promtool check rules failed:\n\(result.output)")
    }

    @Test("the alert rule unit tests pass under promtool test rules")
    func ruleUnitTestsPass() throws {
        let files = try ruleTestFiles()
        #expect(!files.isEmpty, "no deploy/prometheus/tests/*.yml")
        let arguments = ["test", "rules"] + files.map { "deploy/prometheus/tests/" + $0.lastPathComponent }
        let result = try run(try promtool(), arguments)
        #expect(result.status == 0, "promtool test rules failed:\n\(result.output)")
    }

    @Test("alerts.yml has exactly the expected alerts, and the reader below sees all of them")
    func expectedAlertsExist() throws {
        let text = try readRepoFile(alertsPath)
        let names = alertBlocks(in: text).map(\.name)
        #expect(Set(names) == expectedAlerts)
        #expect(names.count == Set(names).count, "an alert name is used twice: \(names)")

        // promtool counts every rule; alerts.yml holds alerting rules only, so a
        // rule the line reader missed would show up as a difference here.
        let check = try run(try promtool(), ["check", "rules", alertsPath])
        #expect(promtoolRuleCount(check.output) == names.count, "promtool said:\n\(check.output)")
    }

    @Test("every alert has a summary, a description, its runbook_url and a for: duration")
    func alertsAreDocumented() throws {
        let blocks = alertBlocks(in: try readRepoFile(alertsPath))
        #expect(!blocks.isEmpty)
        for block in blocks {
            let summary = value(of: "summary", in: block) ?? ""
            #expect(!summary.isEmpty, "\(block.name) has no summary")
            #expect(value(of: "description", in: block) != nil, "\(block.name) has no description")
            #expect(
                value(of: "runbook_url", in: block) == runbookBase + block.name.lowercased(),
                "\(block.name): runbook_url must be \(runbookBase + block.name.lowercased())"
            )
            let duration = value(of: "for", in: block) ?? ""
            #expect(
                duration.wholeMatch(of: /(\d+(ms|s|m|h|d|w|y))+/) != nil,
                "\(block.name) has no valid for: duration (got '\(duration)')"
            )
            #expect(value(of: "severity", in: block) != nil, "\(block.name) has no severity label")
        }
    }

    @Test("every alert is tested both firing and staying quiet")
    func everyAlertIsTestedBothWays() throws {
        var firing: Set<String> = []
        var quiet: Set<String> = []
        for file in try ruleTestFiles() {
            let lines = try String(contentsOf: file, encoding: .utf8)
                .split(separator: "\n")
                .map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { !$0.isEmpty && !$0.hasPrefix("#") }
            for (index, line) in lines.enumerated() where line.hasPrefix("alertname:") {
                let name = line.dropFirst("alertname:".count).trimmingCharacters(in: .whitespaces)
                guard index + 1 < lines.count else { continue }
                let next = lines[index + 1]
                if next == "exp_alerts: []" {
                    quiet.insert(name)
                } else if next == "exp_alerts:" {
                    firing.insert(name)
                }
            }
        }
        for alert in expectedAlerts.sorted() {
            #expect(firing.contains(alert), "no test case expects \(alert) to fire")
            #expect(quiet.contains(alert), "no test case expects \(alert) to stay quiet")
        }
    }

    @Test("rules and rule tests name only metrics the exporter exposes (and up)")
    func rulesUseKnownMetrics() throws {
        let allowed = exporterSeriesNames.union(["up"])
        var files = [alertsPath]
        files += try ruleTestFiles().map { "deploy/prometheus/tests/" + $0.lastPathComponent }
        for file in files {
            let queries = promQLValues(in: try readRepoFile(file))
            #expect(!queries.isEmpty, "\(file) has no expr: or series: values")
            for query in queries {
                let unknown = metricNames(in: query).subtracting(allowed)
                #expect(unknown.isEmpty, "\(file) names unknown metrics \(unknown.sorted()) in: \(query)")
            }
        }
    }
}

// MARK: - Kubernetes

@Suite("Kubernetes manifests")
struct KubernetesTests {
    @Test("prometheusrule.yaml is what generate-prometheusrule.sh makes of alerts.yml")
    func prometheusRuleIsRegenerated() throws {
        let scratch = try makeScratchDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let output = scratch.appendingPathComponent("prometheusrule.yaml")
        let result = try run(
            URL(fileURLWithPath: "/bin/sh"),
            ["deploy/kubernetes/generate-prometheusrule.sh", output.path]
        )
        #expect(result.status == 0, "generate-prometheusrule.sh failed:\n\(result.output)")
        let regenerated = try String(contentsOf: output, encoding: .utf8)
        #expect(
            regenerated == (try readRepoFile(prometheusRulePath)),
            "deploy/kubernetes/prometheusrule.yaml is out of date: run deploy/kubernetes/generate-prometheusrule.sh"
        )
    }

    @Test("the PrometheusRule's spec holds alerts.yml's groups line for line, and promtool accepts them")
    func prometheusRuleCarriesTheSameRules() throws {
        // Independent of the script: undo the two-space indentation under spec:
        // and compare with alerts.yml from its groups: line on.
        let rule = try readRepoFile(prometheusRulePath)
        #expect(rule.contains("kind: PrometheusRule"))
        let ruleLines = rule.split(separator: "\n", omittingEmptySubsequences: false)
        let specIndex = try #require(ruleLines.firstIndex(of: "spec:"), "no spec: line in \(prometheusRulePath)")
        let spec = ruleLines[(specIndex + 1)...].map { line -> String in
            line.isEmpty ? "" : (line.hasPrefix("  ") ? String(line.dropFirst(2)) : "<not indented> " + line)
        }

        let alertLines = try readRepoFile(alertsPath).split(separator: "\n", omittingEmptySubsequences: false)
        let groupsIndex = try #require(alertLines.firstIndex(of: "groups:"), "no groups: line in \(alertsPath)")
        let groups = alertLines[groupsIndex...].map(String.init)
        #expect(spec == groups, "the PrometheusRule's spec differs from alerts.yml")

        let scratch = try makeScratchDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let extracted = scratch.appendingPathComponent("spec.yml")
        try spec.joined(separator: "\n").write(to: extracted, atomically: true, encoding: .utf8)
        let check = try run(try promtool(), ["check", "rules", extracted.path])
        #expect(check.status == 0, "promtool rejects the PrometheusRule's rules:\n\(check.output)")
        #expect(promtoolRuleCount(check.output) == expectedAlerts.count)
    }

    @Test("kustomization.yaml includes every manifest in deploy/kubernetes")
    func kustomizationListsEveryManifest() throws {
        let kustomization = try readRepoFile("deploy/kubernetes/kustomization.yaml")
        let manifests = try FileManager.default
            .contentsOfDirectory(atPath: repoFile("deploy/kubernetes").path)
            .filter { $0.hasSuffix(".yaml") && $0 != "kustomization.yaml" }
        #expect(!manifests.isEmpty)
        for manifest in manifests {
            #expect(kustomization.contains("- \(manifest)"), "kustomization.yaml does not list \(manifest)")
        }
    }
}

// MARK: - Grafana dashboard

@Suite("Grafana dashboard")
struct DashboardTests {
    @Test("the dashboard has its stable uid, a current schemaVersion and a title")
    func identity() throws {
        let dashboard = try loadDashboard()
        #expect(dashboard.uid == "anthropic-message-batches")
        #expect(dashboard.schemaVersion >= 39)
        #expect(!dashboard.title.isEmpty)
    }

    @Test("the dashboard has a Prometheus datasource variable and a workspace variable")
    func templateVariables() throws {
        let variables = try loadDashboard().templating.list
        let datasource = try #require(variables.first { $0.name == "datasource" }, "no datasource variable")
        #expect(datasource.type == "datasource")
        #expect(datasource.query?.text == "prometheus")

        let workspace = try #require(variables.first { $0.name == "workspace" }, "no workspace variable")
        #expect(workspace.type == "query")
        #expect(workspace.datasource?.uid == "${datasource}")
        let query = workspace.query?.text ?? ""
        #expect(query.contains("workspace"))
        #expect(metricNames(in: query).isSubset(of: exporterSeriesNames), "unknown metric in \(query)")
    }

    @Test("every panel has a title, unique id and a place on the 24-column grid")
    func panelsAreWellFormed() throws {
        let panels = try loadDashboard().allPanels
        #expect(!panels.isEmpty)
        #expect(Set(panels.map(\.id)).count == panels.count, "panel ids are not unique")
        for panel in panels {
            #expect(!(panel.title ?? "").isEmpty, "panel \(panel.id) has no title")
            #expect(
                panel.gridPos.x >= 0 && panel.gridPos.w > 0 && panel.gridPos.x + panel.gridPos.w <= 24,
                "panel '\(panel.title ?? "")' does not fit the grid")
        }
    }

    @Test("every data panel queries ${datasource} with non-empty exprs filtered by $workspace")
    func panelsHaveQueries() throws {
        for panel in try loadDashboard().allPanels where panel.type != "row" {
            let title = panel.title ?? "panel \(panel.id)"
            #expect(panel.datasource?.uid == "${datasource}", "\(title) does not use ${datasource}")
            let targets = panel.targets ?? []
            #expect(!targets.isEmpty, "\(title) has no queries")
            for target in targets {
                let expr = (target.expr ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
                #expect(!expr.isEmpty, "\(title) has a query without expr")
                #expect(target.datasource?.uid == "${datasource}", "a query of \(title) does not use ${datasource}")
                #expect(expr.contains("$workspace"), "a query of \(title) ignores the workspace variable: \(expr)")
            }
        }
    }

    @Test("dashboard queries name only metrics the exporter exposes")
    func queriesUseKnownMetrics() throws {
        for panel in try loadDashboard().allPanels {
            for target in panel.targets ?? [] {
                let unknown = metricNames(in: target.expr ?? "").subtracting(exporterSeriesNames)
                #expect(unknown.isEmpty, "'\(panel.title ?? "")' names unknown metrics: \(unknown.sorted())")
            }
        }
    }

    @Test("every dashboard query parses as PromQL (promtool, Grafana variables substituted)")
    func queriesParse() throws {
        var rules: [[String: String]] = []
        for panel in try loadDashboard().allPanels {
            for target in panel.targets ?? [] {
                rules.append([
                    "record": "dashboard:query:\(rules.count)",
                    "expr": substitutingGrafanaVariables(target.expr ?? ""),
                ])
            }
        }
        #expect(!rules.isEmpty)
        // JSON is YAML, so a rule file can be written without a YAML library.
        let file: [String: Any] = ["groups": [["name": "dashboard-queries", "rules": rules]]]
        let data = try JSONSerialization.data(withJSONObject: file, options: [.sortedKeys, .withoutEscapingSlashes])
        let scratch = try makeScratchDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let url = scratch.appendingPathComponent("dashboard-queries.yml")
        try data.write(to: url)
        let result = try run(try promtool(), ["check", "rules", url.path])
        #expect(result.status == 0, "promtool rejects a dashboard query:\n\(result.output)")
        #expect(promtoolRuleCount(result.output) == rules.count)
    }
}
