import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

// deploy/kubernetes/sharded/ must render with kustomize and must split its one config file
// over the StatefulSet's pods as the real exporter does: every pod started with the
// manifest's flags and its POD_NAME polls a part, and together they poll every workspace once.

private let root: URL = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
private let layout = "deploy/kubernetes/sharded"

private struct LayoutFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

private func read(_ relativePath: String) throws -> String {
    try String(contentsOf: root.appendingPathComponent(relativePath), encoding: .utf8)
}

/// Runs a tool from PATH to completion; its status and combined output.
private func run(_ tool: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
    guard
        let executable = path.split(separator: ":").map({ URL(fileURLWithPath: String($0)).appendingPathComponent(tool) })
            .first(where: { FileManager.default.isExecutableFile(atPath: $0.path) })
    else { throw LayoutFailure("\(tool) is not installed (not found on PATH)") }
    let output = FileManager.default.temporaryDirectory.appendingPathComponent("sharded-\(UUID().uuidString).out")
    try Data().write(to: output)
    defer { try? FileManager.default.removeItem(at: output) }
    let handle = try FileHandle(forWritingTo: output)
    defer { try? handle.close() }
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    process.currentDirectoryURL = root
    process.standardInput = FileHandle.nullDevice
    process.standardOutput = handle
    process.standardError = handle
    try process.run()
    process.waitUntilExit()
    return (process.terminationStatus, (try? String(contentsOf: output, encoding: .utf8)) ?? "")
}

/// The list items (`- value`) directly under `key:` in a YAML text, at the key's indentation + 2.
private func listItems(under key: String, in text: String) -> [String] {
    let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    guard let start = lines.firstIndex(where: { $0.trimmingCharacters(in: .whitespaces) == "\(key):" }) else { return [] }
    let indent = lines[start].prefix { $0 == " " }.count
    var items: [String] = []
    for line in lines[(start + 1)...] {
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
        let lineIndent = line.prefix { $0 == " " }.count
        if lineIndent <= indent && !trimmed.hasPrefix("- ") { break }
        if lineIndent < indent { break }
        if trimmed.hasPrefix("- ") && lineIndent <= indent + 2 { items.append(String(trimmed.dropFirst(2))) }
    }
    return items
}

/// The literal block `key: |` of the ConfigMap, unindented.
private func literalBlock(_ key: String, in text: String) throws -> String {
    let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    guard let start = lines.firstIndex(where: { $0.trimmingCharacters(in: .whitespaces) == "\(key): |" }) else {
        throw LayoutFailure("no \(key): | block")
    }
    let keyIndent = lines[start].prefix { $0 == " " }.count
    let body = lines[(start + 1)...].prefix { $0.trimmingCharacters(in: .whitespaces).isEmpty || $0.prefix { $0 == " " }.count > keyIndent }
    let indent = body.filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }.map { $0.prefix { $0 == " " }.count }.min() ?? 0
    return body.map { String($0.dropFirst(min(indent, $0.count))) }.joined(separator: "\n")
}

@Suite("deploy/kubernetes/sharded")
struct ShardedLayoutTests {
    @Test("kubectl kustomize renders the layout with one config and the shard flags")
    func renders() throws {
        let result = try run("kubectl", ["kustomize", layout])
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("kind: StatefulSet"))
        #expect(result.output.contains("--shard.from-pod-name"))
        #expect(result.output.contains("fieldPath: metadata.name"))
        #expect(!result.output.contains("shard-0.yml"), "no hand-split files any more")
    }

    @Test("--shard.count equals replicas, the pod name reaches POD_NAME, and the config file is the ConfigMap's")
    func consistent() throws {
        let statefulSet = try read("\(layout)/statefulset.yaml")
        let configMap = try read("\(layout)/configmap.yaml")
        let replicas = try #require(
            statefulSet.split(separator: "\n").first { $0.trimmingCharacters(in: .whitespaces).hasPrefix("replicas:") }
                .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) }
        )
        let args = listItems(under: "args", in: statefulSet)
        #expect(args.contains("--shard.count=\(replicas)"), "\(args)")
        #expect(args.contains("--shard.from-pod-name"))
        #expect(!args.contains { $0.hasPrefix("--shard.index") })
        #expect(statefulSet.contains("- name: POD_NAME\n              valueFrom:\n                fieldRef:\n                  fieldPath: metadata.name"))
        #expect(args.contains("--config.file=/etc/anthropic-batches-exporter/exporter.yml"))
        #expect(configMap.contains("  exporter.yml: |"))
        #expect(statefulSet.contains("mountPath: /etc/anthropic-batches-exporter\n"))
    }

    @Test("Every pod of the StatefulSet, started with the manifest's flags, polls its part; together every workspace once")
    func podsSplitTheConfig() async throws {
        let statefulSet = try read("\(layout)/statefulset.yaml")
        var config = try literalBlock("exporter.yml", in: try read("\(layout)/configmap.yaml"))
        let replicas = try #require(
            statefulSet.split(separator: "\n").first { $0.trimmingCharacters(in: .whitespaces).hasPrefix("replicas:") }
                .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) }
        )
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("sharded-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        // The keys where the test can write them.
        var names: [String] = []
        for line in config.split(separator: "\n") {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("- name: ") { names.append(String(trimmed.dropFirst("- name: ".count))) }
        }
        let keyDirectory = "/etc/anthropic-batches-exporter/keys/"
        config = config.replacingOccurrences(of: keyDirectory, with: scratch.path + "/")
        for name in names { try "sk-ant-example-\(name)\n".write(to: scratch.appendingPathComponent(name), atomically: true, encoding: .utf8) }
        let configPath = scratch.appendingPathComponent("exporter.yml").path
        try config.write(toFile: configPath, atomically: true, encoding: .utf8)

        let binary = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
            .appendingPathComponent("anthropic-batches-exporter")
        let args =
            listItems(under: "args", in: statefulSet).map { argument -> String in
                if argument.hasPrefix("--config.file=") { return "--config.file=\(configPath)" }
                if argument.hasPrefix("--web.listen-address=") { return "--web.listen-address=127.0.0.1:0" }
                return argument
            } + ["--api-base-url", "http://127.0.0.1:1"]

        var polled: [[String]] = []
        for ordinal in 0...replicas {
            let process = Process()
            process.executableURL = binary
            process.arguments = args
            process.environment = ["PATH": "/usr/bin:/bin", "POD_NAME": "anthropic-batches-exporter-\(ordinal)"]
            let errorFile = scratch.appendingPathComponent("pod-\(ordinal).stderr")
            try Data().write(to: errorFile)
            let handle = try FileHandle(forWritingTo: errorFile)
            defer { try? handle.close() }
            process.standardError = handle
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            defer {
                if process.isRunning { kill(process.processIdentifier, SIGKILL) }
                process.waitUntilExit()
            }
            let deadline = ContinuousClock.now + .seconds(30)
            var listening: [String: Any]?
            while ContinuousClock.now < deadline, listening == nil, process.isRunning {
                let text = (try? String(contentsOf: errorFile, encoding: .utf8)) ?? ""
                listening = text.split(separator: "\n").lazy
                    .compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
                    .first { $0["msg"] as? String == "Listening" }
                if listening == nil { try await Task.sleep(for: .milliseconds(50)) }
            }
            let stderr = (try? String(contentsOf: errorFile, encoding: .utf8)) ?? ""
            if ordinal == replicas {
                // One pod more than --shard.count: refused, so a replicas/--shard.count mismatch is loud.
                process.waitUntilExit()
                #expect(process.terminationStatus == 2, "\(stderr)")
                #expect(stderr.contains("--shard.index must be between 0 and --shard.count - 1"), "\(stderr)")
                continue
            }
            let line = try #require(listening, "pod \(ordinal) did not start: \(stderr)")
            #expect(line["shard"] as? String == "\(ordinal)/\(replicas)")
            let workspaces = (line["workspaces"] as? String ?? "").split(separator: ",").map(String.init)
            #expect(!workspaces.isEmpty, "the example's workspaces should give every pod some work")
            polled.append(workspaces)
        }
        #expect(polled.count == replicas)
        #expect(Set(polled.joined()) == Set(names), "every workspace is polled")
        #expect(polled.joined().count == names.count, "no workspace is polled twice")
    }
}
