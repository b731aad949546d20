import Foundation
import Testing

// Checks of the operator-facing files in deploy/ and dashboards/: the monitoring
// mixin (mixin/) and the files generated from it, the Prometheus configuration, the
// alerting rules and their unit tests (through promtool), the Kubernetes manifests,
// and the Grafana dashboard's structure and queries.
//
// promtool comes from the Debian package `prometheus` and jsonnet from the package
// `jsonnet`, which the project's test command installs: a missing one fails these
// tests, it does not skip them. kubectl (for `kubectl kustomize`) is not packaged by
// Debian: the overlay rendering test runs where it is installed and is reported as
// skipped elsewhere.

// MARK: - What the exporter exposes

/// Every series name the exporter serves (its fixed interface), read from the golden
/// exposition of a seeded run that switches every optional part on
/// (`Tests/IntegrationTests/Fixtures/e2e-output.prom`, kept by GoldenExpositionTests), so
/// this list cannot drift from the code. Queries in the rules and the dashboard may name
/// these and nothing else; histograms are named through `_bucket`, `_sum` and `_count`.
private let exporterSeriesNames: Set<String> = {
    let golden = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("IntegrationTests/Fixtures/e2e-output.prom")
    guard let text = try? String(contentsOf: golden, encoding: .utf8) else { return [] }
    var names: Set<String> = []
    for line in text.split(separator: "\n") {
        let fields = line.split(separator: " ")
        if fields.count >= 3, fields[0] == "#", fields[1] == "TYPE" {
            // Families whose series may be absent in any one run (none active, nothing
            // waiting) are still named by their TYPE line.
            names.insert(String(fields[2]))
        } else if !line.hasPrefix("#") {
            names.insert(String(line.prefix { $0 != "{" && $0 != " " }))
        }
    }
    // Shown only while a results download waits, so a finished run cannot contain it.
    names.insert("anthropic_batches_exporter_results_oldest_waiting_timestamp_seconds")
    return names
}()

/// The alerts the mixin ships (the exporter failing to poll is two alerts: polls
/// failing, and a snapshot gone stale while polls succeed).
private let expectedAlerts: Set<String> = [
    "AnthropicBatchRequestsExpired",
    "AnthropicBatchErroredRatioHigh",
    "AnthropicBatchInvalidRequestsHigh",
    "AnthropicBatchMaxTokensStopsHigh",
    "AnthropicBatchNearExpiry",
    "AnthropicBatchStuckCanceling",
    "AnthropicBatchesExporterPollFailing",
    "AnthropicBatchesExporterSnapshotStale",
    "AnthropicBatchesExporterAuthFailing",
    "AnthropicBatchesExporterRateLimited",
    "AnthropicBatchesExporterDown",
    "AnthropicBatchesExporterConfigReloadFailed",
    "AnthropicBatchesExporterBatchSeriesDropped",
    "AnthropicBatchesExporterKeyFileErrors",
    "AnthropicBatchesExporterWorkspaceExportedTwice",
    "AnthropicBatchesExporterWorkspacesNotExported",
]

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
private let dashboardConfigMapPath = "deploy/kubernetes/grafana-dashboards.yaml"

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

private func jsonnet() throws -> URL {
    guard let url = findTool("jsonnet") else {
        throw ToolNotFound(
            description: """
                jsonnet is not installed (not found on PATH). It comes with the Debian package \
                `jsonnet`: run `apt-get install -y jsonnet`. The project's test command installs it.
                """
        )
    }
    return url
}

/// Evaluates a jsonnet expression against the mixin (from the repository root) and
/// decodes its JSON output.
private func evaluateMixin(_ expression: String) throws -> Any {
    let result = try run(try jsonnet(), ["-J", "mixin", "-e", expression])
    guard result.status == 0 else {
        throw ToolNotFound(description: "jsonnet failed on \(expression):\n\(result.output)")
    }
    return try JSONSerialization.jsonObject(with: Data(result.stdout.utf8), options: [.fragmentsAllowed])
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
            var name = trimmed.dropFirst("- alert:".count).trimmingCharacters(in: .whitespaces)
            if name.count >= 2, name.hasPrefix("\""), name.hasSuffix("\"") {
                name = String(name.dropFirst().dropLast())
            }
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
        var allValue: String?
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
        .replacingOccurrences(of: "$namespace", with: ".*")
        .replacingOccurrences(of: "$cluster", with: ".*")
        .replacingOccurrences(of: "$job", with: ".*")
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
        let readme = try readRepoFile("README.md")
        let pattern = try #require(
            try evaluateMixin("(import 'mixin.libsonnet')._config.runbookURLPattern") as? String
        )
        for block in blocks {
            // The runbook URL points at a README anchor: the heading must exist.
            #expect(
                readme.contains("\n### Runbook: \(block.name)\n"),
                "README.md has no '### Runbook: \(block.name)' section for the runbook_url to point at"
            )
            let summary = value(of: "summary", in: block) ?? ""
            #expect(!summary.isEmpty, "\(block.name) has no summary")
            #expect(value(of: "description", in: block) != nil, "\(block.name) has no description")
            let runbook = pattern.replacingOccurrences(of: "%s", with: block.name.lowercased())
            #expect(
                value(of: "runbook_url", in: block) == runbook,
                "\(block.name): runbook_url must be \(runbook)"
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
                // `exp_alerts:` may carry a YAML anchor or be an alias of one.
                let next = lines[index + 1]
                if next == "exp_alerts: []" {
                    quiet.insert(name)
                } else if next == "exp_alerts:" || next.hasPrefix("exp_alerts: &") || next.hasPrefix("exp_alerts: *") {
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

// MARK: - The mixin

@Suite("Monitoring mixin")
struct MixinTests {
    @Test("every file generated from the mixin is committed exactly as mixin/build.sh writes it")
    func generatedFilesAreUpToDate() throws {
        // render.jsonnet is an object of path -> content; jsonnet without -S prints it as JSON.
        let rendered = try #require(
            try evaluateMixin("import 'render.jsonnet'") as? [String: String],
            "mixin/render.jsonnet is not an object of strings"
        )
        #expect(
            Set(rendered.keys) == [alertsPath, prometheusRulePath, dashboardPath, dashboardConfigMapPath],
            "mixin/render.jsonnet writes \(rendered.keys.sorted())"
        )
        for (path, content) in rendered.sorted(by: { $0.key < $1.key }) {
            let committed = (try? readRepoFile(path)) ?? "<missing>"
            // `jsonnet -S -m` ends every file it writes with a newline.
            #expect(committed == content + "\n", "\(path) differs from the mixin's output: run mixin/build.sh")
        }
    }

    @Test("mixin/build.sh rewrites the generated files without changing them")
    func buildScriptIsIdempotent() throws {
        let paths = [alertsPath, prometheusRulePath, dashboardPath, dashboardConfigMapPath]
        let before = try paths.map(readRepoFile)
        let result = try run(URL(fileURLWithPath: "/bin/sh"), ["mixin/build.sh"])
        #expect(result.status == 0, "mixin/build.sh failed:\n\(result.output)")
        #expect(try paths.map(readRepoFile) == before, "mixin/build.sh changed a committed file")
    }

    @Test("runbook URLs follow runbookURLPattern, which a projectURL setting fills in")
    func runbookPatternIsConfigurable() throws {
        let expression = """
            local m = (import 'mixin.libsonnet') + { _config+:: { projectURL: 'https://git.test/x' } };
            [r.annotations.runbook_url for g in m.prometheusAlerts.groups for r in g.rules]
            """
        let urls = try #require(try evaluateMixin(expression) as? [String])
        #expect(urls.count == expectedAlerts.count)
        for url in urls {
            #expect(url.hasPrefix("https://git.test/x#runbook-anthropicbatch"), "unexpected runbook URL \(url)")
        }
    }

    @Test("no alert aggregates the target labels away: every aggregation is `without`, or `by` with job")
    func aggregationsKeepTargetLabels() throws {
        for query in promQLValues(in: try readRepoFile(alertsPath)) {
            for match in query.matches(of: /\b(sum|min|max|avg|count)\s+by\s*\(([^)]*)\)/) {
                let labels = match.2.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                #expect(labels.contains("job"), "an aggregation drops job: \(match.0) in \(query)")
            }
        }
    }
}

// MARK: - Kubernetes

@Suite("Kubernetes manifests")
struct KubernetesTests {
    @Test("the PrometheusRule's spec holds alerts.yml's groups line for line, and promtool accepts them")
    func prometheusRuleCarriesTheSameRules() throws {
        // Independent of the script: undo the two-space indentation under spec:
        // and compare with alerts.yml from its groups: line on.
        let rule = try readRepoFile(prometheusRulePath)
        #expect(rule.contains("kind: \"PrometheusRule\""))
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

    @Test(
        "kubectl kustomize renders every overlay, with a registry image and no :latest",
        .enabled(if: findTool("kubectl") != nil, "kubectl is not installed (Debian does not package it)")
    )
    func overlaysRender() throws {
        let kubectl = try #require(findTool("kubectl"))
        for overlay in ["deploy/kubernetes", "deploy/kubernetes/sharded"] {
            let result = try run(kubectl, ["kustomize", overlay])
            #expect(result.status == 0, "kubectl kustomize \(overlay) failed:\n\(result.output)")
            let images = result.stdout.matches(of: /\n\s+image:\s*(\S+)/).map { String($0.1) }
            #expect(!images.isEmpty, "\(overlay) renders no container image")
            for image in images {
                // A bare name resolves to Docker Hub's library, where no such image exists.
                let registry = image.split(separator: "/").first.map(String.init) ?? ""
                #expect(image.contains("/") && registry.contains("."), "\(overlay): image \(image) names no registry")
                #expect(!image.hasSuffix(":latest"), "\(overlay): image \(image) is :latest")
            }
        }
        let base = try run(kubectl, ["kustomize", "deploy/kubernetes"])
        #expect(base.stdout.contains("kind: PrometheusRule"))
        #expect(base.stdout.contains("grafana_dashboard: \"1\""), "the dashboards ConfigMap is not rendered")
    }

    @Test("the Grafana dashboards ConfigMap carries the sidecar label and the dashboard JSON")
    func dashboardConfigMap() throws {
        let text = try readRepoFile(dashboardConfigMapPath)
        #expect(text.contains("kind: \"ConfigMap\""))
        #expect(text.contains("grafana_dashboard: \"1\""))
        #expect(text.contains("  anthropic-message-batches.json: |\n"))
        // The embedded JSON, de-indented, is the dashboard file.
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        let start = try #require(lines.firstIndex(of: "  anthropic-message-batches.json: |"))
        var json: [String] = []
        for line in lines[(start + 1)...] {
            guard line.hasPrefix("    ") || line.isEmpty else { break }
            json.append(String(line.dropFirst(min(4, line.count))))
        }
        let embedded = json.joined(separator: "\n").trimmingCharacters(in: .whitespacesAndNewlines)
        let file = try readRepoFile(dashboardPath).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(embedded == file)
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

        for name in ["cluster", "namespace", "job", "workspace"] {
            let variable = try #require(variables.first { $0.name == name }, "no \(name) variable")
            #expect(variable.type == "query")
            #expect(variable.datasource?.uid == "${datasource}")
            #expect(variable.includeAll == true, "\(name) has no All option")
            #expect(variable.multi == true, "\(name) is not multi-value")
            // All must also match series without the label (no cluster label, say).
            #expect(variable.allValue == ".*", "\(name)'s All value is not .*")
            let query = variable.query?.text ?? ""
            #expect(query.hasPrefix("label_values("), "\(name): \(query)")
            #expect(query.hasSuffix(", \(name))"), "\(name) does not list its own label: \(query)")
            #expect(metricNames(in: query).isSubset(of: exporterSeriesNames), "unknown metric in \(query)")
        }
        // Each variable narrows the ones after it.
        let workspaceQuery = variables.first { $0.name == "workspace" }?.query?.text ?? ""
        for before in ["$cluster", "$namespace", "$job"] {
            #expect(workspaceQuery.contains(before), "the workspace variable ignores \(before)")
        }
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
                for variable in ["$workspace", "$job", "$namespace", "$cluster"] {
                    #expect(expr.contains(variable), "a query of \(title) ignores \(variable): \(expr)")
                }
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
