/// One request to `/v1/...` as the simulator saw it. The API key is never recorded, only
/// whether it matched.
public struct RequestLogEntry: Sendable, Equatable {
    /// When the request arrived, in milliseconds of `ContinuousClock` since the workspace was
    /// created: monotonic, so tests can measure a client's backoff between attempts.
    public var receivedMilliseconds: Int64
    public var method: String
    public var path: String
    /// The query re-encoded in the order sent (`limit=1000&after_id=msgbatch_...`).
    public var query: String
    /// The status answered; `nil` when the connection was closed without an answer.
    public var status: Int?
    public var keyMatched: Bool
    public var anthropicVersion: String?
    public var userAgent: String?
    public var anthropicWorkspaceID: String?
    public var requestID: String
    /// The injected fault's kind, if one was consumed by this request.
    public var fault: String?

    func write(to json: inout JSONWriter) {
        json.object { fields in
            fields.int("received_ms", Int(receivedMilliseconds))
            fields.string("method", method)
            fields.string("path", path)
            fields.string("query", query)
            fields.int("status", status)
            fields.bool("key_matched", keyMatched)
            fields.string("anthropic_version", anthropicVersion)
            fields.string("user_agent", userAgent)
            fields.string("anthropic_workspace_id", anthropicWorkspaceID)
            fields.string("request_id", requestID)
            fields.string("fault", fault)
        }
    }
}

/// The request log, bounded so that a simulator left running under a benchmark cannot grow
/// without limit: past `capacity` the oldest tenth is dropped (and counted).
struct RequestLog {
    static let capacity = 200_000

    private(set) var entries: [RequestLogEntry] = []
    private(set) var dropped = 0

    mutating func append(_ entry: RequestLogEntry) {
        if entries.count >= Self.capacity {
            let excess = Self.capacity / 10
            entries.removeFirst(excess)
            dropped += excess
        }
        entries.append(entry)
    }

    mutating func removeAll() {
        entries.removeAll()
        dropped = 0
    }
}

/// FIFO of scripted faults; popping is O(1) so a long script costs nothing per request.
struct FaultQueue<Fault: Sendable>: Sendable {
    private var items: [Fault] = []
    private var head = 0

    var pending: [Fault] {
        Array(items[head...])
    }

    mutating func enqueue(_ fault: Fault, count: Int) {
        items.append(contentsOf: repeatElement(fault, count: count))
    }

    mutating func popFirst() -> Fault? {
        guard head < items.count else { return nil }
        let fault = items[head]
        head += 1
        if head == items.count {
            items.removeAll(keepingCapacity: true)
            head = 0
        }
        return fault
    }

    mutating func removeAll() {
        items.removeAll()
        head = 0
    }
}

enum QueryEncoding {
    /// Percent-encodes everything but RFC 3986's unreserved characters, so the logged query is
    /// unambiguous whatever the client sent.
    static func encode(_ query: [(name: String, value: String)]) -> String {
        var bytes: [UInt8] = []
        for (offset, pair) in query.enumerated() {
            if offset > 0 { bytes.append(UInt8(ascii: "&")) }
            append(pair.name, to: &bytes)
            bytes.append(UInt8(ascii: "="))
            append(pair.value, to: &bytes)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static let hex = Array("0123456789ABCDEF".utf8)

    private static func append(_ text: String, to bytes: inout [UInt8]) {
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."),
                UInt8(ascii: "_"), UInt8(ascii: "~"):
                bytes.append(byte)
            default:
                bytes.append(UInt8(ascii: "%"))
                bytes.append(hex[Int(byte >> 4)])
                bytes.append(hex[Int(byte & 0x0F)])
            }
        }
    }
}
