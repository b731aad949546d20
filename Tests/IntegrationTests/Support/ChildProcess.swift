import Foundation
import Synchronization

/// A process started by a test, with its output captured. Terminated (SIGTERM, then SIGKILL)
/// by `stop()`, and killed on deinit at the latest, so no test leaves a process behind.
final class ChildProcess: Sendable {
    private let process: Process
    private let output = CapturedOutput()
    let name: String

    init(_ executable: URL, arguments: [String], environment: [String: String] = [:], name: String? = nil) throws {
        self.name = name ?? executable.lastPathComponent
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        // A clean environment: nothing from the developer's shell (an ANTHROPIC_API_KEY, say)
        // leaks into what the test controls.
        var base = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"]
        base.merge(environment) { $1 }
        process.environment = base
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        process.standardInput = FileHandle.nullDevice
        self.process = process
        let output = self.output
        stdout.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            if data.isEmpty { handle.readabilityHandler = nil; return }
            output.text.withLock { $0.stdout += String(decoding: data, as: UTF8.self) }
        }
        stderr.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            if data.isEmpty { handle.readabilityHandler = nil; return }
            output.text.withLock { $0.stderr += String(decoding: data, as: UTF8.self) }
        }
        try process.run()
    }

    var stdout: String { output.text.withLock { $0.stdout } }
    var stderr: String { output.text.withLock { $0.stderr } }
    var isRunning: Bool { process.isRunning }
    var pid: Int32 { process.processIdentifier }

    /// Waits for a line of stdout or stderr that contains `marker`; returns that line.
    func waitForLine(containing marker: String, timeout: Duration = .seconds(30)) async throws -> String {
        var found: String?
        try await eventually(timeout: timeout, "\(name) to print \"\(marker)\"") {
            let text = stdout + "\n" + stderr
            found = text.split(separator: "\n").first { $0.contains(marker) }.map(String.init)
            if found == nil && !isRunning {
                throw TestFailure("\(name) exited with \(process.terminationStatus) before printing \"\(marker)\": \(stderr)")
            }
            return found != nil
        }
        return found ?? ""
    }

    /// Waits for the process to exit on its own; returns its exit status.
    func waitForExit(timeout: Duration = .seconds(30)) async throws -> Int32 {
        try await eventually(timeout: timeout, "\(name) to exit") { !isRunning }
        return process.terminationStatus
    }

    func signal(_ signal: Int32) {
        kill(process.processIdentifier, signal)
    }

    /// SIGTERM, then SIGKILL if it has not exited within `grace`. Returns the exit status.
    /// The grace is generous: a graceful stop saves state, and a loaded machine may be slow.
    @discardableResult
    func stop(grace: Duration = .seconds(15)) async -> Int32 {
        guard isRunning else { return process.terminationStatus }
        signal(SIGTERM)
        if (try? await waitForExit(timeout: grace)) == nil {
            signal(SIGKILL)
            process.waitUntilExit()
        }
        return process.terminationStatus
    }

    /// Synchronous SIGTERM-then-SIGKILL, for `defer` blocks: every test process is gone when
    /// the test that started it returns, whatever happened in it.
    func terminate(grace: Duration = .seconds(5)) {
        guard process.isRunning else { return }
        signal(SIGTERM)
        let deadline = ContinuousClock.now + grace
        while process.isRunning, ContinuousClock.now < deadline { usleep(10_000) }
        if process.isRunning {
            signal(SIGKILL)
            process.waitUntilExit()
        }
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}

/// What a child process has printed so far, appended to from pipe reader threads.
final class CapturedOutput: Sendable {
    let text = Mutex<(stdout: String, stderr: String)>(("", ""))
}
