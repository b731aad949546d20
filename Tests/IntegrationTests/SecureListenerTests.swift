import Foundation
import Testing

/// TLS and basic auth from --web.config.file, with a certificate made by the openssl CLI.
@Suite("TLS and basic auth", .serialized)
struct SecureListenerTests {
    /// A temporary directory with a self-signed certificate for 127.0.0.1 and a web config.
    final class Materials {
        let directory: URL
        init(webConfig: String) throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("secure-listener-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let openssl = try runTool(
                "openssl",
                [
                    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", directory.appendingPathComponent("key.pem").path, "-out", directory.appendingPathComponent("cert.pem").path,
                ],
                input: []
            )
            guard openssl.status == 0 else { throw TestFailure("openssl failed: \(openssl.output)") }
            try webConfig.write(to: directory.appendingPathComponent("web.yml"), atomically: true, encoding: .utf8)
        }
        var configPath: String { directory.appendingPathComponent("web.yml").path }
        var certPath: String { directory.appendingPathComponent("cert.pem").path }
        deinit { try? FileManager.default.removeItem(at: directory) }
    }

    // bcrypt (cost 10) of "s3cret".
    static let hash = "$2b$10$pDi60p8kJJWgAfczU9/.Xe88wzmIGDwmZqpeHmjQIIRzvT3EF0ZwO"

    /// HTTP status from curl (0 when no HTTP answer came, e.g. a TLS failure).
    static func status(_ url: String, cacert: String? = nil, user: String? = nil) throws -> Int {
        var arguments = ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10", url]
        if let cacert { arguments += ["--cacert", cacert] }
        if let user { arguments += ["-u", user] }
        let result = try runTool("curl", arguments, input: [])
        return Int(String(decoding: result.stdout, as: UTF8.self)) ?? -1
    }

    @Test("HTTPS with the configured certificate; basic auth right, wrong, unknown user and missing")
    func tlsAndAuth() async throws {
        let materials = try Materials(webConfig: "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\nbasic_auth_users:\n  alice: '\(Self.hash)'\n")
        let simulator = try await SimulatorProcess(batches: 10, active: 2)
        let exporter = try await ExporterProcess(polling: simulator, arguments: ["--web.config.file", materials.configPath])
        defer { exporter.terminate(); simulator.terminate() }
        let url = "https://127.0.0.1:\(exporter.port)/metrics"

        #expect(try Self.status(url, cacert: materials.certPath, user: "alice:s3cret") == 200)
        #expect(try Self.status(url, cacert: materials.certPath, user: "alice:wrong") == 401)
        #expect(try Self.status(url, cacert: materials.certPath, user: "mallory:s3cret") == 401)
        #expect(try Self.status(url, cacert: materials.certPath) == 401)
        #expect(try Self.status("https://127.0.0.1:\(exporter.port)/-/healthy", cacert: materials.certPath) == 200)
        // Plain HTTP to the TLS port gets no HTTP answer; an unknown CA is refused by the client.
        #expect(try Self.status("http://127.0.0.1:\(exporter.port)/metrics") == 0)
        #expect(try Self.status(url, user: "alice:s3cret") == 0)

        let body = try runTool("curl", ["-s", "--cacert", materials.certPath, "-u", "alice:s3cret", url], input: [])
        #expect(String(decoding: body.stdout, as: UTF8.self).contains("anthropic_batches_exporter_build_info"))
        #expect(exporter.process.isRunning)
    }

    @Test("RequireAndVerifyClientCert: a client certificate from the configured CA is required")
    func clientCertificates() async throws {
        let materials = try Materials(
            webConfig:
                "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.pem\n"
        )
        let path = { (name: String) in materials.directory.appendingPathComponent(name).path }
        for step in [
            ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test-ca", "-keyout", path("ca.key"), "-out", path("ca.pem")],
            ["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=prometheus", "-keyout", path("client.key"), "-out", path("client.csr")],
            [
                "x509", "-req", "-in", path("client.csr"), "-CA", path("ca.pem"), "-CAkey", path("ca.key"), "-CAcreateserial", "-days", "1", "-out",
                path("client.pem"),
            ],
        ] {
            let result = try runTool("openssl", step, input: [])
            guard result.status == 0 else { throw TestFailure("openssl \(step[0]) failed: \(result.output)") }
        }
        let simulator = try await SimulatorProcess(batches: 3, active: 1)
        let exporter = try await ExporterProcess(polling: simulator, arguments: ["--web.config.file", materials.configPath])
        defer { exporter.terminate(); simulator.terminate() }
        let url = "https://127.0.0.1:\(exporter.port)/metrics"
        #expect(try Self.status(url, cacert: materials.certPath) == 0, "no client certificate: no HTTP answer")
        let withCertificate = try runTool(
            "curl",
            ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", materials.certPath, "--cert", path("client.pem"), "--key", path("client.key"), url],
            input: []
        )
        #expect(String(decoding: withCertificate.stdout, as: UTF8.self) == "200")
    }

    @Test("A bad web config exits 2 with the file, the line and the problem")
    func badWebConfig() async throws {
        let materials = try Materials(webConfig: "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n  ciphers: all\n")
        let process = try ChildProcess(Binaries.exporter, arguments: ["--demo", "--web.config.file", materials.configPath])
        #expect(try await process.waitForExit() == 2)
        #expect(process.stderr.split(separator: "\n").count == 1)
        #expect(process.stderr.contains("web.yml:4: tls_server_config: unknown key \"ciphers\""), "\(process.stderr)")
    }

    @Test("A certificate that cannot be loaded stops the start with exit 2, naming the file")
    func missingCertificate() async throws {
        let materials = try Materials(webConfig: "tls_server_config:\n  cert_file: nowhere.pem\n  key_file: key.pem\n")
        let process = try ChildProcess(
            Binaries.exporter, arguments: ["--demo", "--web.listen-address", "127.0.0.1:0", "--web.config.file", materials.configPath])
        #expect(try await process.waitForExit() == 2)
        #expect(process.stderr.split(separator: "\n").count == 1)
        #expect(process.stderr.contains("nowhere.pem"), "\(process.stderr)")
    }
}
