import NIOSSL

/// Limits that keep one slow, broken or hostile client from costing the others their service.
public struct HTTPServerConfiguration: Sendable {
    /// Address to bind; `0.0.0.0`, `::`, a host name or an IP.
    public var host: String
    /// Port to bind; 0 picks an ephemeral port (see ``HTTPServer/start()``).
    public var port: Int
    /// Connections beyond this are closed as soon as they are accepted.
    public var maxConnections: Int = 512
    /// Request line plus headers; a longer head gets 431 and a closed connection.
    public var maxRequestHeadBytes: Int = 16 * 1024
    /// A new connection must deliver a complete request head within this time (slow-loris).
    public var requestHeadTimeout: Duration = .seconds(10)
    /// A kept-alive connection may sit idle this long before the next complete request head.
    public var idleTimeout: Duration = .seconds(30)
    /// A response must be taken by the client within this time (slow readers).
    public var writeTimeout: Duration = .seconds(30)
    /// On shutdown, in-flight responses get this long to finish before connections are cut.
    public var shutdownGracePeriod: Duration = .seconds(3)
    /// Serve HTTPS with this context; plain HTTP when `nil`.
    public var tls: NIOSSLContext?
    /// When set, asked for the context of each new connection instead of using ``tls``, so
    /// certificates can be replaced while the server runs. Called on the event loop: it must
    /// return quickly (hand out a prepared context; rebuild only when files changed).
    public var tlsContextProvider: (@Sendable () -> NIOSSLContext)?

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }
}
