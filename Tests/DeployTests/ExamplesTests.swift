import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

// The example files in deploy/examples/ must load in the real exporter, not only parse as
// YAML: every key they use must be one the binary accepts, every value valid. The binary is
// the one SwiftPM built beside this test bundle (`swift build --build-tests` builds it).
//
// exporter.yml names key files under /etc/anthropic-batches-exporter/keys/; the tests point
// those at temporary files (and set the variables of `api_key_env` entries), start the
// exporter against an address where nothing listens, and wait until it serves. web-config.yml
// gets a self-signed certificate made by `openssl` and is checked with `curl` over TLS with
// its example password; both tools are on the project's machine image, and a missing one
// fails the test with a message, it does not skip it.

// MARK: - Files and tools

/// The repository root, three levels above this file (Tests/DeployTests/ExamplesTests.swift).
private let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent()
    .deletingLastPathComponent()
    .deletingLastPathComponent()

private let exporterExample = "deploy/examples/exporter.yml"
private let webConfigExample = "deploy/examples/web-config.yml"

/// Where SwiftPM put the products of this build: next to the test bundle's runner.
private var exporterBinary: URL {
    URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        .deletingLastPathComponent()
        .appendingPathComponent("anthropic-batches-exporter")
}

private struct ExampleFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

private func readExample(_ relativePath: String) throws -> String {
    try String(contentsOf: repositoryRoot.appendingPathComponent(relativePath), encoding: .utf8)
}

private func scratchDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("ExamplesTests-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

private func tool(_ name: String, package: String) throws -> URL {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
    for directory in path.split(separator: ":") where !directory.isEmpty {
        let candidate = URL(fileURLWithPath: String(directory)).appendingPathComponent(name)
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
    }
    throw ExampleFailure("\(name) is not installed (not found on PATH): apt-get install -y \(package)")
}

/// The values of `key: value` lines in a YAML file, in file order, comments and quotes aside.
/// The examples keep one key per line, which is all this needs.
private func values(of key: String, in text: String) -> [String] {
    text.split(separator: "\n").compactMap { line -> String? in
        var trimmed = line.drop { $0 == " " }
        if trimmed.hasPrefix("- ") { trimmed = trimmed.dropFirst(2) }
        guard trimmed.hasPrefix(key + ":") else { return nil }
        var value = trimmed.dropFirst(key.count + 1).trimmingCharacters(in: .whitespaces)
        if let hash = value.range(of: " #") { value = value[..<hash.lowerBound].trimmingCharacters(in: .whitespaces) }
        if value.count >= 2, let first = value.first, first == value.last, first == "\"" || first == "'" {
            value = String(value.dropFirst().dropLast())
        }
        return value
    }
}

// MARK: - Running the exporter

/// The exporter as a child process with its output in files (a chatty child can never block
/// on a full pipe). `stop()` sends SIGTERM, then SIGKILL after a grace period.
private final class ExporterProcess {
    let process = Process()
    let stderrURL: URL
    let stdoutURL: URL
    private let handles: [FileHandle]

    init(arguments: [String], environment: [String: String], scratch: URL) throws {
        stderrURL = scratch.appendingPathComponent("exporter.stderr")
        stdoutURL = scratch.appendingPathComponent("exporter.stdout")
        try Data().write(to: stderrURL)
        try Data().write(to: stdoutURL)
        process.executableURL = exporterBinary
        process.arguments = arguments
        process.currentDirectoryURL = repositoryRoot
        // Only what the test sets: nothing from the developer's shell (an ANTHROPIC_API_KEY,
        // say) reaches the child.
        var childEnvironment = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"]
        childEnvironment.merge(environment) { $1 }
        process.environment = childEnvironment
        process.standardInput = FileHandle.nullDevice
        handles = [try FileHandle(forWritingTo: stdoutURL), try FileHandle(forWritingTo: stderrURL)]
        process.standardOutput = handles[0]
        process.standardError = handles[1]
        guard FileManager.default.isExecutableFile(atPath: exporterBinary.path) else {
            throw ExampleFailure("no exporter binary at \(exporterBinary.path): build with `swift build --build-tests`")
        }
        try process.run()
    }

    var stderr: String { (try? String(contentsOf: stderrURL, encoding: .utf8)) ?? "" }

    /// The first stderr line containing `marker`, waiting up to `timeout` for it.
    func waitForLine(containing marker: String, timeout: Duration = .seconds(30)) async throws -> String {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let line = stderr.split(separator: "\n").first(where: { $0.contains(marker) }) { return String(line) }
            if !process.isRunning {
                throw ExampleFailure("the exporter exited with \(process.terminationStatus) before logging \"\(marker)\": \(stderr)")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw ExampleFailure("the exporter did not log \"\(marker)\" within \(timeout): \(stderr)")
    }

    /// Waits for the exporter to exit on its own; its status.
    func waitForExit(timeout: Duration = .seconds(30)) async throws -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            guard ContinuousClock.now < deadline else { throw ExampleFailure("the exporter did not exit within \(timeout)") }
            try await Task.sleep(for: .milliseconds(50))
        }
        return process.terminationStatus
    }

    /// SIGTERM, then SIGKILL if it is still running after `grace`. Synchronous, for `defer`.
    func stop(grace: Duration = .seconds(5)) {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        let deadline = ContinuousClock.now + grace
        while process.isRunning, ContinuousClock.now < deadline { usleep(10_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
        }
        process.waitUntilExit()
    }

    deinit {
        stop(grace: .zero)
        for handle in handles { try? handle.close() }
    }
}

/// Runs a tool to completion; its exit status and combined output.
private func runTool(_ executable: URL, _ arguments: [String], scratch: URL) throws -> (status: Int32, output: String) {
    let outputURL = scratch.appendingPathComponent("\(executable.lastPathComponent)-\(UUID().uuidString).out")
    try Data().write(to: outputURL)
    let handle = try FileHandle(forWritingTo: outputURL)
    defer { try? handle.close() }
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    process.standardInput = FileHandle.nullDevice
    process.standardOutput = handle
    process.standardError = handle
    try process.run()
    process.waitUntilExit()
    return (process.terminationStatus, (try? String(contentsOf: outputURL, encoding: .utf8)) ?? "")
}

/// exporter.yml with every `api_key_file` pointed at a temporary file holding a key, written
/// into `scratch`; and the environment its `api_key_env` entries need.
private func runnableExporterConfig(in scratch: URL) throws -> (config: URL, environment: [String: String], workspaces: [String]) {
    var text = try readExample(exporterExample)
    let keyFiles = values(of: "api_key_file", in: text)
    let variables = values(of: "api_key_env", in: text)
    let workspaces = values(of: "name", in: text)
    #expect(!keyFiles.isEmpty, "the example has no api_key_file entry")
    #expect(!variables.isEmpty, "the example has no api_key_env entry")
    let keys = scratch.appendingPathComponent("keys", isDirectory: true)
    try FileManager.default.createDirectory(at: keys, withIntermediateDirectories: true)
    for (index, path) in keyFiles.enumerated() {
        let copy = keys.appendingPathComponent("key-\(index)")
        // Surrounding whitespace is part of what the exporter must tolerate in a key file.
        try "sk-ant-example-\(index)\n".write(to: copy, atomically: true, encoding: .utf8)
        text = text.replacingOccurrences(of: "api_key_file: \(path)", with: "api_key_file: \(copy.path)")
    }
    let config = scratch.appendingPathComponent("exporter.yml")
    try text.write(to: config, atomically: true, encoding: .utf8)
    let environment = Dictionary(uniqueKeysWithValues: variables.map { ($0, "sk-ant-example-env-\($0)") })
    return (config, environment, workspaces)
}

// MARK: - Tests

@Suite("deploy/examples load in the exporter")
struct ExamplesTests {
    @Test("exporter.yml starts the exporter with every workspace once its keys exist")
    func exporterConfigLoads() async throws {
        let scratch = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let (config, environment, workspaces) = try runnableExporterConfig(in: scratch)
        #expect(workspaces.count == 3, "the example should show three workspaces, found \(workspaces)")

        let exporter = try ExporterProcess(
            arguments: [
                "--config.file", config.path,
                // Nothing listens on port 1: polls fail, which does not stop the exporter
                // from serving; this test is about the file loading.
                "--api-base-url", "http://127.0.0.1:1",
                "--web.listen-address", "127.0.0.1:0",
            ],
            environment: environment,
            scratch: scratch
        )
        defer { exporter.stop() }

        let line = try await exporter.waitForLine(containing: "msg=Listening")
        #expect(line.contains("workspaces=\(workspaces.joined(separator: ","))"), "Listening line: \(line)")
        #expect(!exporter.stderr.contains("level=error"), "errors at start-up: \(exporter.stderr)")
    }

    @Test("exporter.yml as shipped exits 2 naming the first key file that is missing")
    func exporterConfigNamesMissingKeyFile() async throws {
        let text = try readExample(exporterExample)
        let firstKeyFile = try #require(values(of: "api_key_file", in: text).first)
        try #require(
            !FileManager.default.fileExists(atPath: firstKeyFile),
            "\(firstKeyFile) exists on this machine, so the example cannot fail on it"
        )
        let scratch = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }

        let exporter = try ExporterProcess(
            arguments: [
                "--config.file", exporterExample,
                "--api-base-url", "http://127.0.0.1:1",
                "--web.listen-address", "127.0.0.1:0",
            ],
            environment: [:],
            scratch: scratch
        )
        defer { exporter.stop() }

        let status = try await exporter.waitForExit()
        #expect(status == 2)
        let message = exporter.stderr
        #expect(message.contains("\(exporterExample):"), "the message should name the config file and line: \(message)")
        #expect(message.contains("api_key_file \(firstKeyFile) cannot be read"), "message: \(message)")
        #expect(message.split(separator: "\n").count == 1, "one line expected: \(message)")
    }

    @Test("web-config.yml serves TLS and accepts its example user and password")
    func webConfigLoads() async throws {
        let openssl = try tool("openssl", package: "openssl")
        let curl = try tool("curl", package: "curl")
        let scratch = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }

        // A self-signed certificate for 127.0.0.1 where the example expects its files.
        var text = try readExample(webConfigExample)
        let certPath = try #require(values(of: "cert_file", in: text).first)
        let keyPath = try #require(values(of: "key_file", in: text).first)
        let user = try #require(firstUser(in: text), "no user under basic_auth_users")
        let cert = scratch.appendingPathComponent("tls.crt")
        let key = scratch.appendingPathComponent("tls.key")
        let made = try runTool(
            openssl,
            [
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key.path, "-out", cert.path,
            ],
            scratch: scratch
        )
        try #require(made.status == 0, "openssl failed: \(made.output)")
        text = text.replacingOccurrences(of: "cert_file: \(certPath)", with: "cert_file: \(cert.path)")
        text = text.replacingOccurrences(of: "key_file: \(keyPath)", with: "key_file: \(key.path)")
        let webConfig = scratch.appendingPathComponent("web-config.yml")
        try text.write(to: webConfig, atomically: true, encoding: .utf8)
        let (config, environment, _) = try runnableExporterConfig(in: scratch)

        let exporter = try ExporterProcess(
            arguments: [
                "--config.file", config.path,
                "--web.config.file", webConfig.path,
                "--api-base-url", "http://127.0.0.1:1",
                "--web.listen-address", "127.0.0.1:0",
            ],
            environment: environment,
            scratch: scratch
        )
        defer { exporter.stop() }

        let line = try await exporter.waitForLine(containing: "msg=Listening")
        #expect(line.contains("tls=true"), "Listening line: \(line)")
        #expect(line.contains("basic_auth=true"), "Listening line: \(line)")
        let address = try #require(line.firstMatch(of: /address=(127\.0\.0\.1:\d+)/)?.1, "no address in: \(line)")
        let url = "https://\(address)/metrics"

        func status(_ extra: [String]) throws -> String {
            let result = try runTool(
                curl,
                [
                    "--silent", "--show-error", "--max-time", "10", "--cacert", cert.path, "--output", "/dev/null",
                    "--write-out", "%{http_code}",
                ] + extra + [url],
                scratch: scratch
            )
            return result.output.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        // The example's password is documented in the file as "changeme".
        #expect(try status(["--user", "\(user):changeme"]) == "200")
        #expect(try status([]) == "401")
        #expect(try status(["--user", "\(user):wrong"]) == "401")
    }
}

/// The first user name under `basic_auth_users:` (the line after it that is not a comment).
private func firstUser(in text: String) -> String? {
    let lines = text.split(separator: "\n")
    guard let start = lines.firstIndex(where: { $0.hasPrefix("basic_auth_users:") }) else { return nil }
    for line in lines[(start + 1)...] {
        let trimmed = line.drop { $0 == " " }
        if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
        guard let colon = trimmed.firstIndex(of: ":") else { return nil }
        return String(trimmed[..<colon])
    }
    return nil
}
