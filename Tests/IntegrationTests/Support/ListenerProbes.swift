import Foundation
import Synchronization

/// Raises this process's soft limit on open files to at least `needed` (at most to the hard
/// limit). Child processes started afterwards inherit it.
func ensureOpenFileLimit(atLeast needed: Int) throws {
    var limit = rlimit()
    let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
    guard getrlimit(resource, &limit) == 0 else { throw TestFailure("getrlimit(RLIMIT_NOFILE) failed: errno \(errno)") }
    guard limit.rlim_cur < rlim_t(needed) else { return }
    guard limit.rlim_max >= rlim_t(needed) else {
        throw TestFailure("this test needs \(needed) open files; the hard limit is \(limit.rlim_max) (raise it with ulimit -Hn)")
    }
    limit.rlim_cur = limit.rlim_max
    guard setrlimit(resource, &limit) == 0 else { throw TestFailure("setrlimit(RLIMIT_NOFILE, \(limit.rlim_max)) failed: errno \(errno)") }
}

/// A TCP connection to 127.0.0.1 made with raw POSIX calls; returns the descriptor.
/// `receiveBuffer`, when given, is set before `connect` so the advertised window stays small
/// (a slow reader whose response backs up into the server).
func connectLoopback(port: Int, timeout: Duration, receiveBuffer: Int? = nil) throws -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestFailure("socket() failed: errno \(errno)") }
    if var size = receiveBuffer.map(Int32.init) {
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
    }
    var seconds = timeval(tv_sec: Int(timeout.components.seconds), tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &seconds, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &seconds, socklen_t(MemoryLayout<timeval>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    inet_pton(AF_INET, "127.0.0.1", &address.sin_addr)
    let result = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard result == 0 else {
        let error = errno
        close(fd)
        throw TestFailure("connect to port \(port) failed: errno \(error)")
    }
    return fd
}

/// Whether the peer has closed `fd`: waits up to `timeout` for it to become readable, then
/// peeks without consuming. Data waiting (not a close) and silence both count as open.
func peerHasClosed(_ fd: Int32, within timeout: Duration = .zero) -> Bool {
    var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
    let milliseconds = Int32((timeout / .milliseconds(1)).rounded(.up))
    guard poll(&descriptor, 1, milliseconds) > 0 else { return false }
    if descriptor.revents & Int16(POLLHUP | POLLERR) != 0 && descriptor.revents & Int16(POLLIN) == 0 { return true }
    var byte: UInt8 = 0
    let count = recv(fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
    return count == 0 || (count < 0 && (errno == ECONNRESET || errno == EPIPE))
}

extension RawConnection {
    /// Non-blocking (or briefly waiting) variant of ``isClosedByPeer()``: never waits for the
    /// receive timeout, so thousands of connections can be checked at once.
    func isClosedByPeer(within timeout: Duration) -> Bool {
        peerHasClosed(fd, within: timeout)
    }
}

/// Slow-loris clients: each opens a connection and sends the start of a request head a few
/// bytes at a time, forever, never the blank line that would end it. A background thread does
/// the dripping until ``stop()``; a connection the server closes is noticed and left alone.
final class SlowLorisSenders: Sendable {
    private struct State {
        var stopped = false
        var closedByServer: Set<Int> = []
        var bytesSent = 0
    }

    private let descriptors: [Int32]
    private let state = Mutex(State())
    private let finished = DispatchSemaphore(value: 0)

    /// The head so far: a valid request line and header, then a header value that never ends.
    private static let prefix = Array("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow-loris\r\nX-Drip: ".utf8)

    init(count: Int, port: Int, bytesPerTick: Int = 3, interval: Duration = .milliseconds(200)) throws {
        var descriptors: [Int32] = []
        do {
            for _ in 0..<count { descriptors.append(try connectLoopback(port: port, timeout: .seconds(5))) }
        } catch {
            descriptors.forEach { close($0) }
            throw error
        }
        self.descriptors = descriptors
        let thread = Thread { [self] in drip(bytesPerTick: bytesPerTick, interval: interval) }
        thread.start()
    }

    private func drip(bytesPerTick: Int, interval: Duration) {
        var offsets = [Int](repeating: 0, count: descriptors.count)
        let microseconds = UInt32(interval / .microseconds(1))
        while !state.withLock({ $0.stopped }) {
            for (index, fd) in descriptors.enumerated() where !state.withLock({ $0.closedByServer.contains(index) }) {
                if peerHasClosed(fd) {
                    state.withLock { _ = $0.closedByServer.insert(index) }
                    continue
                }
                var chunk: [UInt8] = []
                for _ in 0..<bytesPerTick {
                    let offset = offsets[index]
                    chunk.append(offset < Self.prefix.count ? Self.prefix[offset] : UInt8(ascii: "a"))
                    offsets[index] += 1
                }
                let sent = chunk.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
                if sent < 0 {
                    state.withLock { _ = $0.closedByServer.insert(index) }
                } else {
                    state.withLock { $0.bytesSent += sent }
                }
            }
            usleep(microseconds)
        }
        finished.signal()
    }

    /// How many of the connections the server has closed so far.
    var closedByServer: Int { state.withLock { $0.closedByServer.count } }
    var bytesSent: Int { state.withLock { $0.bytesSent } }
    var count: Int { descriptors.count }

    /// Stops dripping and closes every connection. Safe to call more than once.
    func stop() {
        let wasStopped = state.withLock { state in
            defer { state.stopped = true }
            return state.stopped
        }
        guard !wasStopped else { return }
        finished.wait()
        descriptors.forEach { close($0) }
    }

    deinit { stop() }
}

/// A connection that reads its response at the pace the test chooses. Its receive buffer is
/// made small before connecting, so a large response backs up into the server instead of
/// landing in this process's kernel buffer at once.
final class SlowReader {
    let fd: Int32
    private(set) var received: [UInt8] = []

    init(port: Int, timeout: Duration = .seconds(10), receiveBuffer: Int = 8 * 1024) throws {
        fd = try connectLoopback(port: port, timeout: timeout, receiveBuffer: receiveBuffer)
    }

    deinit { close(fd) }

    func send(_ text: String) throws {
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard written > 0 else { throw TestFailure("send failed: errno \(errno)") }
            offset += written
        }
    }

    /// Reads until at least `count` bytes have arrived in total (or the peer closes, or the
    /// receive timeout passes). Returns whether `count` was reached.
    @discardableResult
    func read(atLeast count: Int, chunkSize: Int = 4_096) -> Bool {
        var chunk = [UInt8](repeating: 0, count: chunkSize)
        while received.count < count {
            let got = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if got <= 0 { return false }
            received.append(contentsOf: chunk[0..<got])
        }
        return true
    }

    /// The head's end, once it has arrived: the index of the first body byte.
    var bodyStart: Int? {
        let separator = Array("\r\n\r\n".utf8)
        guard received.count >= 4 else { return nil }
        return received.indices.dropLast(3).first { received[$0] == 13 && Array(received[$0..<$0 + 4]) == separator }.map { $0 + 4 }
    }

    /// A header value from the head received so far.
    func header(_ name: String) -> String? {
        guard let bodyStart else { return nil }
        let head = String(decoding: received[..<bodyStart], as: UTF8.self)
        for line in head.components(separatedBy: "\r\n").dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            if line[..<colon].lowercased() == name.lowercased() {
                return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        return nil
    }

    var status: Int? {
        guard let bodyStart else { return nil }
        let statusLine = String(decoding: received[..<bodyStart], as: UTF8.self).prefix { $0 != "\r" }
        let parts = statusLine.split(separator: " ")
        return parts.count >= 2 ? Int(parts[1]) : nil
    }
}
