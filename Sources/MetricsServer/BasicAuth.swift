import Basics
import CCrypt
import HTTPServing
import NIOCore
import NIOPosix
import Synchronization

/// Checks passwords against bcrypt hashes (`$2y$`, `$2b$`, `$2a$`) with libxcrypt.
public struct BcryptVerifier: Sendable {
    /// A valid bcrypt hash of a random string: unknown users are checked against it, so a
    /// wrong user name costs as long as a wrong password and timing does not reveal names.
    static let decoyHash = "$2b$10$1e4K49FeFt60Yl76IpUV/eBifZzZ8Smj9BhL/XZUhZ7KDDLLf2O/2"

    public init() {}

    /// Whether `password` matches `hash`. Slow by design (bcrypt): call it off the event loop.
    public func verify(password: String, hash: String) -> Bool {
        // struct crypt_data is ~32 KiB: on the heap, and per call, so threads never share one.
        let data = UnsafeMutablePointer<crypt_data>.allocate(capacity: 1)
        defer { data.deallocate() }
        memset(data, 0, MemoryLayout<crypt_data>.size)
        guard let result = crypt_rn(password, hash, data, Int32(MemoryLayout<crypt_data>.size)) else { return false }
        let computed = Array(String(cString: result).utf8)
        let expected = Array(hash.utf8)
        // Constant time over the hash length: no early exit on the first differing byte.
        guard computed.count == expected.count else { return false }
        var difference: UInt8 = 0
        for index in 0..<expected.count { difference |= computed[index] ^ expected[index] }
        return difference == 0
    }
}

/// bcrypt's own threads, started on first use (a global `let` is initialised once, thread-safely)
/// and never shut down. bcrypt is slow on purpose: on a pool of its own it can never take a
/// thread from other blocking work, nor wait behind it. Two threads: a burst of new scrapers
/// queues here instead of taking every core, and the cache below makes repeats free.
let bcryptThreadPool: NIOThreadPool = {
    let pool = NIOThreadPool(numberOfThreads: 2)
    pool.start()
    return pool
}()

/// Requires HTTP basic auth (exporter-toolkit's `basic_auth_users`) before `inner` answers.
/// bcrypt runs on ``bcryptThreadPool``, never on the event loop; successful checks are
/// remembered (a small bounded cache) so a scraper pays the bcrypt cost once, not per scrape.
public struct BasicAuthResponder: HTTPResponder {
    private let inner: any HTTPResponder
    private let users: [String: String]
    private let verifier = BcryptVerifier()
    private let verified = VerifiedCredentials()
    /// Paths answered without credentials: liveness and readiness probes from orchestrators
    /// and load balancers, which say nothing about the batches.
    private let openPaths: Set<String>

    public init(wrapping inner: any HTTPResponder, users: [String: String], openPaths: Set<String> = ["/-/healthy", "/-/ready"]) {
        self.inner = inner
        self.users = users
        self.openPaths = openPaths
    }

    public func respond(to request: ServerRequest) -> ServerResponse {
        if openPaths.contains(request.path) { return inner.respond(to: request) }
        guard let (user, password) = Self.credentials(request) else { return Self.unauthorized }
        return check(user: user, password: password) ? inner.respond(to: request) : Self.unauthorized
    }

    public func respond(to request: ServerRequest, on eventLoop: any EventLoop) -> EventLoopFuture<ServerResponse> {
        if openPaths.contains(request.path) { return inner.respond(to: request, on: eventLoop) }
        guard let (user, password) = Self.credentials(request) else { return eventLoop.makeSucceededFuture(Self.unauthorized) }
        if verified.contains(user: user, password: password) {
            return inner.respond(to: request, on: eventLoop)
        }
        return bcryptThreadPool.runIfActive(eventLoop: eventLoop) { [self] in
            check(user: user, password: password)
        }.flatMap { [inner] ok in
            ok ? inner.respond(to: request, on: eventLoop) : eventLoop.makeSucceededFuture(Self.unauthorized)
        }
    }

    private func check(user: String, password: String) -> Bool {
        let known = users[user]
        let ok = verifier.verify(password: password, hash: known ?? BcryptVerifier.decoyHash) && known != nil
        if ok { verified.insert(user: user, password: password) }
        return ok
    }

    static let unauthorized = ServerResponse.text(
        401, "Unauthorized\n", headers: [("WWW-Authenticate", #"Basic realm="anthropic-batches-exporter", charset="UTF-8""#)])

    /// `Authorization: Basic base64(user:password)`.
    static func credentials(_ request: ServerRequest) -> (String, String)? {
        guard let header = request.header("authorization"), header.lowercased().hasPrefix("basic ") else { return nil }
        guard let decoded = Base64.decode(header.dropFirst(6).trimmingWhitespace) else { return nil }
        let text = String(decoding: decoded, as: UTF8.self)
        guard let colon = text.firstIndex(of: ":") else { return nil }
        return (String(text[..<colon]), String(text[text.index(after: colon)...]))
    }
}

/// Credentials that passed bcrypt, kept so the next scrape skips it. Bounded: when full it is
/// emptied, which costs one bcrypt per scraper.
final class VerifiedCredentials: Sendable {
    private let entries = Mutex<Set<String>>([])
    private let capacity = 64

    func contains(user: String, password: String) -> Bool {
        entries.withLock { $0.contains(Self.key(user, password)) }
    }

    func insert(user: String, password: String) {
        entries.withLock { entries in
            if entries.count >= capacity { entries.removeAll() }
            entries.insert(Self.key(user, password))
        }
    }

    private static func key(_ user: String, _ password: String) -> String {
        // The NUL cannot occur in a header value, so distinct pairs give distinct keys.
        "\(user)\u{0}\(password)"
    }
}

/// Standard Base64 (RFC 4648), decode only; `nil` for malformed input.
enum Base64 {
    static func decode(_ text: String) -> [UInt8]? {
        var values: [UInt8] = []
        values.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): values.append(byte - UInt8(ascii: "A"))
            case UInt8(ascii: "a")...UInt8(ascii: "z"): values.append(byte - UInt8(ascii: "a") + 26)
            case UInt8(ascii: "0")...UInt8(ascii: "9"): values.append(byte - UInt8(ascii: "0") + 52)
            case UInt8(ascii: "+"): values.append(62)
            case UInt8(ascii: "/"): values.append(63)
            case UInt8(ascii: "="): continue
            default: return nil
            }
        }
        guard values.count % 4 != 1 else { return nil }
        var output: [UInt8] = []
        var index = 0
        while index + 1 < values.count {
            let chunk = values[index..<min(index + 4, values.count)]
            let a = chunk[chunk.startIndex], b = chunk[chunk.startIndex + 1]
            output.append(a << 2 | b >> 4)
            if chunk.count > 2 {
                let c = chunk[chunk.startIndex + 2]
                output.append(b << 4 | c >> 2)
                if chunk.count > 3 { output.append(c << 6 | chunk[chunk.startIndex + 3]) }
            }
            index += 4
        }
        return output
    }
}
