import Foundation

/// Where SwiftPM put the products this test run was built with: next to the test bundle.
enum Binaries {
    static let directory: URL = {
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        return executable.deletingLastPathComponent()
    }()

    static var exporter: URL { directory.appendingPathComponent("anthropic-batches-exporter") }
    static var simulator: URL { directory.appendingPathComponent("batches-simulator") }

    /// The repository root, for files such as deploy/ that tests read.
    static let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Polls `condition` until it holds or `timeout` passes. For waiting on another process to
/// reach a state (a poll done, a value changed), never for asserting how fast something is.
func eventually(
    timeout: Duration = .seconds(30),
    every interval: Duration = .milliseconds(100),
    _ what: String,
    _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    var lastError: (any Error)?
    while ContinuousClock.now < deadline {
        do {
            if try await condition() { return }
        } catch {
            lastError = error
        }
        try await Task.sleep(for: interval)
    }
    throw TestFailure("timed out waiting for: \(what)\(lastError.map { " (last error: \($0))" } ?? "")")
}
