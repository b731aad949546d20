/// Where a listener binds, as `--web.listen-address` (and the simulator's `--listen-address`)
/// spell it: `host:port`, `:port` for every IPv4 interface, or `[ipv6]:port`. The one parser,
/// so the exporter and the simulator accept the same text.
public struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public struct ParseError: Error, Equatable, CustomStringConvertible {
        public let input: String
        public init(input: String) {
            self.input = input
        }
        public var description: String {
            "must be host:port, :port or [ipv6]:port with a port in 0...65535 (got \"\(input)\")"
        }
    }

    public static func parse(_ text: String) throws(ParseError) -> ListenAddress {
        guard let colon = text.lastIndex(of: ":") else { throw ParseError(input: text) }
        var host = String(text[..<colon])
        let portText = text[text.index(after: colon)...]
        guard portText.allSatisfy(\.isASCII), let port = Int(portText), (0...65_535).contains(port) else {
            throw ParseError(input: text)
        }
        if host.hasPrefix("[") || host.hasSuffix("]") {
            guard host.hasPrefix("["), host.hasSuffix("]"), host.count > 2 else { throw ParseError(input: text) }
            host = String(host.dropFirst().dropLast())
        } else if host.contains(":") {
            // An IPv6 host without brackets: its last group would be read as the port.
            throw ParseError(input: text)
        }
        return ListenAddress(host: host.isEmpty ? "0.0.0.0" : host, port: port)
    }

    /// `host:port`, with brackets around an IPv6 host: what logs print and URLs need.
    public var description: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}
