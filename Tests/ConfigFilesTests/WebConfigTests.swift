import ConfigFiles
import Testing

@Suite("--web.config.file parsing (exporter-toolkit format)")
struct WebConfigTests {
    let hash = "$2b$10$3qVAx/fp.iXlPnbOQ1z4ee8k0.oyz4QHxPqP/xRLYzy7o5a/2QyZC"

    @Test("TLS and basic auth users are read, relative paths resolved against the file's directory")
    func fullFile() throws {
        let text = """
            tls_server_config:
              cert_file: certs/server.crt
              key_file: /etc/keys/server.key
              min_version: TLS13
            basic_auth_users:
              alice: \(hash)
              bob: '\(hash)'
            """
        let config = try WebConfig.parse(text, file: "web.yml", baseDirectory: "/etc/exporter")
        #expect(config.tls == WebConfig.TLS(certFile: "/etc/exporter/certs/server.crt", keyFile: "/etc/keys/server.key", minVersion: "TLS13"))
        #expect(config.basicAuthUsers == ["alice": hash, "bob": hash])
    }

    @Test("Basic auth alone, without TLS")
    func authOnly() throws {
        let config = try WebConfig.parse("basic_auth_users:\n  prometheus: \(hash)\n", file: "web.yml")
        #expect(config.tls == nil)
        #expect(config.basicAuthUsers.count == 1)
    }

    @Test(
        "Mistakes are refused with the file, the line and what is wrong",
        arguments: [
            ("tls_server_config:\n  cert_file: a\n  key_file: b\n  cert_flie: c\n", 4, "unknown key \"cert_flie\""),
            ("tls_server_config:\n  key_file: b\n", 2, "tls_server_config.cert_file is required"),  // the mapping that lacks it
            ("tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: SSL3\n", 4, "min_version must be TLS12 or TLS13"),
            ("basic_auth_users:\n  alice: plaintext\n", 2, "must be a bcrypt hash"),
            ("basic_auth_users: [alice]\n", 1, "must be a mapping"),
            ("tls_server_config: {cert_file: a, key_file: b\n", nil, "not valid YAML"),
            ("http_server_config:\n  headers:\n    X-Frame-Options: deny\n", 2, "unknown key \"headers\""),
            ("", nil, "empty"),
        ] as [(String, Int?, String)])
    func mistakes(text: String, line: Int?, problem: String) {
        do {
            _ = try WebConfig.parse(text, file: "web.yml")
            Issue.record("accepted: \(text)")
        } catch {
            #expect(error.file == "web.yml")
            if let line { #expect(error.line == line, "\(error)") }
            #expect(error.description.contains(problem), "\(error)")
        }
    }
}
