import Yams

/// `--web.config.file`, in the format of the Prometheus exporter-toolkit, so it drops into
/// existing setups: `tls_server_config` and `basic_auth_users` (bcrypt hashes).
public struct WebConfig: Sendable, Equatable {
    public struct TLS: Sendable, Equatable {
        public var certFile: String
        public var keyFile: String
        /// `TLS12` or `TLS13`; `nil` for the library default (TLS 1.2).
        public var minVersion: String?
        /// Client certificates: `RequireAndVerifyClientCert` with `clientCAFile`, or none.
        public var clientAuthType: String?
        public var clientCAFile: String?

        public init(certFile: String, keyFile: String, minVersion: String? = nil, clientAuthType: String? = nil, clientCAFile: String? = nil) {
            self.certFile = certFile
            self.keyFile = keyFile
            self.minVersion = minVersion
            self.clientAuthType = clientAuthType
            self.clientCAFile = clientCAFile
        }
    }

    public var tls: TLS?
    /// User name → bcrypt hash.
    public var basicAuthUsers: [String: String]

    public init(tls: TLS? = nil, basicAuthUsers: [String: String] = [:]) {
        self.tls = tls
        self.basicAuthUsers = basicAuthUsers
    }

    /// Parses the file's text. Relative paths in it are resolved against `baseDirectory` (the
    /// file's own directory, as exporter-toolkit does) when given.
    public static func parse(_ text: String, file: String, baseDirectory: String? = nil) throws(ConfigError) -> WebConfig {
        let reader = YAMLReader(file: file)
        let root = try reader.document(text)
        let top = try reader.mapping(root, "web config", allowed: ["tls_server_config", "basic_auth_users", "http_server_config"])
        var config = WebConfig()
        func resolve(_ path: String) -> String {
            guard !path.hasPrefix("/"), let baseDirectory else { return path }
            return baseDirectory + "/" + path
        }
        if let tlsNode = top["tls_server_config"] {
            let tls = try reader.mapping(
                tlsNode, "tls_server_config",
                allowed: ["cert_file", "key_file", "min_version", "client_auth_type", "client_ca_file"]
            )
            let minVersion = try reader.string(tls["min_version"], "tls_server_config.min_version")
            if let minVersion, !["TLS12", "TLS13"].contains(minVersion) {
                throw reader.error(tls["min_version"], "tls_server_config.min_version must be TLS12 or TLS13 (got \"\(minVersion)\")")
            }
            let clientAuth = try reader.string(tls["client_auth_type"], "tls_server_config.client_auth_type")
            if let clientAuth, !["NoClientCert", "RequireAndVerifyClientCert"].contains(clientAuth) {
                throw reader.error(
                    tls["client_auth_type"],
                    "tls_server_config.client_auth_type must be NoClientCert or RequireAndVerifyClientCert (got \"\(clientAuth)\")"
                )
            }
            let clientCA = try reader.string(tls["client_ca_file"], "tls_server_config.client_ca_file").map(resolve)
            if clientAuth == "RequireAndVerifyClientCert", clientCA == nil {
                throw reader.error(tlsNode, "tls_server_config.client_ca_file is required with RequireAndVerifyClientCert")
            }
            config.tls = TLS(
                certFile: resolve(try reader.requiredString(tls["cert_file"], "tls_server_config.cert_file", in: tlsNode)),
                keyFile: resolve(try reader.requiredString(tls["key_file"], "tls_server_config.key_file", in: tlsNode)),
                minVersion: minVersion,
                clientAuthType: clientAuth,
                clientCAFile: clientCA
            )
        }
        if let usersNode = top["basic_auth_users"] {
            guard case .mapping(let users) = usersNode else { throw reader.error(usersNode, "basic_auth_users must be a mapping of user: bcrypt hash") }
            for (userNode, hashNode) in users {
                guard let user = userNode.string, !user.isEmpty else { throw reader.error(userNode, "basic_auth_users: user names must be non-empty strings") }
                guard let hash = hashNode.string, ["$2a$", "$2b$", "$2y$"].contains(where: hash.hasPrefix), hash.count == 60 else {
                    throw reader.error(hashNode, "basic_auth_users.\(user) must be a bcrypt hash ($2y$..., 60 characters), e.g. from htpasswd -nBC 10")
                }
                config.basicAuthUsers[user] = hash
            }
        }
        if let http = top["http_server_config"] {
            // `http2` is accepted so existing files load, and ignored: scrapes use HTTP/1.1.
            // Custom response headers are not offered, so they are refused rather than dropped.
            _ = try reader.mapping(http, "http_server_config", allowed: ["http2"])
        }
        return config
    }
}
