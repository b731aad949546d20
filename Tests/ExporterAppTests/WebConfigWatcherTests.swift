import Basics
import ConfigFiles
import Foundation
import HTTPServing
import Logging
import ManualClock
import Testing

@testable import ExporterApp

/// The routes basic auth protects; these tests never call them.
private struct NoRoutes: HTTPResponder {
    func respond(to request: ServerRequest) -> ServerResponse { .text(404, "none") }
}

@Suite("Following --web.config.file on the watcher's clock")
struct WebConfigWatcherTests {
    static let hash = "$2b$10$3qVAx/fp.iXlPnbOQ1z4ee8k0.oyz4QHxPqP/xRLYzy7o5a/2QyZC"

    /// A web config file in a directory of its own, removed when the test ends.
    final class WebConfigFile {
        let directory: URL
        var path: String { directory.appendingPathComponent("web.yml").path }

        init(users: [String]) throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("web-config-watcher-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try write(users: users)
        }

        func write(users: [String]) throws {
            let text = "basic_auth_users:\n" + users.map { "  \($0): \(WebConfigWatcherTests.hash)\n" }.joined()
            try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        }

        deinit { try? FileManager.default.removeItem(at: directory) }
    }

    @Test("A changed file is seen at the first request once the check interval has passed, not before")
    func checkInterval() throws {
        let file = try WebConfigFile(users: ["alice"])
        let clock = ManualClock()
        let watcher = WebConfigWatcher(
            path: file.path, config: try ExporterSettings.webConfig(file.path), tls: nil, inner: NoRoutes(),
            checkInterval: .seconds(2), clock: MonotonicClock(clock), logger: Logger(label: "test")
        )
        #expect(Set(watcher.current.config.basicAuthUsers.keys) == ["alice"])
        try file.write(users: ["alice", "bob"])
        #expect(Set(watcher.current.config.basicAuthUsers.keys) == ["alice"], "checked at most once per interval")
        clock.advance(by: .milliseconds(1999))
        #expect(Set(watcher.current.config.basicAuthUsers.keys) == ["alice"])
        clock.advance(by: .milliseconds(1))
        #expect(Set(watcher.current.config.basicAuthUsers.keys) == ["alice", "bob"])
    }

    @Test("A file that does not load keeps the running configuration; its fix is taken at the next check")
    func badFileKept() throws {
        let file = try WebConfigFile(users: ["alice"])
        let clock = ManualClock()
        let watcher = WebConfigWatcher(
            path: file.path, config: try ExporterSettings.webConfig(file.path), tls: nil, inner: NoRoutes(),
            checkInterval: .seconds(2), clock: MonotonicClock(clock), logger: Logger(label: "test")
        )
        try Data("basic_auth_users:\n  mallory: plaintext\n".utf8).write(to: URL(fileURLWithPath: file.path))
        clock.advance(by: .seconds(2))
        #expect(Set(watcher.current.config.basicAuthUsers.keys) == ["alice"])
        try file.write(users: ["carol"])
        #expect(Set(watcher.current.config.basicAuthUsers.keys) == ["alice"], "the fix waits for the next check")
        clock.advance(by: .seconds(2))
        #expect(Set(watcher.current.config.basicAuthUsers.keys) == ["carol"])
    }
}
