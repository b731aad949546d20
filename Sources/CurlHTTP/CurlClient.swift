import CCurl

/// HTTP GETs over libcurl, run by the process's one libcurl engine thread (see CurlEngine.swift):
/// any number of transfers in flight, none of them holding a thread while it waits.
///
/// Each client has its own connection cache and TLS session cache and a small pool of idle easy
/// handles, so consecutive requests share a kept-alive connection and one TLS handshake, and a
/// client never uses another client's connections. A client may run several transfers at once;
/// each takes its own easy handle (and its own connection unless HTTP/2 multiplexes them).
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

    private let engine: CurlEngine
    private let key: ClientKey
    private var configuration: Configuration { key.configuration }
    /// Transfer and handle counts, for tests.
    var stats: ClientStats { key.stats }

    public init(configuration: Configuration) throws(CurlError) {
        engine = try sharedCurlEngine.get()
        key = ClientKey(id: engine.makeClientID(), configuration: configuration, stats: ClientStats())
    }

    deinit {
        engine.releaseClient(key.id)
    }

    /// Performs one GET with the configured timeouts. Header values are sent as given; the caller
    /// keeps secrets out of anything it logs. Cancelling the task aborts the transfer and throws
    /// ``CurlError/Kind/cancelled``. A non-2xx status is a response, not an error.
    public func get(url: String, headers: [(name: String, value: String)]) async throws(CurlError) -> HTTPResponse {
        try await get(url: url, headers: headers, timeout: nil)
    }

    /// Performs one GET; `timeout` and `connectTimeout` replace the configured ones for this
    /// request when given.
    public func get(
        url: String,
        headers: [(name: String, value: String)],
        timeout: Duration?,
        connectTimeout: Duration? = nil
    ) async throws(CurlError) -> HTTPResponse {
        let request = TransferRequest(
            url: url,
            headers: headers,
            connectTimeout: connectTimeout ?? configuration.connectTimeout,
            totalTimeout: timeout ?? configuration.requestTimeout,
            lowSpeed: nil,
            maxBodyBytes: configuration.maxBodyBytes
        )
        let ticket = TransferTicket(engine: engine)
        let result = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Result<HTTPResponse, CurlError>, Never>) in
                engine.submit(Submission(ticket: ticket, client: key, request: request, delivery: .buffered(continuation)))
            }
        } onCancel: {
            ticket.cancel()
        }
        return try result.get()
    }

    /// Streams one GET's body, for responses too large to hold in memory. `consume` gets the
    /// head (status and headers) as soon as it has arrived, and the body as an async sequence of
    /// chunks; what it returns, `stream` returns. Non-2xx statuses reach `consume` too.
    ///
    /// Memory stays bounded: the transfer pauses while about 1 MiB waits unread. A transfer error
    /// before the head is thrown by `stream`; one during the body by the body's iterator. When
    /// `consume` returns or throws before the body's end, or the task is cancelled, the transfer
    /// is aborted (and its connection closed).
    public func stream<T>(
        url: String,
        headers: [(name: String, value: String)],
        options: StreamOptions = StreamOptions(),
        isolation: isolated (any Actor)? = #isolation,
        consume: (ResponseHead, CurlBodyStream) async throws -> T
    ) async throws -> T {
        let request = TransferRequest(
            url: url,
            headers: headers,
            connectTimeout: options.connectTimeout ?? configuration.connectTimeout,
            totalTimeout: options.totalTimeout,
            lowSpeed: options.lowSpeedLimit,
            maxBodyBytes: options.maxBodyBytes ?? Int.max
        )
        let ticket = TransferTicket(engine: engine)
        let state = StreamState(ticket: ticket)
        engine.submit(Submission(ticket: ticket, client: key, request: request, delivery: .stream(state)))
        defer {
            state.close()
            if !state.isFinished { ticket.cancel() }
        }
        let head = try await state.head(isolation: isolation).get()
        return try await consume(head, CurlBodyStream(state: state))
    }
}
