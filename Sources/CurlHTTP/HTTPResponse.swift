/// What a GET returned: status, headers and the (decoded) body.
public struct HTTPResponse: Sendable {
    public var status: Int
    /// Header fields of the final response, names lower-cased, in the order received.
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]
    /// New connections libcurl opened for this request; 0 means a kept-alive one was reused.
    public var connectionsOpened: Int

    public init(status: Int, headers: [(name: String, value: String)], body: [UInt8], connectionsOpened: Int = 0) {
        self.status = status
        self.headers = headers
        self.body = body
        self.connectionsOpened = connectionsOpened
    }

    /// The first value of a header field; `name` is matched case-insensitively.
    public func header(_ name: String) -> String? {
        let wanted = name.lowercased()
        return headers.first { $0.name == wanted }?.value
    }
}
