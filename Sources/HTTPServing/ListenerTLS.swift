import NIOSSL

/// Builds the listener's TLS context from the web config's files. Fails at start-up with a
/// message naming the file, rather than at the first handshake.
public enum ListenerTLS {
    public struct SetupError: Error, CustomStringConvertible {
        public let description: String
    }

    public static func makeContext(
        certFile: String,
        keyFile: String,
        minVersion: String?,
        clientCAFile: String?
    ) throws(SetupError) -> NIOSSLContext {
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(certFile)
        } catch {
            throw SetupError(description: "tls_server_config.cert_file \(certFile): cannot load a PEM certificate (\(error))")
        }
        guard !chain.isEmpty else { throw SetupError(description: "tls_server_config.cert_file \(certFile) holds no certificate") }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(file: keyFile, format: .pem)
        } catch {
            throw SetupError(description: "tls_server_config.key_file \(keyFile): cannot load a PEM private key (\(error))")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) },
            privateKey: .privateKey(key)
        )
        configuration.minimumTLSVersion = minVersion == "TLS13" ? .tlsv13 : .tlsv12
        if let clientCAFile {
            configuration.trustRoots = .file(clientCAFile)
            configuration.certificateVerification = .noHostnameVerification
        }
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw SetupError(description: "TLS setup failed: \(error) (does the key match the certificate?)")
        }
    }
}
