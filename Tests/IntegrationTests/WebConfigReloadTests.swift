import Foundation
import Testing

/// --web.config.file followed while running: users and certificates change without a restart.
@Suite("Web config reload", .serialized)
struct WebConfigReloadTests {
    final class Directory {
        let url: URL
        init() throws {
            url = FileManager.default.temporaryDirectory.appendingPathComponent("web-config-reload-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        }
        func path(_ name: String) -> String { url.appendingPathComponent(name).path }
        /// Writes a new file and renames it over `name`, so the exporter never reads half a file.
        @discardableResult
        func write(_ name: String, _ text: String) throws -> String {
            try text.write(toFile: path(name), atomically: true, encoding: .utf8)
            return path(name)
        }
        /// A self-signed certificate for 127.0.0.1 and its key in the directory `name`.
        func makeCertificate(in name: String) throws {
            try FileManager.default.createDirectory(atPath: path(name), withIntermediateDirectories: true)
            let result = try runTool(
                "openssl",
                [
                    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", path("\(name)/key.pem"), "-out", path("\(name)/cert.pem"),
                ],
                input: []
            )
            guard result.status == 0 else { throw TestFailure("openssl failed: \(result.output)") }
        }
        /// Points the symlink `link` at `target` atomically, as the kubelet updates a mounted
        /// Secret (a new symlink renamed over the old one).
        func pointLink(_ link: String, to target: String) throws {
            let temporary = path(".\(link)-\(UUID().uuidString)")
            guard symlink(target, temporary) == 0, rename(temporary, path(link)) == 0 else {
                throw TestFailure("cannot point \(link) at \(target): errno \(errno)")
            }
        }
        deinit { try? FileManager.default.removeItem(at: url) }
    }

    static let hash = SecureListenerTests.hash

    static func lines(_ process: ChildProcess, containing text: String) -> Int {
        process.stderr.split(separator: "\n").filter { $0.contains(text) }.count
    }

    @Test("Changed basic_auth_users apply without a restart; a broken file keeps them and is logged once; no users means no auth")
    func users() async throws {
        let directory = try Directory()
        let webConfig = try directory.write("web.yml", "basic_auth_users:\n  alice: '\(Self.hash)'\n")
        let simulator = try await SimulatorProcess(batches: 3, active: 1)
        let exporter = try await ExporterProcess(polling: simulator, arguments: ["--web.config.file", webConfig])
        defer { exporter.terminate(); simulator.terminate() }
        let url = "http://127.0.0.1:\(exporter.port)/metrics"
        #expect(try SecureListenerTests.status(url, user: "alice:s3cret") == 200)
        #expect(try SecureListenerTests.status(url, user: "bob:s3cret") == 401)

        // alice is replaced by bob; alice's password was verified (and cached) before.
        try directory.write("web.yml", "basic_auth_users:\n  bob: '\(Self.hash)'\n")
        try await eventually("bob to be let in") { try SecureListenerTests.status(url, user: "bob:s3cret") == 200 }
        #expect(try SecureListenerTests.status(url, user: "alice:s3cret") == 401, "a removed user is refused at once")
        // Logged before bob's answer was sent; the pipe may deliver it a moment later.
        try await eventually("the reload to be logged") { Self.lines(exporter.process, containing: "Web configuration reloaded") == 1 }

        // A file that does not parse keeps bob, and says so once.
        try directory.write("web.yml", "basic_auth_users:\n  bob: not-a-bcrypt-hash\n")
        // The files are looked at when requests come (as exporter-toolkit does), so keep asking.
        try await eventually("the broken file to be reported") {
            let status = try SecureListenerTests.status(url, user: "bob:s3cret")
            guard status == 200 else { throw TestFailure("bob got \(status) while the broken file was in place") }
            return exporter.process.stderr.contains("Web configuration not reloaded; keeping the running one")
        }
        for _ in 0..<5 {
            #expect(try SecureListenerTests.status(url, user: "bob:s3cret") == 200)
            #expect(try SecureListenerTests.status(url, user: "alice:s3cret") == 401)
        }
        #expect(exporter.process.stderr.contains("must be a bcrypt hash"))
        #expect(Self.lines(exporter.process, containing: "Web configuration not reloaded") == 1)

        // No users at all: the metrics are open, as with no basic_auth_users at start.
        try directory.write("web.yml", "http_server_config:\n  http2: false\n")
        try await eventually("auth to be dropped") { try SecureListenerTests.status(url) == 200 }
        #expect(exporter.process.isRunning)
    }

    @Test("A renewed certificate (Secret-style symlink swap) is served to new connections; TLS cannot be turned off by a reload")
    func certificates() async throws {
        let directory = try Directory()
        try directory.makeCertificate(in: "v1")
        try directory.makeCertificate(in: "v2")
        try directory.pointLink("live", to: "v1")
        let webConfig = try directory.write("web.yml", "tls_server_config:\n  cert_file: live/cert.pem\n  key_file: live/key.pem\n")
        let simulator = try await SimulatorProcess(batches: 3, active: 1)
        let exporter = try await ExporterProcess(polling: simulator, arguments: ["--web.config.file", webConfig])
        defer { exporter.terminate(); simulator.terminate() }
        let url = "https://127.0.0.1:\(exporter.port)/metrics"
        let first = directory.path("v1/cert.pem")
        let second = directory.path("v2/cert.pem")
        #expect(try SecureListenerTests.status(url, cacert: first) == 200)
        #expect(try SecureListenerTests.status(url, cacert: second) == 0, "a client trusting only the next certificate is refused")

        try directory.pointLink("live", to: "v2")
        try await eventually("the renewed certificate to be served") { try SecureListenerTests.status(url, cacert: second) == 200 }
        #expect(try SecureListenerTests.status(url, cacert: first) == 0)

        // Removing tls_server_config would switch the scheme under the scrapers: refused, kept.
        try directory.write("web.yml", "basic_auth_users:\n  alice: '\(Self.hash)'\n")
        try await eventually("the refusal to be logged") {
            _ = try SecureListenerTests.status(url, cacert: second)
            return exporter.process.stderr.contains("turning TLS on or off needs a restart")
        }
        #expect(try SecureListenerTests.status(url, cacert: second) == 200, "still HTTPS, still without auth")
        #expect(exporter.process.isRunning)
    }
}
