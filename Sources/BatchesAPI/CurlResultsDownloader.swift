import CurlHTTP

/// Results downloads over libcurl's streaming transfer: the body reaches the consumer chunk
/// by chunk, the transfer pausing while about a megabyte waits unread, so a file of any size
/// is counted in constant memory. Redirects stay off, as for every request of this client.
extension CurlClient: ResultsDownloading {
    public func download(
        url: String,
        headers: [(name: String, value: String)],
        onHead: @escaping @Sendable (ResultsResponseHead) -> ResultsBodyDecision,
        onChunk: @escaping @Sendable (UnsafeRawBufferPointer) -> ResultsBodyDecision
    ) async throws(ResultsTransferError) {
        do {
            // No total timeout: a multi-gigabyte file may take long. A transfer that moves less
            // than a byte a second for a minute is abandoned (the options' default).
            try await stream(url: url, headers: headers, options: StreamOptions()) { head, body in
                guard onHead(ResultsResponseHead(status: head.status, headers: head.headers)) == .proceed else { return }
                for try await chunk in body {
                    guard chunk.withUnsafeBytes({ onChunk($0) }) == .proceed else { return }
                }
            }
        } catch let error as CurlError {
            // libcurl's own words: a code and a reason, never body content.
            throw ResultsTransferError(error.description)
        } catch {
            throw ResultsTransferError("results transfer failed: \(type(of: error))")
        }
    }
}
