import Basics

/// The status line and headers of a results download, before any body byte.
public struct ResultsResponseHead: Sendable {
    public var status: Int
    public var headers: [(name: String, value: String)]

    public init(status: Int, headers: [(name: String, value: String)]) {
        self.status = status
        self.headers = headers
    }

    /// The first header of that name, compared case-insensitively, value trimmed.
    public func header(_ name: String) -> String? {
        let lowered = name.lowercased()
        return headers.first { $0.name.lowercased() == lowered }?.value.trimmingWhitespace
    }
}

/// What a consumer of a download wants next.
public enum ResultsBodyDecision: Sendable, Equatable {
    case proceed
    /// Abort the transfer now (too large, or a status whose body is not wanted).
    case stop
}

/// Why a results transfer failed: connection refused or cut, timeout, TLS. Never holds body
/// content.
public struct ResultsTransferError: Error, Sendable, CustomStringConvertible, Equatable {
    public var message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}

/// Streams one results file: the collector's way to the network, adapted from the libcurl
/// client in production and scripted in unit tests.
///
/// Contract:
/// - one GET of `url` with exactly `headers` (the caller adds authentication and
///   `Accept: application/x-jsonl`); redirects are not followed: the key must not travel to
///   another host;
/// - `onHead` runs once, before any body; if it returns ``ResultsBodyDecision/stop`` no body is
///   delivered and the call returns;
/// - `onChunk` runs for each body chunk, in order, never concurrently with itself; the
///   buffer is valid only during the call; returning ``ResultsBodyDecision/stop`` aborts the
///   transfer and the call returns without error;
/// - the call returns normally when the body has ended as the transport defines it (length
///   reached, last chunk) or a handler stopped it, and throws ``ResultsTransferError`` when
///   the transfer failed or was cut short. Chunks go straight to the scanner, so nothing
///   needs buffering: memory stays constant whatever the file size.
public protocol ResultsDownloading: Sendable {
    func download(
        url: String,
        headers: [(name: String, value: String)],
        onHead: @escaping @Sendable (ResultsResponseHead) -> ResultsBodyDecision,
        onChunk: @escaping @Sendable (UnsafeRawBufferPointer) -> ResultsBodyDecision
    ) async throws(ResultsTransferError)
}

extension BatchesClient {
    /// The headers for a results download: the list's authentication, version and workspace
    /// headers, with `Accept: application/x-jsonl` as the Go SDK sends it.
    public func resultsRequestHeaders() -> [(name: String, value: String)] {
        requestHeaders().map { $0.name == "accept" ? (name: "accept", value: "application/x-jsonl") : $0 }
    }
}

/// Where a batch's `results_url` may be fetched from.
public enum ResultsURLPolicy {
    public enum Resolution: Sendable, Equatable {
        /// The absolute URL to fetch: same scheme, host and port as the API base URL.
        case allowed(String)
        /// Another origin: never fetched, so the key never goes there. Carries the host for the log.
        case foreignHost(String)
        /// Not a URL this exporter understands.
        case invalid
    }

    /// Resolves `resultsURL` (absolute, or relative to `baseURL`) and allows it only when its
    /// scheme, host and port equal the base URL's. Hosts compare case-insensitively, a
    /// missing port is the scheme's default, and URLs with user info are refused.
    public static func resolve(_ resultsURL: String, baseURL: String) -> Resolution {
        guard let base = Origin(parsing: baseURL) else { return .invalid }
        let text = resultsURL.trimmingWhitespace
        guard !text.isEmpty, !text.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F }) else { return .invalid }
        if text.hasPrefix("//") {
            // Scheme-relative: another host, unless it names the base's own.
            guard let origin = Origin(parsing: base.scheme + ":" + text) else { return .invalid }
            return origin == base ? .allowed(origin.scheme + ":" + text) : .foreignHost(origin.host)
        }
        if let colon = text.firstIndex(of: ":"),
            text[..<colon].allSatisfy({ $0.isLetter || $0.isNumber || $0 == "+" || $0 == "-" || $0 == "." }),
            text[..<colon].first?.isLetter == true
        {
            guard let origin = Origin(parsing: text) else { return .invalid }
            return origin == base ? .allowed(text) : .foreignHost(origin.host)
        }
        // Relative: a path from the root replaces the base's path; any other is taken relative
        // to the base's path as a directory.
        var prefix = base.text
        if text.hasPrefix("/") {
            return .allowed(prefix + text)
        }
        var path = base.path
        if !path.hasSuffix("/") {
            path = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)]) + "/"
        }
        prefix += path.hasPrefix("/") ? path : "/" + path
        return .allowed(prefix + text)
    }

    /// Scheme, host and port of an absolute http(s) URL, plus its path.
    struct Origin: Equatable {
        var scheme: String
        var host: String
        var port: Int
        /// `scheme://host[:port]` as written (host lowercased), without a trailing slash.
        var text: String
        var path: String

        static func == (lhs: Self, rhs: Self) -> Bool {
            lhs.scheme == rhs.scheme && lhs.host == rhs.host && lhs.port == rhs.port
        }

        init?(parsing url: String) {
            guard let colon = url.firstIndex(of: ":"), url[colon...].hasPrefix("://") else { return nil }
            let scheme = url[..<colon].lowercased()
            let defaultPort: Int
            switch scheme {
            case "https": defaultPort = 443
            case "http": defaultPort = 80
            default: return nil
            }
            let rest: Substring = url[url.index(colon, offsetBy: 3)...]
            let authorityEnd: String.Index =
                rest.firstIndex { (character: Character) -> Bool in
                    character == "/" || character == "?" || character == "#"
                } ?? rest.endIndex
            let authority = rest[..<authorityEnd]
            guard !authority.isEmpty, !authority.contains("@") else { return nil }
            var host = Substring(authority)
            var port = defaultPort
            if authority.hasPrefix("[") {
                guard let close = authority.firstIndex(of: "]") else { return nil }
                host = authority[...close]
                let after = authority[authority.index(after: close)...]
                if !after.isEmpty {
                    guard after.hasPrefix(":"), let value = Int(after.dropFirst()), (0...65535).contains(value) else { return nil }
                    port = value
                }
            } else if let colon = authority.lastIndex(of: ":") {
                host = authority[..<colon]
                let portText = authority[authority.index(after: colon)...]
                if !portText.isEmpty {
                    guard let value = Int(portText), (0...65535).contains(value) else { return nil }
                    port = value
                }
            }
            guard !host.isEmpty else { return nil }
            self.scheme = scheme
            self.host = host.lowercased()
            self.port = port
            self.text = scheme + "://" + authority.lowercased()
            var path = String(rest[authorityEnd...])
            if let cut = path.firstIndex(where: { $0 == "?" || $0 == "#" }) { path = String(path[..<cut]) }
            self.path = path
        }
    }
}
