import CCurl

/// One libcurl easy handle. `~Copyable` so exactly one owner ever calls `curl_easy_cleanup`.
struct EasyHandle: ~Copyable {
    private let curl: UnsafeMutableRawPointer
    /// libcurl writes its detailed error text here; it must outlive the handle's transfers.
    private let errorBuffer: UnsafeMutablePointer<CChar>

    init(configuration: CurlClient.Configuration) throws(CurlError) {
        guard let curl = curl_easy_init() else {
            throw CurlError(kind: .setup, code: -1, message: "curl_easy_init returned no handle")
        }
        let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE))
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE))
        // Configure before `self` exists: a noncopyable value cannot be half-built when a throw
        // leaves the initialiser, so failures clean up the raw handle here instead of in deinit.
        do {
            try Self.configure(curl, errorBuffer: errorBuffer, configuration)
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
        try set(CURLOPT_CONNECTTIMEOUT_MS, milliseconds(configuration.connectTimeout))
        try set(CURLOPT_TIMEOUT_MS, milliseconds(configuration.requestTimeout))
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
        try check(ccurl_setopt_pointer(curl, CURLOPT_ERRORBUFFER, errorBuffer))
        try check(ccurl_setopt_data_callback(curl, CURLOPT_WRITEFUNCTION, onBody))
        try check(ccurl_setopt_data_callback(curl, CURLOPT_HEADERFUNCTION, onHeader))
        try check(ccurl_setopt_progress_callback(curl, onProgress))
        try set(CURLOPT_NOPROGRESS, 0)
    }

    deinit {
        curl_easy_cleanup(curl)
        errorBuffer.deallocate()
    }

    mutating func get(
        url: String,
        headers: [(name: String, value: String)],
        maxBodyBytes: Int,
        isCancelled: @escaping () -> Bool
    ) throws(CurlError) -> HTTPResponse {
        var headerList: UnsafeMutablePointer<curl_slist>?
        defer { curl_slist_free_all(headerList) }
        for (name, value) in headers {
            headerList = curl_slist_append(headerList, "\(name): \(value)")
        }
        try check(ccurl_setopt_slist(curl, CURLOPT_HTTPHEADER, headerList))
        try set(CURLOPT_URL, url)
        try set(CURLOPT_HTTPGET, 1)

        let sink = TransferSink(maxBodyBytes: maxBodyBytes, isCancelled: isCancelled)
        let userdata = Unmanaged.passUnretained(sink).toOpaque()
        try check(ccurl_setopt_pointer(curl, CURLOPT_WRITEDATA, userdata))
        try check(ccurl_setopt_pointer(curl, CURLOPT_HEADERDATA, userdata))
        try check(ccurl_setopt_pointer(curl, CURLOPT_XFERINFODATA, userdata))
        errorBuffer[0] = 0

        let result = withExtendedLifetime(sink) { curl_easy_perform(curl) }
        // The sink dies with this call; no callback may find a dangling pointer later.
        try check(ccurl_setopt_pointer(curl, CURLOPT_WRITEDATA, nil))
        try check(ccurl_setopt_pointer(curl, CURLOPT_HEADERDATA, nil))
        try check(ccurl_setopt_pointer(curl, CURLOPT_XFERINFODATA, nil))
        try check(ccurl_setopt_slist(curl, CURLOPT_HTTPHEADER, nil))

        guard result == CURLE_OK else {
            throw transferError(result, sink: sink)
        }
        var status = 0
        var connects = 0
        ccurl_getinfo_long(curl, CURLINFO_RESPONSE_CODE, &status)
        ccurl_getinfo_long(curl, CURLINFO_NUM_CONNECTS, &connects)
        return HTTPResponse(status: status, headers: sink.headers, body: sink.body, connectionsOpened: connects)
    }

    private func transferError(_ code: CURLcode, sink: TransferSink) -> CurlError {
        let detail = errorBuffer[0] != 0 ? String(cString: errorBuffer) : String(cString: curl_easy_strerror(code))
        let kind: CurlError.Kind
        switch code {
        case _ where sink.exceededLimit:
            return CurlError(kind: .bodyTooLarge, code: Int(code.rawValue), message: "response body exceeded \(sink.maxBodyBytes) bytes")
        case _ where sink.wasCancelled:
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

    private func check(_ code: CURLcode) throws(CurlError) {
        try Self.check(code)
    }

    private static func check(_ code: CURLcode) throws(CurlError) {
        guard code == CURLE_OK else {
            throw CurlError(kind: .setup, code: Int(code.rawValue), message: String(cString: curl_easy_strerror(code)))
        }
    }

    private static func milliseconds(_ duration: Duration) -> Int {
        let (seconds, attoseconds) = duration.components
        return max(1, Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000))
    }

    // libcurl calls these on the thread running curl_easy_perform; the sink comes back from
    // `userdata`, so the closures capture nothing (C function pointers cannot).

    private static let onBody: ccurl_data_callback = { data, size, count, userdata in
        guard let userdata, let data else { return 0 }
        let sink = Unmanaged<TransferSink>.fromOpaque(userdata).takeUnretainedValue()
        let length = size * count
        guard sink.body.count + length <= sink.maxBodyBytes else {
            sink.exceededLimit = true
            return 0  // anything but `length` makes libcurl abort with CURLE_WRITE_ERROR
        }
        data.withMemoryRebound(to: UInt8.self, capacity: length) {
            sink.body.append(contentsOf: UnsafeBufferPointer(start: $0, count: length))
        }
        return length
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

    private static let onProgress: ccurl_progress_callback = { userdata, _, _, _, _ in
        guard let userdata else { return 0 }
        let sink = Unmanaged<TransferSink>.fromOpaque(userdata).takeUnretainedValue()
        if sink.isCancelled() {
            sink.wasCancelled = true
            return 1  // non-zero aborts the transfer with CURLE_ABORTED_BY_CALLBACK
        }
        return 0
    }
}

/// Collects one transfer's response. Lives only for one `curl_easy_perform` call, on its thread.
final class TransferSink {
    let maxBodyBytes: Int
    let isCancelled: () -> Bool
    var body: [UInt8] = []
    var headers: [(name: String, value: String)] = []
    var exceededLimit = false
    var wasCancelled = false

    init(maxBodyBytes: Int, isCancelled: @escaping () -> Bool) {
        self.maxBodyBytes = maxBodyBytes
        self.isCancelled = isCancelled
    }

    /// Takes one raw header line. A status line starts a new header block (after a 100
    /// Continue or a proxy's CONNECT answer), so only the final response's fields are kept.
    func receiveHeaderLine(_ line: UnsafeBufferPointer<UInt8>) {
        // Work on bytes: "\r\n" is a single Character in Swift, so String trimming misleads.
        var end = line.count
        while end > 0, line[end - 1] == 0x0A || line[end - 1] == 0x0D { end -= 1 }
        guard end > 0 else { return }
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
}
