import Foundation
import Testing

/// Key files followed while the exporter runs: rotated keys take effect with no restart or
/// signal, a broken file keeps the last good key.
@Suite("Key rotation", .serialized)
struct KeyRotationTests {
    /// Writes `text` to a new file beside `path` and renames it over `path`: a new inode, as
    /// Kubernetes does when it updates a mounted Secret.
    static func renameOver(_ path: String, _ text: String) throws {
        let temporary = path + ".new-\(UUID().uuidString)"
        try Data(text.utf8).write(to: URL(fileURLWithPath: temporary))
        guard rename(temporary, path) == 0 else { throw TestFailure("rename over \(path) failed: errno \(errno)") }
    }

    /// Truncates and rewrites the file itself (same inode), as an editor or `echo > file` does.
    static func writeInPlace(_ path: String, _ text: String) throws {
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.truncate(atOffset: 0)
        try handle.write(contentsOf: Data(text.utf8))
        try handle.close()
    }

    static func series(_ scrape: Scrape, _ family: String, _ workspace: String, _ extra: String = "") -> Double {
        scrape[#"\#(family){workspace="\#(workspace)"\#(extra)}"#] ?? 0
    }

    static func authErrors(_ exporter: ExporterProcess, _ workspace: String) throws -> Double {
        series(try exporter.scrape(), "anthropic_batches_exporter_poll_errors_total", workspace, #",reason="auth""#)
    }

    static func lines(_ process: ChildProcess, containing text: String) -> Int {
        process.stderr.split(separator: "\n").filter { $0.contains(text) }.count
    }

    @Test("--api-key-file replaced by rename while the API starts refusing the old key: polls recover with no signal")
    func renamedSecret() async throws {
        let oldKey = "sk-ant-old-\(UInt32.random(in: 0...UInt32.max))"
        let newKey = "sk-ant-new-\(UInt32.random(in: 0...UInt32.max))"
        let simulator = try await SimulatorProcess(batches: 5, active: 1, apiKey: oldKey)
        let directory = try MultiWorkspaceTests.ConfigDirectory()
        let keyFile = try directory.write("key", oldKey + "\n")
        let exporter = try await ExporterProcess(
            arguments: [
                "--api-key-file", keyFile, "--api-base-url", simulator.baseURL, "--poll-interval", "1s",
                "--api.max-requests-per-minute", "0", "--api.max-retries", "0", "--log.level", "debug",
            ],
            environment: [:]
        )
        defer { exporter.terminate(); simulator.terminate() }
        try await eventually("a first successful poll") {
            Self.series(try exporter.scrape(), "anthropic_batches_exporter_poll_success", "default") == 1
        }
        #expect(Self.series(try exporter.scrape(), "anthropic_batches_exporter_api_key_file_errors_total", "default") == 0)

        // The key is rotated at the API first: the exporter's polls are refused...
        try simulator.control("POST", "/_sim/api_key?key=\(newKey)")
        try await eventually("the old key to be refused") { try Self.authErrors(exporter, "default") >= 1 }
        // ...then the Secret's file follows, swapped in as Kubernetes does. No signal is sent.
        let rotatedAt = Date().timeIntervalSince1970
        try Self.renameOver(keyFile, newKey + "\n")
        let refusedBefore = try Self.authErrors(exporter, "default")
        try await eventually("polls to succeed again with the new key") {
            Self.series(try exporter.scrape(), "anthropic_batches_exporter_last_success_timestamp_seconds", "default") > rotatedAt
        }
        // At most the poll already under way and one that came within a second of the last look
        // at the file are refused after the swap: the next one reads the new file.
        #expect(try Self.authErrors(exporter, "default") - refusedBefore <= 2)
        try await eventually("the new key to be logged (without the key)") {
            Self.lines(exporter.process, containing: "API key file changed; using the new key") == 1
        }
        #expect(Self.series(try exporter.scrape(), "anthropic_batches_exporter_api_key_file_errors_total", "default") == 0)
        let newKeyRequests = try simulator.requestLog().filter { $0["key_matched"] as? Bool == true }.count
        #expect(newKeyRequests >= 1)

        // POST /-/reload in single-workspace mode re-reads the key file at once.
        let response = try RawHTTP.request("POST", port: exporter.port, path: "/-/reload")
        #expect(response.status == 200, "\(response.text)")
        #expect(response.text.contains("API key file re-read"))
        for key in [oldKey, newKey] {
            #expect(!exporter.process.stderr.contains(key), "the key must never be logged")
            #expect(!(try exporter.scrape().text.contains(key)), "the key must never be exported")
        }
    }

    @Test("A config's key file written in place is followed; emptied, it keeps the last key, counts an error and logs once")
    func writtenInPlaceThenEmptied() async throws {
        let firstKey = "sk-ant-first-\(UInt32.random(in: 0...UInt32.max))"
        let secondKey = "sk-ant-second-\(UInt32.random(in: 0...UInt32.max))"
        let simulator = try await SimulatorProcess(batches: 4, active: 1, apiKey: firstKey)
        let directory = try MultiWorkspaceTests.ConfigDirectory()
        let keyFile = try directory.write("rotating.key", firstKey)
        let config = try directory.write(
            "exporter.yml",
            """
            workspaces:
              - name: rotating
                api_key_file: \(keyFile)
              - name: fixed
                api_key_env: FIXED_KEY
            """
        )
        let exporter = try await ExporterProcess(
            arguments: [
                "--config.file", config, "--api-base-url", simulator.baseURL, "--poll-interval", "500ms",
                "--api.max-requests-per-minute", "0", "--api.max-retries", "0",
            ],
            environment: ["FIXED_KEY": firstKey]
        )
        defer { exporter.terminate(); simulator.terminate() }
        try await eventually("a first successful poll") {
            Self.series(try exporter.scrape(), "anthropic_batches_exporter_poll_success", "rotating") == 1
        }
        let start = try exporter.scrape()
        #expect(Self.series(start, "anthropic_batches_exporter_api_key_file_errors_total", "rotating") == 0)
        #expect(!start.text.contains(#"anthropic_batches_exporter_api_key_file_errors_total{workspace="fixed"}"#), "no file, no series")

        // Rotated at the API and written in place in the file.
        try simulator.control("POST", "/_sim/api_key?key=\(secondKey)")
        let rotatedAt = Date().timeIntervalSince1970
        try Self.writeInPlace(keyFile, secondKey + "\n")
        try await eventually("polls to succeed with the key written in place") {
            let scrape = try exporter.scrape()
            return Self.series(scrape, "anthropic_batches_exporter_last_success_timestamp_seconds", "rotating") > rotatedAt
                && Self.lines(exporter.process, containing: "API key file changed; using the new key") == 1
        }
        // The workspace whose key came from the environment now fails: nothing changed for it.
        try await eventually("the environment key to be refused") { try Self.authErrors(exporter, "fixed") >= 1 }

        // Emptied: the last good key stays in use, one error is counted, one warning logged.
        try Self.writeInPlace(keyFile, "")
        try await eventually("the emptied file to be counted") {
            Self.series(try exporter.scrape(), "anthropic_batches_exporter_api_key_file_errors_total", "rotating") == 1
        }
        let refusedBefore = try Self.authErrors(exporter, "rotating")
        let pollsBefore = Self.series(try exporter.scrape(), "anthropic_batches_exporter_poll_duration_seconds_count", "rotating")
        try await eventually("several more polls with the kept key") {
            Self.series(try exporter.scrape(), "anthropic_batches_exporter_poll_duration_seconds_count", "rotating") >= pollsBefore + 4
        }
        let scrape = try exporter.scrape()
        #expect(Self.series(scrape, "anthropic_batches_exporter_poll_success", "rotating") == 1)
        #expect(try Self.authErrors(exporter, "rotating") == refusedBefore, "no poll was refused: the last good key was kept")
        #expect(Self.series(scrape, "anthropic_batches_exporter_api_key_file_errors_total", "rotating") == 1, "one bad version, counted once")
        #expect(Self.lines(exporter.process, containing: "API key file cannot be used; keeping the last good key") == 1)
        #expect(exporter.process.stderr.contains("problem=\"is empty\"") || exporter.process.stderr.contains("problem=is empty"))

        // A reload re-reads it even though the configuration did not change: still empty, one
        // more failed read, still one warning in the log.
        let response = try RawHTTP.request("POST", port: exporter.port, path: "/-/reload")
        #expect(response.status == 200, "\(response.text)")
        #expect(response.text.contains("unchanged: fixed,rotating"), "\(response.text)")
        // Renders are coalesced to one a second: wait for the one with the new count.
        try await eventually("the forced re-read to be counted") {
            Self.series(try exporter.scrape(), "anthropic_batches_exporter_api_key_file_errors_total", "rotating") == 2
        }
        #expect(Self.lines(exporter.process, containing: "API key file cannot be used; keeping the last good key") == 1)

        // Written again: back to normal, and the recovery is logged.
        try Self.writeInPlace(keyFile, secondKey)
        try await eventually("the repaired file to be read") {
            exporter.process.stderr.contains("API key file is readable again; the key in use is unchanged")
        }
        for key in [firstKey, secondKey] {
            #expect(!exporter.process.stderr.contains(key), "the key must never be logged")
        }
    }
}
