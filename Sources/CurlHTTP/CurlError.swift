/// A transfer that produced no usable response, with libcurl's own code and words.
public struct CurlError: Error, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        /// The connect or whole-request timeout ran out.
        case timeout
        /// Name resolution, connect, or the connection dropped mid-transfer.
        case transport
        /// The TLS handshake or the peer's certificate failed verification.
        case tls
        /// The body grew past the configured bound; the transfer was aborted.
        case bodyTooLarge
        /// The caller cancelled the transfer (shutdown).
        case cancelled
        /// The handle could not be set up; a bug or a broken libcurl.
        case setup
    }

    public var kind: Kind
    /// libcurl's `CURLcode`.
    public var code: Int
    public var message: String

    public init(kind: Kind, code: Int, message: String) {
        self.kind = kind
        self.code = code
        self.message = message
    }

    public var description: String { "\(message) (curl code \(code))" }
}
