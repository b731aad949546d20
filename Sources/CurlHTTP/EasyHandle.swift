import Basics
import CCurl

/// One libcurl easy handle. It lives on the engine thread only (created, used, pooled and
/// cleaned up there); a non-`Sendable` class, so the compiler keeps it from being handed to
/// other concurrency domains. `curl_easy_cleanup` runs exactly once, in `deinit`.
final class EasyHandle {
    let curl: UnsafeMutableRawPointer
    /// libcurl writes its detailed error text here; it must outlive the handle's transfers.
    private let errorBuffer: UnsafeMutablePointer<CChar>

    /// Creates a handle with the client's fixed settings, attached to the client's share handle.
    init(configuration: CurlClient.Configuration, share: UnsafeMutableRawPointer) throws(CurlError) {
        guard let curl = curl_easy_init() else {
            throw CurlError(kind: .setup, code: -1, message: "curl_easy_init returned no handle")
        }
        let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE))
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE))
        do {
            try Self.configure(curl, errorBuffer: errorBuffer, configuration)
            try Self.check(ccurl_setopt_share(curl, share))
        } catch {
            curl_easy_cleanup(curl)
            errorBuffer.deallocate()
            throw error
        }
        self.curl = curl
        self.errorBuffer = errorBuffer
    }

    private static func configure(
        _ curl: UnsafeMutableRawPointer,
        errorBuffer: UnsafeMutablePointer<CChar>,
        _ configuration: CurlClient.Configuration
    ) throws(CurlError) {
        func set(_ option: CURLoption, _ value: Int) throws(CurlError) {
            try check(ccurl_setopt_long(curl, option, value))
        }
        func set(_ option: CURLoption, _ value: String) throws(CurlError) {
            // libcurl copies string options (since 7.17), so the temporary C string may go away.
            try check(ccurl_setopt_string(curl, option, value))
        }
        // Signals cannot be used for timeouts in a multi-threaded process.
        try set(CURLOPT_NOSIGNAL, 1)
        // "" offers every encoding this libcurl can decode and decodes transparently.
        try set(CURLOPT_ACCEPT_ENCODING, "")
        try set(CURLOPT_USERAGENT, configuration.userAgent)
        // Redirects would carry the API key to wherever they point: never follow them.
        try set(CURLOPT_FOLLOWLOCATION, 0)
        try set(CURLOPT_PROTOCOLS_STR, "http,https")
        // Verification is libcurl's default; set it anyway so no build default can weaken it.
        try set(CURLOPT_SSL_VERIFYPEER, 1)
        try set(CURLOPT_SSL_VERIFYHOST, 2)
        if let caFile = configuration.caFile {
            // With OpenSSL, CAINFO and CAPATH are both consulted: the extra bundle is added to
            // the system store rather than replacing it.
            try set(CURLOPT_CAINFO, caFile)
            try set(CURLOPT_CAPATH, "/etc/ssl/certs")
        }
        try set(CURLOPT_TCP_KEEPALIVE, 1)
        // Cancellation removes the handle from the multi handle; no progress callback needed.
        try set(CURLOPT_NOPROGRESS, 1)
        try check(ccurl_setopt_pointer(curl, CURLOPT_ERRORBUFFER, errorBuffer))
        try check(ccurl_setopt_data_callback(curl, CURLOPT_WRITEFUNCTION, onBody))
        try check(ccurl_setopt_data_callback(curl, CURLOPT_HEADERFUNCTION, onHeader))
    }

    deinit {
        curl_easy_cleanup(curl)
        errorBuffer.deallocate()
    }

    /// Sets everything that may differ between transfers (a pooled handle keeps the previous
    /// transfer's values otherwise) and points the callbacks at `sink`. Returns the header list,
    /// which must outlive the transfer; the caller frees it.
    func prepare(_ request: TransferRequest, sink: TransferSink) throws(CurlError) -> UnsafeMutablePointer<curl_slist>? {
        var headerList: UnsafeMutablePointer<curl_slist>?
        for (name, value) in request.headers {
            headerList = curl_slist_append(headerList, "\(name): \(value)")
        }
        do {
            try Self.check(ccurl_setopt_slist(curl, CURLOPT_HTTPHEADER, headerList))
            try set(CURLOPT_URL, request.url)
            try set(CURLOPT_HTTPGET, 1)
            try set(CURLOPT_CONNECTTIMEOUT_MS, request.connectTimeout.timeoutMilliseconds)
            // 0 means no limit to libcurl.
            try set(CURLOPT_TIMEOUT_MS, request.totalTimeout.map(\.timeoutMilliseconds) ?? 0)
            try set(CURLOPT_LOW_SPEED_LIMIT, request.lowSpeed.map { max(1, $0.bytesPerSecond) } ?? 0)
            try set(CURLOPT_LOW_SPEED_TIME, request.lowSpeed.map(\.duration.timeoutSeconds) ?? 0)
            // The sink outlives the transfer: the engine keeps it in `ActiveTransfer` until
            // `clearTransfer` has unhooked it.
            let userdata = Unmanaged.passUnretained(sink).toOpaque()
            try Self.check(ccurl_setopt_pointer(curl, CURLOPT_WRITEDATA, userdata))
            try Self.check(ccurl_setopt_pointer(curl, CURLOPT_HEADERDATA, userdata))
        } catch {
            curl_slist_free_all(headerList)
            throw error
        }
        errorBuffer[0] = 0
        return headerList
    }

    /// Unhooks the finished transfer's sink and header list, so no callback can find either
    /// after they are gone.
    func clearTransfer() {
        ccurl_setopt_pointer(curl, CURLOPT_WRITEDATA, nil)
        ccurl_setopt_pointer(curl, CURLOPT_HEADERDATA, nil)
        ccurl_setopt_slist(curl, CURLOPT_HTTPHEADER, nil)
    }

    /// Detaches the handle from its client's share handle, which can then be cleaned up.
    func detachShare() {
        ccurl_setopt_share(curl, nil)
    }

    var responseCode: Int {
        var status = 0
        ccurl_getinfo_long(curl, CURLINFO_RESPONSE_CODE, &status)
        return status
    }

    var connectionsOpened: Int {
        var connects = 0
        ccurl_getinfo_long(curl, CURLINFO_NUM_CONNECTS, &connects)
        return connects
    }

    func transferError(_ code: CURLcode, sink: TransferSink) -> CurlError {
        let detail = errorBuffer[0] != 0 ? String(cString: errorBuffer) : String(cString: curl_easy_strerror(code))
        let kind: CurlError.Kind
        switch code {
        case _ where sink.exceededLimit:
            return CurlError(kind: .bodyTooLarge, code: Int(code.rawValue), message: "response body exceeded \(sink.maxBodyBytes) bytes")
        case _ where sink.consumerGone:
            return CurlError(kind: .cancelled, code: Int(code.rawValue), message: "transfer cancelled")
        case CURLE_OPERATION_TIMEDOUT:
            kind = .timeout
        case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CACERT_BADFILE,
            CURLE_SSL_CERTPROBLEM, CURLE_SSL_CIPHER, CURLE_SSL_ISSUER_ERROR, CURLE_SSL_PINNEDPUBKEYNOTMATCH:
            kind = .tls
        default:
            kind = .transport
        }
        return CurlError(kind: kind, code: Int(code.rawValue), message: detail)
    }

    private func set(_ option: CURLoption, _ value: Int) throws(CurlError) {
        try Self.check(ccurl_setopt_long(curl, option, value))
    }

    private func set(_ option: CURLoption, _ value: String) throws(CurlError) {
        try Self.check(ccurl_setopt_string(curl, option, value))
    }

    private static func check(_ code: CURLcode) throws(CurlError) {
        guard code == CURLE_OK else {
            throw CurlError(kind: .setup, code: Int(code.rawValue), message: String(cString: curl_easy_strerror(code)))
        }
    }

    // libcurl calls these on the engine thread, inside curl_multi_perform or curl_easy_pause; the
    // sink comes back from `userdata`, so the closures capture nothing (C function pointers
    // cannot).

    private static let onBody: ccurl_data_callback = { data, size, count, userdata in
        guard let userdata, let data else { return 0 }
        let sink = Unmanaged<TransferSink>.fromOpaque(userdata).takeUnretainedValue()
        let length = size * count
        return data.withMemoryRebound(to: UInt8.self, capacity: length) {
            sink.receiveBody(UnsafeBufferPointer(start: $0, count: length))
        }
    }

    private static let onHeader: ccurl_data_callback = { data, size, count, userdata in
        guard let userdata, let data else { return 0 }
        let sink = Unmanaged<TransferSink>.fromOpaque(userdata).takeUnretainedValue()
        let length = size * count
        let line = data.withMemoryRebound(to: UInt8.self, capacity: length) {
            UnsafeBufferPointer(start: $0, count: length)
        }
        sink.receiveHeaderLine(line)
        return length
    }
}

/// Collects one transfer's response on the engine thread: the header block, and the body either
/// into one array (`get`) or into a `StreamState` with backpressure (`stream`).
final class TransferSink {
    let maxBodyBytes: Int
    private(set) var headers: [(name: String, value: String)] = []
    private(set) var exceededLimit = false
    /// The stream's consumer went away; the transfer was aborted for that.
    private(set) var consumerGone = false
    private var body: [UInt8] = []
    private var bodyBytes = 0
    private let stream: StreamState?
    private var headDelivered = false
    /// For `CURLINFO_RESPONSE_CODE` when a header block ends. `nil` in unit tests.
    private let curl: UnsafeMutableRawPointer?

    init(curl: UnsafeMutableRawPointer?, maxBodyBytes: Int, stream: StreamState? = nil) {
        self.curl = curl
        self.maxBodyBytes = maxBodyBytes
        self.stream = stream
    }

    func takeBody() -> [UInt8] {
        defer { body = [] }
        return body
    }

    /// Takes body bytes; returns what libcurl's write callback must: `bytes.count` to go on,
    /// anything else to abort, or `CURL_WRITEFUNC_PAUSE` to be called again with the same
    /// bytes after an unpause.
    func receiveBody(_ bytes: UnsafeBufferPointer<UInt8>) -> Int {
        guard bodyBytes + bytes.count <= maxBodyBytes else {
            exceededLimit = true
            return 0  // anything but `bytes.count` makes libcurl abort with CURLE_WRITE_ERROR
        }
        guard let stream else {
            body.append(contentsOf: bytes)
            bodyBytes += bytes.count
            return bytes.count
        }
        deliverHeadIfNeeded()
        switch stream.offer(bytes) {
        case .accepted:
            bodyBytes += bytes.count
            return bytes.count
        case .pause:
            return ccurl_writefunc_pause()
        case .closed:
            consumerGone = true
            return 0
        }
    }

    /// Hands a stream's head to its consumer, once. Called when the final header block ends,
    /// and as a fallback at the first body byte or at completion.
    func deliverHeadIfNeeded() {
        guard let stream, !headDelivered, let curl else { return }
        headDelivered = true
        var status = 0
        var connects = 0
        ccurl_getinfo_long(curl, CURLINFO_RESPONSE_CODE, &status)
        ccurl_getinfo_long(curl, CURLINFO_NUM_CONNECTS, &connects)
        stream.deliverHead(ResponseHead(status: status, headers: headers, connectionsOpened: connects))
    }

    /// Takes one raw header line. A status line starts a new header block (after a 100
    /// Continue or a proxy's CONNECT answer), so only the final response's fields are kept.
    func receiveHeaderLine(_ line: UnsafeBufferPointer<UInt8>) {
        // Work on bytes: "\r\n" is a single Character in Swift, so String trimming misleads.
        var end = line.count
        while end > 0, line[end - 1] == 0x0A || line[end - 1] == 0x0D { end -= 1 }
        guard end > 0 else {
            headerBlockEnded()
            return
        }
        guard !headDelivered else { return }  // trailers after a streamed body's head
        let bytes = UnsafeBufferPointer(rebasing: line[0..<end])
        if bytes.starts(with: Array("HTTP/".utf8)) {
            headers.removeAll()
            return
        }
        guard let colon = bytes.firstIndex(of: UInt8(ascii: ":")) else { return }
        let name = String(decoding: bytes[..<colon], as: UTF8.self).lowercased()
        var valueStart = colon + 1
        while valueStart < end, bytes[valueStart] == 0x20 || bytes[valueStart] == 0x09 { valueStart += 1 }
        headers.append((name, String(decoding: bytes[valueStart..<end], as: UTF8.self)))
    }

    /// An empty line ends a header block. `CURLINFO_RESPONSE_CODE` is 0 after a proxy's CONNECT
    /// answer and 1xx after an interim one; only a final status means the head is complete.
    private func headerBlockEnded() {
        guard stream != nil, !headDelivered, let curl else { return }
        var status = 0
        ccurl_getinfo_long(curl, CURLINFO_RESPONSE_CODE, &status)
        if status >= 200 { deliverHeadIfNeeded() }
    }
}
