import BatchesAPI
import Foundation
import Logging
import ManualClock
import Synchronization
import Testing

/// Events an ``APIKeySource`` reported.
private final class EventLog: Sendable {
    private let events = Mutex<[APIKeySource.Event]>([])
    var all: [APIKeySource.Event] { events.withLock { $0 } }
    func append(_ event: APIKeySource.Event) { events.withLock { $0.append(event) } }
}

private final class KeyDirectory: Sendable {
    let url: URL
    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("api-key-source-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    func path(_ name: String) -> String { url.appendingPathComponent(name).path }
    /// Writes a new file beside `name` and renames it over it: a new inode, as a Secret update.
    func replace(_ name: String, with text: String) throws {
        let temporary = path(".\(name).\(UUID().uuidString)")
        try Data(text.utf8).write(to: URL(fileURLWithPath: temporary))
        guard rename(temporary, path(name)) == 0 else { throw CocoaError(.fileWriteUnknown) }
    }
    /// Truncates and rewrites the same file: same inode, new size and mtime.
    func writeInPlace(_ name: String, _ text: String) throws {
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path(name)))
        try handle.truncate(atOffset: 0)
        try handle.write(contentsOf: Data(text.utf8))
        try handle.close()
    }
    deinit { try? FileManager.default.removeItem(at: url) }
}

@Suite("API key source")
struct APIKeySourceTests {
    private func source(_ directory: KeyDirectory, _ clock: ManualClock, _ log: EventLog) throws -> APIKeySource {
        try APIKeySource(file: directory.path("key"), checkInterval: .seconds(1), now: { clock.now }, observer: { log.append($0) })
    }

    @Test("A key file is read at once, surrounding whitespace dropped")
    func initialRead() throws {
        let directory = try KeyDirectory()
        try directory.replace("key", with: "  sk-ant-first \n")
        let source = try source(directory, ManualClock(), EventLog())
        #expect(source.current().revealedForRequest == "sk-ant-first")
        #expect(source.path == directory.path("key"))
        #expect(source.readErrors == 0)
    }

    @Test(
        "A key file that cannot give a key at start throws, naming the file and the problem",
        arguments: [
            (nil as String?, "cannot be read (no such file)"), ("", "is empty"), (" \n\t\n", "is empty"),
            ("sk-ant-a\nsk-ant-b\n", "holds more than one line"),
        ])
    func initialFailure(content: String?, problem: String) throws {
        let directory = try KeyDirectory()
        if let content { try directory.replace("key", with: content) }
        #expect {
            _ = try source(directory, ManualClock(), EventLog())
        } throws: { error in
            let error = try #require(error as? APIKeySource.ReadError)
            return error.description == "\(directory.path("key")) \(problem)" || error.description.hasPrefix("\(directory.path("key")) \(problem)")
        }
    }

    @Test("A file renamed over the key (as Kubernetes swaps a Secret) is used once the check interval has passed")
    func renamedOver() throws {
        let directory = try KeyDirectory()
        try directory.replace("key", with: "sk-ant-first\n")
        let clock = ManualClock()
        let log = EventLog()
        let source = try source(directory, clock, log)
        try directory.replace("key", with: "sk-ant-second\n")
        clock.advance(by: .milliseconds(999))
        #expect(source.current().revealedForRequest == "sk-ant-first", "not looked at again within the interval")
        clock.advance(by: .milliseconds(1))
        #expect(source.current().revealedForRequest == "sk-ant-second")
        #expect(log.all == [.keyReplaced(path: directory.path("key"))])
        #expect(source.readErrors == 0)
    }

    @Test("A key written in place (same file) is picked up too")
    func writtenInPlace() throws {
        let directory = try KeyDirectory()
        try directory.replace("key", with: "sk-ant-first")
        let clock = ManualClock()
        let source = try source(directory, clock, EventLog())
        try directory.writeInPlace("key", "sk-ant-second-longer")
        clock.advance(by: .seconds(2))
        #expect(source.current().revealedForRequest == "sk-ant-second-longer")
    }

    @Test("An emptied, then deleted file keeps the last good key and counts each bad version once; a good one recovers")
    func badVersions() throws {
        let directory = try KeyDirectory()
        try directory.replace("key", with: "sk-ant-first")
        let clock = ManualClock()
        let log = EventLog()
        let source = try source(directory, clock, log)
        let path = directory.path("key")

        try directory.writeInPlace("key", "")
        clock.advance(by: .seconds(1))
        #expect(source.current().revealedForRequest == "sk-ant-first")
        #expect(source.readErrors == 1)
        // The same broken version is not read (or counted, or logged) again and again.
        for _ in 0..<5 {
            clock.advance(by: .seconds(1))
            #expect(source.current().revealedForRequest == "sk-ant-first")
        }
        #expect(source.readErrors == 1)

        try FileManager.default.removeItem(atPath: path)
        clock.advance(by: .seconds(1))
        #expect(source.current().revealedForRequest == "sk-ant-first")
        clock.advance(by: .seconds(1))
        _ = source.current()
        #expect(source.readErrors == 2, "a missing file is one more bad version, counted once")

        // A forced re-read (SIGHUP) of a file still missing counts, but is a repeat for the log.
        source.refresh()
        #expect(source.readErrors == 3)

        try directory.replace("key", with: "sk-ant-first\n")
        clock.advance(by: .seconds(1))
        #expect(source.current().revealedForRequest == "sk-ant-first")
        #expect(
            log.all == [
                .readFailed(path: path, problem: "is empty", repeated: false),
                .readFailed(path: path, problem: "cannot be read (no such file)", repeated: false),
                .readFailed(path: path, problem: "cannot be read (no such file)", repeated: true),
                .keyUnchanged(path: path),
            ]
        )
        try directory.replace("key", with: "sk-ant-third")
        clock.advance(by: .seconds(1))
        #expect(source.current().revealedForRequest == "sk-ant-third")
        #expect(source.readErrors == 3)
    }

    @Test("refresh() re-reads at once, without waiting for the interval")
    func refreshIsImmediate() throws {
        let directory = try KeyDirectory()
        try directory.replace("key", with: "sk-ant-first")
        let source = try source(directory, ManualClock(), EventLog())
        try directory.replace("key", with: "sk-ant-second")
        source.refresh()
        #expect(source.current().revealedForRequest == "sk-ant-second")
    }

    @Test("Sources are equal when they name the same file or hold the same fixed key, so an unchanged config stays unchanged")
    func equality() throws {
        let directory = try KeyDirectory()
        try directory.replace("key", with: "sk-ant-first")
        try directory.replace("other", with: "sk-ant-first")
        let first = try APIKeySource(file: directory.path("key"))
        let again = try APIKeySource(file: directory.path("key"))
        try directory.replace("key", with: "sk-ant-changed")
        let afterChange = try APIKeySource(file: directory.path("key"))
        #expect(first == again)
        #expect(first == afterChange, "the path is compared, not the key")
        #expect(first != (try APIKeySource(file: directory.path("other"))))
        #expect(APIKeySource(key: APIKey("sk-a")) == APIKeySource(key: APIKey("sk-a")))
        #expect(APIKeySource(key: APIKey("sk-a")) != APIKeySource(key: APIKey("sk-b")))
        #expect(first != APIKeySource(key: APIKey("sk-ant-first")))
        let configuration = BatchesClient.Configuration(baseURL: "https://api.anthropic.com", keySource: first)
        #expect(configuration == BatchesClient.Configuration(baseURL: "https://api.anthropic.com", keySource: afterChange))
    }

    @Test("No textual form of a source or its events holds the key")
    func noKeyMaterial() throws {
        let directory = try KeyDirectory()
        try directory.replace("key", with: "sk-ant-secret-value")
        let log = EventLog()
        let clock = ManualClock()
        let source = try source(directory, clock, log)
        try directory.replace("key", with: "sk-ant-secret-other")
        clock.advance(by: .seconds(1))
        _ = source.current()
        try directory.replace("key", with: "sk-ant-secret-1\nsk-ant-secret-2")
        clock.advance(by: .seconds(1))
        _ = source.current()
        var dumped = ""
        dump(source, to: &dumped)
        let texts = ["\(source)", String(reflecting: source), dumped] + log.all.map { "\($0)" }
        #expect(log.all.count == 2)
        for text in texts { #expect(!text.contains("sk-ant-secret"), "\(text)") }
    }

    @Test("waitForKey returns once the file holds another key, and not before")
    func waitForKey() async throws {
        let directory = try KeyDirectory()
        try directory.replace("key", with: "sk-ant-first")
        let clock = ManualClock()
        let source = try source(directory, clock, EventLog())
        let looks = Mutex(0)
        // Each wait moves the clock on by the interval; the third look finds a new file.
        try await source.waitForKey(otherThan: APIKey("sk-ant-first")) { duration in
            clock.advance(by: duration)
            let count = looks.withLock { count in
                count += 1
                return count
            }
            if count == 2 { try directory.replace("key", with: "sk-ant-second") }
        }
        #expect(looks.withLock { $0 } == 2)
        #expect(source.current().revealedForRequest == "sk-ant-second")
    }

    @Test("Each request attempt asks the source, so a replaced key is sent on the next request")
    func requestHeadersFollowTheFile() async throws {
        let directory = try KeyDirectory()
        try directory.replace("key", with: "sk-ant-first")
        let clock = ManualClock()
        let source = try source(directory, clock, EventLog())
        let http = ScriptedHTTP([jsonPage(ids: ["msgbatch_1"], hasMore: false), jsonPage(ids: ["msgbatch_1"], hasMore: false)])
        let client = BatchesClient(
            configuration: BatchesClient.Configuration(baseURL: "https://api.test", keySource: source),
            http: http, logger: .init(label: "test"), now: { 0 }
        )
        _ = try await client.fetchPage(afterID: nil) { _ in }
        try directory.replace("key", with: "sk-ant-second")
        clock.advance(by: .seconds(1))
        _ = try await client.fetchPage(afterID: nil) { _ in }
        let keys = http.requestedHeaders.map { headers in headers.first { $0.name == "x-api-key" }?.value }
        #expect(keys == ["sk-ant-first", "sk-ant-second"])
    }
}
