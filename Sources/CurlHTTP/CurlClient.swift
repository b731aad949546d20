import CCurl
import NIOPosix
import Synchronization

/// libcurl's process-wide initialisation, run once on first use. A global `let` is initialised
/// exactly once, thread-safely, which is what `curl_global_init` requires.
private let curlGlobalInit: CURLcode = ccurl_global_init()

/// Blocking HTTP GETs over one reused libcurl easy handle, so consecutive requests share one
/// kept-alive connection and one TLS handshake.
///
/// `get` blocks the calling thread for the whole transfer: call it from a thread pool, never
/// from Swift's cooperative pool.
public final class CurlClient: Sendable {
    /// Settings fixed for the client's lifetime.
    public struct Configuration: Sendable {
        public var connectTimeout: Duration
        public var requestTimeout: Duration
        /// Decoded bodies larger than this abort the transfer with ``CurlError/Kind/bodyTooLarge``.
        public var maxBodyBytes: Int
        public var userAgent: String
        /// An extra CA bundle, trusted in addition to the system's store.
        public var caFile: String?

        public init(
            connectTimeout: Duration = .seconds(10),
            requestTimeout: Duration = .seconds(60),
            maxBodyBytes: Int = 64 << 20,
            userAgent: String,
            caFile: String? = nil
        ) {
            self.connectTimeout = connectTimeout
            self.requestTimeout = requestTimeout
            self.maxBodyBytes = maxBodyBytes
            self.userAgent = userAgent
            self.caFile = caFile
        }
    }

    private let handle: Mutex<EasyHandle>
    private let configuration: Configuration

    public init(configuration: Configuration) throws(CurlError) {
        guard curlGlobalInit == CURLE_OK else {
            throw CurlError(kind: .setup, code: Int(curlGlobalInit.rawValue), message: "curl_global_init failed")
        }
        self.configuration = configuration
        handle = Mutex(try EasyHandle(configuration: configuration))
    }

    /// Performs one GET. Header values are sent as given; the caller keeps secrets out of
    /// anything it logs. `isCancelled` is polled during the transfer to abort it promptly.
    public func get(
        url: String,
        headers: [(name: String, value: String)],
        isCancelled: @escaping () -> Bool = { false }
    ) throws(CurlError) -> HTTPResponse {
        try handle.withLock { (handle: inout EasyHandle) throws(CurlError) -> HTTPResponse in
            try handle.get(url: url, headers: headers, maxBodyBytes: configuration.maxBodyBytes, isCancelled: isCancelled)
        }
    }
}

extension CurlClient {
    /// Performs ``get(url:headers:isCancelled:)`` on NIO's shared blocking-I/O thread pool, so the
    /// cooperative pool is never blocked, and aborts the transfer when the task is cancelled.
    public func get(
        url: String,
        headers: [(name: String, value: String)]
    ) async throws(CurlError) -> HTTPResponse {
        let pool = NIOThreadPool.singleton
        let cancelled = CancellationFlag()
        let result: Result<HTTPResponse, CurlError>
        do {
            result = try await withTaskCancellationHandler {
                try await pool.runIfActive { () -> Result<HTTPResponse, CurlError> in
                    do throws(CurlError) {
                        return .success(try self.get(url: url, headers: headers, isCancelled: { cancelled.isSet }))
                    } catch {
                        return .failure(error)
                    }
                }
            } onCancel: {
                cancelled.set()
            }
        } catch {
            throw CurlError(kind: .cancelled, code: -1, message: "thread pool unavailable: \(error)")
        }
        return try result.get()
    }
}

/// Set once from any thread, read by libcurl's progress callback.
private final class CancellationFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    var isSet: Bool { flag.load(ordering: .relaxed) }
    func set() { flag.store(true, ordering: .relaxed) }
}
