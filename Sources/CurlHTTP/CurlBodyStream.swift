import Synchronization

/// Status and header fields of a streamed response, available before its body.
public struct ResponseHead: Sendable {
    public var status: Int
    /// Header fields of the final response, names lower-cased, in the order received.
    public var headers: [(name: String, value: String)]
    /// New connections libcurl opened for this request; 0 means a kept-alive one was reused.
    public var connectionsOpened: Int

    public init(status: Int, headers: [(name: String, value: String)], connectionsOpened: Int = 0) {
        self.status = status
        self.headers = headers
        self.connectionsOpened = connectionsOpened
    }

    /// The first value of a header field; `name` is matched case-insensitively.
    public func header(_ name: String) -> String? {
        let wanted = name.lowercased()
        return headers.first { $0.name == wanted }?.value
    }
}

/// Aborts a transfer that moves fewer than `bytesPerSecond` bytes a second for `duration`
/// (`CURLOPT_LOW_SPEED_LIMIT` / `_TIME`; libcurl counts whole seconds, rounded up here). Time
/// spent paused because the consumer is slow does not count.
public struct LowSpeedLimit: Sendable, Equatable {
    public var bytesPerSecond: Int
    public var duration: Duration

    public init(bytesPerSecond: Int, duration: Duration) {
        self.bytesPerSecond = bytesPerSecond
        self.duration = duration
    }
}

/// Limits for one streamed download. A whole-transfer timeout suits small responses, not a
/// body of gigabytes: by default a stream has none and ends only when it stalls.
public struct StreamOptions: Sendable {
    /// `nil`: the client's configured connect timeout.
    public var connectTimeout: Duration?
    /// `nil`: no limit on the whole transfer.
    public var totalTimeout: Duration?
    /// `nil`: no stall detection (then set a total timeout).
    public var lowSpeedLimit: LowSpeedLimit?
    /// `nil`: no bound on the body; otherwise ``CurlError/Kind/bodyTooLarge`` past it.
    public var maxBodyBytes: Int?

    public init(
        connectTimeout: Duration? = nil,
        totalTimeout: Duration? = nil,
        lowSpeedLimit: LowSpeedLimit? = LowSpeedLimit(bytesPerSecond: 1, duration: .seconds(60)),
        maxBodyBytes: Int? = nil
    ) {
        self.connectTimeout = connectTimeout
        self.totalTimeout = totalTimeout
        self.lowSpeedLimit = lowSpeedLimit
        self.maxBodyBytes = maxBodyBytes
    }
}

/// The body of a streamed response as chunks of bytes, in order. Iterate it once. A transfer
/// error (connection cut, timeout, cancellation) is thrown by the iterator after the chunks
/// that arrived before it. Reading slowly is fine: the transfer pauses while about 1 MiB waits
/// unread, so memory stays bounded whatever the body size.
public struct CurlBodyStream: AsyncSequence, Sendable {
    public typealias Element = [UInt8]
    public typealias Failure = CurlError

    let state: StreamState

    public func makeAsyncIterator() -> Iterator {
        Iterator(state: state)
    }

    public struct Iterator: AsyncIteratorProtocol {
        public typealias Element = [UInt8]
        public typealias Failure = CurlError

        let state: StreamState

        public mutating func next() async throws(CurlError) -> [UInt8]? {
            try await state.next(isolation: nil).get()
        }

        public mutating func next(isolation actor: isolated (any Actor)?) async throws(CurlError) -> [UInt8]? {
            try await state.next(isolation: actor).get()
        }
    }

    /// The most bytes that ever waited unread in this stream's buffer.
    var highWaterMark: Int { state.highWaterMark }
    /// How often the transfer was paused because the buffer was full.
    var pauseCount: Int { state.pauseCount }
    /// Whether the transfer is paused now, waiting for the consumer.
    var isPaused: Bool { state.isPaused }
}

/// The buffer between the engine thread (producer) and a stream's consumer, with the head, the
/// transfer's end, and the pause/resume handshake. See the threading model in CurlEngine.swift.
final class StreamState: Sendable {
    /// The write callback pauses the transfer while this many bytes wait unread...
    static let pauseThreshold = 1 << 20
    /// ...and the consumer resumes it once it has drained the buffer below this.
    static let resumeThreshold = 256 << 10
    /// Consecutive small writes are merged into chunks of up to this size.
    static let chunkSize = 256 << 10

    private struct State {
        var head: Result<ResponseHead, CurlError>?
        var headWaiter: CheckedContinuation<Result<ResponseHead, CurlError>, Never>?
        var chunks: [[UInt8]] = []
        /// Chunks before this index were handed out; compacted now and then.
        var firstChunk = 0
        var buffered = 0
        var highWaterMark = 0
        var pauseCount = 0
        var paused = false
        /// How the transfer ended, once it has.
        var end: Result<Void, CurlError>?
        var endReported = false
        var bodyWaiter: CheckedContinuation<Result<[UInt8]?, CurlError>, Never>?
        /// The consumer is gone; bytes are refused and the transfer aborted.
        var closed = false
    }

    enum Offer {
        case accepted, pause, closed
    }

    let ticket: TransferTicket
    private let state = Mutex(State())

    init(ticket: TransferTicket) {
        self.ticket = ticket
    }

    var highWaterMark: Int { state.withLock { $0.highWaterMark } }
    var pauseCount: Int { state.withLock { $0.pauseCount } }
    var isPaused: Bool { state.withLock { $0.paused } }
    var isFinished: Bool { state.withLock { $0.end != nil } }

    // MARK: Engine thread

    func deliverHead(_ head: ResponseHead) {
        let waiter = state.withLock { state -> CheckedContinuation<Result<ResponseHead, CurlError>, Never>? in
            guard state.head == nil else { return nil }
            state.head = .success(head)
            defer { state.headWaiter = nil }
            return state.headWaiter
        }
        waiter?.resume(returning: .success(head))
    }

    /// Takes body bytes from the write callback, or refuses them with `.pause` when the buffer
    /// is full (libcurl then keeps them and offers them again after an unpause).
    func offer(_ bytes: UnsafeBufferPointer<UInt8>) -> Offer {
        var handOff: CheckedContinuation<Result<[UInt8]?, CurlError>, Never>?
        let offer = state.withLock { state -> Offer in
            if state.closed { return .closed }
            if let waiter = state.bodyWaiter {
                // The consumer waits, so the buffer is empty: hand the bytes over directly.
                state.bodyWaiter = nil
                handOff = waiter
                return .accepted
            }
            if state.buffered >= Self.pauseThreshold {
                state.paused = true
                state.pauseCount += 1
                return .pause
            }
            if state.firstChunk < state.chunks.count, state.chunks[state.chunks.count - 1].count + bytes.count <= Self.chunkSize {
                state.chunks[state.chunks.count - 1].append(contentsOf: bytes)
            } else {
                var chunk: [UInt8] = []
                chunk.reserveCapacity(max(bytes.count, Self.chunkSize))
                chunk.append(contentsOf: bytes)
                state.chunks.append(chunk)
            }
            state.buffered += bytes.count
            state.highWaterMark = max(state.highWaterMark, state.buffered)
            return .accepted
        }
        handOff?.resume(returning: .success(Array(bytes)))
        return offer
    }

    /// The transfer ended (completed, failed, or was cancelled); wakes whoever waits.
    func finish(_ end: Result<Void, CurlError>) {
        var headWaiter: CheckedContinuation<Result<ResponseHead, CurlError>, Never>?
        var headResult: Result<ResponseHead, CurlError>?
        var bodyWaiter: CheckedContinuation<Result<[UInt8]?, CurlError>, Never>?
        var bodyResult: Result<[UInt8]?, CurlError>?
        state.withLock { state in
            guard state.end == nil else { return }
            state.end = end
            if state.head == nil {
                let error: CurlError
                switch end {
                case .failure(let failure): error = failure
                case .success: error = CurlError(kind: .transport, code: -1, message: "transfer ended without a response")
                }
                state.head = .failure(error)
                headResult = .failure(error)
                headWaiter = state.headWaiter
                state.headWaiter = nil
            }
            if let waiter = state.bodyWaiter {
                state.bodyWaiter = nil
                state.endReported = true
                bodyWaiter = waiter
                bodyResult = end.map { _ in nil }
            }
        }
        if let headWaiter, let headResult { headWaiter.resume(returning: headResult) }
        if let bodyWaiter, let bodyResult { bodyWaiter.resume(returning: bodyResult) }
    }

    // MARK: Consumer

    func head(isolation: isolated (any Actor)? = #isolation) async -> Result<ResponseHead, CurlError> {
        if let head = state.withLock({ $0.head }) { return head }
        return await withTaskCancellationHandler {
            await withCheckedContinuation(isolation: isolation) { (continuation: CheckedContinuation<Result<ResponseHead, CurlError>, Never>) in
                let ready = state.withLock { state -> Result<ResponseHead, CurlError>? in
                    if let head = state.head { return head }
                    state.headWaiter = continuation
                    return nil
                }
                if let ready { continuation.resume(returning: ready) }
            }
        } onCancel: { [ticket] in
            ticket.cancel()
        }
    }

    func next(isolation: isolated (any Actor)?) async -> Result<[UInt8]?, CurlError> {
        if let ready = take(orWait: nil) { return ready }
        return await withTaskCancellationHandler {
            await withCheckedContinuation(isolation: isolation) { (continuation: CheckedContinuation<Result<[UInt8]?, CurlError>, Never>) in
                if let ready = take(orWait: continuation) { continuation.resume(returning: ready) }
            }
        } onCancel: { [ticket] in
            ticket.cancel()
        }
    }

    /// The next chunk, the end, or `nil` after registering `waiter` (if any) for what comes.
    private func take(orWait waiter: CheckedContinuation<Result<[UInt8]?, CurlError>, Never>?) -> Result<[UInt8]?, CurlError>? {
        var resume = false
        let result = state.withLock { state -> Result<[UInt8]?, CurlError>? in
            if state.firstChunk < state.chunks.count {
                let chunk = state.chunks[state.firstChunk]
                state.chunks[state.firstChunk] = []
                state.firstChunk += 1
                if state.firstChunk == state.chunks.count {
                    state.chunks.removeAll(keepingCapacity: true)
                    state.firstChunk = 0
                } else if state.firstChunk >= 64 {
                    state.chunks.removeFirst(state.firstChunk)
                    state.firstChunk = 0
                }
                state.buffered -= chunk.count
                if state.paused, state.buffered <= Self.resumeThreshold {
                    state.paused = false
                    resume = true
                }
                return .success(chunk)
            }
            if let end = state.end {
                if state.endReported { return .success(nil) }
                state.endReported = true
                return end.map { _ in nil }
            }
            state.bodyWaiter = waiter
            return nil
        }
        if resume { ticket.resume() }
        return result
    }

    /// The consumer is done (returned, threw, or was cancelled): drop what is buffered and
    /// refuse the rest.
    func close() {
        state.withLock { state in
            state.closed = true
            state.chunks = []
            state.firstChunk = 0
            state.buffered = 0
        }
    }
}
