/// A request as a responder sees it: the head only, since the listener accepts no request bodies.
public struct ServerRequest: Sendable {
    /// The method as sent, upper case (`GET`, `HEAD`, ...).
    public var method: String
    /// The path without the query string, percent-decoding left to the responder.
    public var path: String
    /// Query parameters in the order sent; names and values percent-decoded.
    public var query: [(name: String, value: String)]
    /// Header fields in the order sent.
    public var headers: [(name: String, value: String)]

    public init(
        method: String,
        path: String,
        query: [(name: String, value: String)] = [],
        headers: [(name: String, value: String)] = []
    ) {
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
    }

    /// Parses a request target (`/path?a=1&b=two`) into its path and decoded query. The
    /// absolute form (`http://host/path`), which clients send to proxies and servers must
    /// accept (RFC 9112, 3.2.2), is reduced to its path and query.
    public init(method: String, target: String, headers: [(name: String, value: String)]) {
        var target = Substring(target)
        if !target.hasPrefix("/"), let colon = target.firstIndex(of: ":"), target[..<colon].allSatisfy(\.isLetter),
            target[colon...].hasPrefix("://")
        {
            let authorityAndRest = target[target.index(colon, offsetBy: 3)...]
            // The authority ends at the first "/" or "?"; a target with no path means "/".
            let rest = authorityAndRest.firstIndex { $0 == "/" || $0 == "?" }.map { authorityAndRest[$0...] } ?? ""
            target = rest.hasPrefix("/") ? rest : "/" + rest
        }
        let parts = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        self.init(
            method: method,
            path: String(parts.first ?? ""),
            query: parts.count > 1 ? Self.parseQuery(parts[1]) : [],
            headers: headers
        )
    }

    /// The first value of a header field, matched case-insensitively as HTTP requires.
    public func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    /// The first value of a query parameter.
    public func queryValue(_ name: String) -> String? {
        query.first { $0.name == name }?.value
    }

    static func parseQuery(_ raw: Substring) -> [(name: String, value: String)] {
        raw.split(separator: "&").map { pair in
            let nameAndValue = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = percentDecoded(nameAndValue[0])
            let value = nameAndValue.count > 1 ? percentDecoded(nameAndValue[1]) : ""
            return (name, value)
        }
    }

    /// Decodes `%XX` escapes and `+` (form encoding); malformed escapes are kept as sent.
    static func percentDecoded(_ text: Substring) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = Array(text.utf8)[...]
        while let byte = iterator.popFirst() {
            switch byte {
            case UInt8(ascii: "+"):
                bytes.append(UInt8(ascii: " "))
            case UInt8(ascii: "%"):
                if iterator.count >= 2,
                    let high = hexValue(iterator[iterator.startIndex]),
                    let low = hexValue(iterator[iterator.startIndex + 1])
                {
                    bytes.append(high << 4 | low)
                    iterator = iterator.dropFirst(2)
                } else {
                    bytes.append(byte)
                }
            default:
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
