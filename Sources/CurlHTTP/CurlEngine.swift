import CCurl
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// # Threading model
//
// Every libcurl transfer of the process runs on ONE dedicated thread, the engine thread, which
// drives one libcurl multi handle: `curl_multi_perform`, then `curl_multi_info_read` for finished
// transfers, then `curl_multi_poll` until a socket is ready, a libcurl timer expires, or another
// thread calls `curl_multi_wakeup`. Any number of transfers are in flight at once and none holds a
// thread while it waits, so a hung API cannot starve a healthy one, as blocking
// `curl_easy_perform` calls on a shared pool of core-count threads did (three hung workspaces
// stalled a fourth for more than 30 s on 2 cores).
//
// What runs on the engine thread: the multi handle, every easy handle (created, configured, added,
// removed, pooled and cleaned up there; they never leave it), each client's share handle
// (connection cache and TLS sessions), and libcurl's callbacks (headers and body bytes), which
// only append bytes and resume continuations: nothing on that thread blocks or runs user code.
//
// Other threads talk to it through the `Inbox`, a queue behind a `Mutex`: submit a transfer,
// cancel one, resume a paused one, release a client's handles. Posting to an empty inbox calls
// `curl_multi_wakeup`, the one libcurl call made off the engine thread (documented thread-safe).
// Results go back through continuations (`get`) or a `StreamState` (`stream`).
//
// Backpressure for streamed bodies: the write callback appends to the stream's buffer while less
// than `StreamState.pauseThreshold` bytes wait unread; past that it returns `CURL_WRITEFUNC_PAUSE`
// (libcurl keeps that chunk and stops reading the socket, so TCP flow control slows the server).
// When the consumer has drained the buffer below `resumeThreshold` it posts a resume, and the
// engine thread calls `curl_easy_pause(CURLPAUSE_CONT)`. Memory per stream stays near 1 MiB
// whatever the body size. libcurl does not apply the low-speed limit to paused transfers.

/// libcurl's process-wide initialisation, run once before the engine exists. A global `let` is
/// initialised exactly once, thread-safely, which is what `curl_global_init` requires.
private let curlGlobalInit: CURLcode = ccurl_global_init()

/// The process's one engine, started on first use.
let sharedCurlEngine: Result<CurlEngine, CurlError> = Result { () throws(CurlError) -> CurlEngine in
    try CurlEngine.start()
}

/// What a client asks of the engine for one transfer. Plain values only: it crosses threads.
struct TransferRequest: Sendable {
    var url: String
    var headers: [(name: String, value: String)]
    var connectTimeout: Duration
    /// `nil`: no limit on the whole transfer.
    var totalTimeout: Duration?
    var lowSpeed: LowSpeedLimit?
    var maxBodyBytes: Int
}

/// How a finished transfer reaches its caller.
enum TransferDelivery: Sendable {
    /// `get`: the whole response at once.
    case buffered(CheckedContinuation<Result<HTTPResponse, CurlError>, Never>)
    /// `stream`: the head, then body chunks with backpressure.
    case stream(StreamState)
}

/// A client's identity and settings as the engine sees them; the engine keeps each client's
/// idle easy handles and share handle under `id`.
struct ClientKey: Sendable {
    let id: UInt64
    let configuration: CurlClient.Configuration
    let stats: ClientStats
}

/// Counters the engine keeps per client, readable from any thread (tests and diagnostics).
final class ClientStats: Sendable {
    private let active = Atomic<Int>(0)
    private let created = Atomic<Int>(0)
    /// Transfers of this client currently in the multi handle.
    var activeTransfers: Int { active.load(ordering: .relaxed) }
    /// Easy handles created for this client so far (pooled handles are reused, not recreated).
    var handlesCreated: Int { created.load(ordering: .relaxed) }
    func transferStarted() { active.add(1, ordering: .relaxed) }
    func transferEnded() { active.subtract(1, ordering: .relaxed) }
    func handleCreated() { created.add(1, ordering: .relaxed) }
}

/// One transfer's identity and cancellation flag, shared by the caller and the engine.
final class TransferTicket: Sendable {
    let id: UInt64
    private let engine: CurlEngine
    private let cancelled = Atomic<Bool>(false)

    init(engine: CurlEngine) {
        self.engine = engine
        id = engine.makeTransferID()
    }

    var isCancelled: Bool { cancelled.load(ordering: .acquiring) }

    /// Asks the engine to abort the transfer. The flag covers a cancel that arrives before the
    /// engine has seen the submission; the message covers one that is already running.
    func cancel() {
        guard !cancelled.exchange(true, ordering: .acquiringAndReleasing) else { return }
        engine.post { $0.cancellations.append(id) }
    }

    /// Asks the engine to unpause the transfer (the consumer drained its buffer).
    func resume() {
        engine.post { $0.resumptions.append(id) }
    }
}

struct Submission: Sendable {
    let ticket: TransferTicket
    let client: ClientKey
    let request: TransferRequest
    let delivery: TransferDelivery
}

/// Work posted to the engine thread by other threads.
struct Inbox {
    var submissions: [Submission] = []
    var cancellations: [UInt64] = []
    var resumptions: [UInt64] = []
    var releasedClients: [UInt64] = []

    var isEmpty: Bool {
        submissions.isEmpty && cancellations.isEmpty && resumptions.isEmpty && releasedClients.isEmpty
    }
}

/// The multi handle's address, shared with other threads only for `curl_multi_wakeup`.
///
/// `@unchecked Sendable` is safe because: the handle is created before the engine thread starts
/// (`pthread_create` orders that), every other libcurl call on it happens on the engine thread,
/// `curl_multi_wakeup` is documented as callable from any thread, and the handle is never
/// cleaned up (the engine lives as long as the process), so no thread can see it dangle.
struct MultiHandleAddress: @unchecked Sendable {
    let pointer: UnsafeMutableRawPointer
}

/// The one libcurl multi handle of the process and the thread that drives it. See the comment at
/// the top of this file for the threading model.
final class CurlEngine: Sendable {
    private let multi: MultiHandleAddress
    private let inbox = Mutex(Inbox())
    private let nextTransferID = Atomic<UInt64>(1)
    private let nextClientID = Atomic<UInt64>(1)

    private init(multi: MultiHandleAddress) {
        self.multi = multi
    }

    static func start() throws(CurlError) -> CurlEngine {
        guard curlGlobalInit == CURLE_OK else {
            throw CurlError(kind: .setup, code: Int(curlGlobalInit.rawValue), message: "curl_global_init failed")
        }
        guard let pointer = curl_multi_init() else {
            throw CurlError(kind: .setup, code: -1, message: "curl_multi_init returned no handle")
        }
        // Idle connections kept per connection cache (one per client, see `ClientSlot`). The
        // default, four per easy handle currently added, would drop kept-alive connections
        // whenever few transfers happen to be running.
        let code = ccurl_multi_setopt_long(pointer, CURLMOPT_MAXCONNECTS, 16)
        guard code == CURLM_OK else {
            curl_multi_cleanup(pointer)
            throw CurlError(kind: .setup, code: Int(code.rawValue), message: String(cString: curl_multi_strerror(code)))
        }
        let engine = CurlEngine(multi: MultiHandleAddress(pointer: pointer))
        try engine.startThread()
        return engine
    }

    func makeTransferID() -> UInt64 { nextTransferID.wrappingAdd(1, ordering: .relaxed).oldValue }
    func makeClientID() -> UInt64 { nextClientID.wrappingAdd(1, ordering: .relaxed).oldValue }

    func submit(_ submission: Submission) {
        post { $0.submissions.append(submission) }
    }

    func releaseClient(_ id: UInt64) {
        post { $0.releasedClients.append(id) }
    }

    /// Adds work and wakes the engine thread if the inbox was empty. The engine drains the whole
    /// inbox after every wake-up, so a non-empty inbox already has a wake-up on its way.
    func post(_ add: (inout Inbox) -> Void) {
        let wasEmpty = inbox.withLock { inbox in
            let wasEmpty = inbox.isEmpty
            add(&inbox)
            return wasEmpty
        }
        if wasEmpty { curl_multi_wakeup(multi.pointer) }
    }

    fileprivate func takeInbox() -> Inbox {
        inbox.withLock { inbox in
            let taken = inbox
            inbox = Inbox()
            return taken
        }
    }

    private func startThread() throws(CurlError) {
        let context = Unmanaged.passRetained(self).toOpaque()
        #if canImport(Glibc)
        var thread = pthread_t()
        #else
        var thread: pthread_t?
        #endif
        let result = pthread_create(&thread, nil, curlEngineThreadMain, context)
        guard result == 0 else {
            Unmanaged<CurlEngine>.fromOpaque(context).release()
            throw CurlError(kind: .setup, code: Int(result), message: "could not start the libcurl engine thread")
        }
        pthread_detach(thread)
    }

    /// The engine thread's body; never returns.
    fileprivate func run() -> Never {
        let loop = EngineLoop(multi: multi.pointer)
        while true {
            loop.handle(takeInbox())
            loop.perform()
            // Waits for socket activity, libcurl's next timeout, or a wake-up; never longer
            // than a second, as a safety net should a wake-up ever be lost.
            curl_multi_poll(multi.pointer, nil, 0, 1000, nil)
        }
    }
}

#if canImport(Glibc)
private func curlEngineThreadMain(_ context: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
    guard let context else { return nil }
    Unmanaged<CurlEngine>.fromOpaque(context).takeRetainedValue().run()
}
#else
private func curlEngineThreadMain(_ context: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer? {
    Unmanaged<CurlEngine>.fromOpaque(context).takeRetainedValue().run()
}
#endif

/// Process-wide counts for tests and diagnostics.
enum CurlEngineDiagnostics {
    /// Clients whose share handle exists on the engine thread; back down once a released
    /// client's share was cleaned up (which fails while an easy handle still uses it).
    static let liveClientSlots = Atomic<Int>(0)
}

/// One transfer while its easy handle is in the multi handle. Engine thread only.
private final class ActiveTransfer {
    let ticket: TransferTicket
    let client: ClientKey
    let handle: EasyHandle
    let sink: TransferSink
    let headerList: UnsafeMutablePointer<curl_slist>?
    let delivery: TransferDelivery

    init(
        ticket: TransferTicket,
        client: ClientKey,
        handle: EasyHandle,
        sink: TransferSink,
        headerList: UnsafeMutablePointer<curl_slist>?,
        delivery: TransferDelivery
    ) {
        self.ticket = ticket
        self.client = client
        self.handle = handle
        self.sink = sink
        self.headerList = headerList
        self.delivery = delivery
    }
}

/// A client's resources on the engine thread: a share handle, so all its transfers use one
/// connection cache and one TLS session cache (and no other client's), and its idle easy handles.
private final class ClientSlot {
    static let maxIdleHandles = 8

    let share: UnsafeMutableRawPointer
    var idle: [EasyHandle] = []
    var active = 0
    /// The client is gone: clean up once its last transfer has ended.
    var released = false

    init(share: UnsafeMutableRawPointer) {
        self.share = share
    }

    static func make() throws(CurlError) -> ClientSlot {
        guard let share = curl_share_init() else {
            throw CurlError(kind: .setup, code: -1, message: "curl_share_init returned no handle")
        }
        for data in [CURL_LOCK_DATA_CONNECT, CURL_LOCK_DATA_SSL_SESSION] {
            let code = ccurl_share_setopt_long(share, CURLSHOPT_SHARE, Int(data.rawValue))
            guard code == CURLSHE_OK else {
                curl_share_cleanup(share)
                throw CurlError(kind: .setup, code: Int(code.rawValue), message: String(cString: curl_share_strerror(code)))
            }
        }
        // Only the engine thread ever touches the share, so it needs no lock callbacks.
        CurlEngineDiagnostics.liveClientSlots.add(1, ordering: .relaxed)
        return ClientSlot(share: share)
    }

    /// Detaches the easy handles first: a share still attached to one cannot be cleaned up.
    func destroy() {
        for handle in idle { handle.detachShare() }
        idle.removeAll()
        if curl_share_cleanup(share) == CURLSHE_OK {
            CurlEngineDiagnostics.liveClientSlots.subtract(1, ordering: .relaxed)
        }
    }
}

/// The engine thread's state. Created on that thread and never shared, so it needs no locks.
private final class EngineLoop {
    private let multi: UnsafeMutableRawPointer
    private var active: [UInt64: ActiveTransfer] = [:]
    private var transferOfHandle: [UnsafeMutableRawPointer: UInt64] = [:]
    private var clients: [UInt64: ClientSlot] = [:]

    init(multi: UnsafeMutableRawPointer) {
        self.multi = multi
    }

    func handle(_ inbox: Inbox) {
        for submission in inbox.submissions { start(submission) }
        for id in inbox.cancellations { finish(id, code: nil) }
        for id in inbox.resumptions {
            // Unpausing may call the write callback right here with the data libcurl held back.
            if let transfer = active[id] { ccurl_easy_unpause(transfer.handle.curl) }
        }
        for id in inbox.releasedClients {
            guard let slot = clients[id] else { continue }
            slot.released = true
            if slot.active == 0 {
                slot.destroy()
                clients[id] = nil
            }
        }
    }

    func perform() {
        var running: Int32 = 0
        curl_multi_perform(multi, &running)
        var queued: Int32 = 0
        while let message = curl_multi_info_read(multi, &queued) {
            guard message.pointee.msg == CURLMSG_DONE, let easy = message.pointee.easy_handle,
                let id = transferOfHandle[easy]
            else { continue }
            // Read before `finish` removes the handle, which invalidates the message.
            finish(id, code: ccurl_msg_result(message))
        }
    }

    private func start(_ submission: Submission) {
        let ticket = submission.ticket
        guard !ticket.isCancelled else {
            Self.deliver(.failure(.cancelledTransfer), to: submission.delivery)
            return
        }
        let slot: ClientSlot
        let handle: EasyHandle
        do throws(CurlError) {
            if let existing = clients[submission.client.id] {
                slot = existing
            } else {
                slot = try ClientSlot.make()
                clients[submission.client.id] = slot
            }
            if let idle = slot.idle.popLast() {
                handle = idle
            } else {
                handle = try EasyHandle(configuration: submission.client.configuration, share: slot.share)
                submission.client.stats.handleCreated()
            }
        } catch {
            Self.deliver(.failure(error), to: submission.delivery)
            return
        }
        let stream: StreamState? =
            if case .stream(let state) = submission.delivery { state } else { nil }
        let sink = TransferSink(curl: handle.curl, maxBodyBytes: submission.request.maxBodyBytes, stream: stream)
        let headerList: UnsafeMutablePointer<curl_slist>?
        do throws(CurlError) {
            headerList = try handle.prepare(submission.request, sink: sink)
        } catch {
            handle.clearTransfer()
            Self.deliver(.failure(error), to: submission.delivery)
            return
        }
        let code = curl_multi_add_handle(multi, handle.curl)
        guard code == CURLM_OK else {
            handle.clearTransfer()
            curl_slist_free_all(headerList)
            Self.deliver(
                .failure(CurlError(kind: .setup, code: Int(code.rawValue), message: String(cString: curl_multi_strerror(code)))),
                to: submission.delivery
            )
            return
        }
        active[ticket.id] = ActiveTransfer(
            ticket: ticket,
            client: submission.client,
            handle: handle,
            sink: sink,
            headerList: headerList,
            delivery: submission.delivery
        )
        transferOfHandle[handle.curl] = ticket.id
        slot.active += 1
        submission.client.stats.transferStarted()
    }

    /// Ends a transfer: libcurl finished it with `code`, or `nil` when the caller cancelled it.
    /// Unknown ids (already finished) are ignored.
    private func finish(_ id: UInt64, code: CURLcode?) {
        guard let transfer = active.removeValue(forKey: id) else { return }
        let handle = transfer.handle
        transferOfHandle[handle.curl] = nil
        // Removing a transfer that has not completed closes its connection, so a cancelled
        // response can never be mistaken for the next one's.
        curl_multi_remove_handle(multi, handle.curl)

        let outcome: Result<Void, CurlError>
        if code == nil || transfer.ticket.isCancelled {
            outcome = .failure(.cancelledTransfer)
        } else if let code, code != CURLE_OK {
            outcome = .failure(handle.transferError(code, sink: transfer.sink))
        } else {
            outcome = .success(())
        }
        let result: Result<HTTPResponse, CurlError>?
        switch transfer.delivery {
        case .buffered:
            result = outcome.map {
                HTTPResponse(
                    status: handle.responseCode,
                    headers: transfer.sink.headers,
                    body: transfer.sink.takeBody(),
                    connectionsOpened: handle.connectionsOpened
                )
            }
        case .stream:
            // A response without a body never reached the write callback.
            if case .success = outcome { transfer.sink.deliverHeadIfNeeded() }
            result = nil
        }

        handle.clearTransfer()
        curl_slist_free_all(transfer.headerList)
        transfer.client.stats.transferEnded()
        if let slot = clients[transfer.client.id] {
            slot.active -= 1
            if slot.released {
                handle.detachShare()
                if slot.active == 0 {
                    slot.destroy()
                    clients[transfer.client.id] = nil
                }
            } else if slot.idle.count < ClientSlot.maxIdleHandles {
                slot.idle.append(handle)
            } else {
                handle.detachShare()
            }
        }

        switch transfer.delivery {
        case .buffered(let continuation):
            continuation.resume(returning: result ?? .failure(.cancelledTransfer))
        case .stream(let state):
            state.finish(outcome)
        }
    }

    private static func deliver(_ result: Result<HTTPResponse, CurlError>, to delivery: TransferDelivery) {
        switch delivery {
        case .buffered(let continuation):
            continuation.resume(returning: result)
        case .stream(let state):
            state.finish(result.map { _ in () })
        }
    }
}

extension CurlError {
    static let cancelledTransfer = CurlError(kind: .cancelled, code: Int(CURLE_ABORTED_BY_CALLBACK.rawValue), message: "transfer cancelled")
}
