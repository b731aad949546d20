import ArgumentParser
import ExporterApp

import Glibc

/// Flags in, the runtime checked and built (``ExporterRuntime``), then the services run. Nothing else.
@main
struct ExporterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "anthropic-batches-exporter",
        abstract: "Prometheus exporter for Anthropic's Message Batches API.",
        discussion: """
            The API key is read from the ANTHROPIC_API_KEY environment variable or from the file \
            named by --api-key-file, never from a flag value. --demo needs no key: it serves a \
            simulated workspace whose batches change over time.
            """,
        version: BuildInfo.version
    )

    @OptionGroup var flags: ExporterFlags

    /// Parse errors and bad values exit 2 with one line, as Prometheus exporters do, instead of
    /// ArgumentParser's usage block and exit 64.
    static func main() async {
        let command: ExporterCommand
        do {
            var parsed = try parseAsRoot()
            guard let exporter = parsed as? ExporterCommand else {
                // `--help` arrives as ArgumentParser's own help command; let it print.
                try parsed.run()
                return
            }
            command = exporter
        } catch {
            if exitCode(for: error) == .success { exit(withError: error) }
            failStartup(message(for: error))
        }
        let runtime: ExporterRuntime
        do {
            runtime = try ExporterRuntime(flags: command.flags, environment: .current)
        } catch {
            failStartup(error.description)
        }
        do {
            try await runtime.run()
        } catch {
            failStartup("\(error)", code: 1)
        }
    }

    static func failStartup(_ message: String, code: Int32 = 2) -> Never {
        let line = message.split(whereSeparator: \.isNewline).joined(separator: "; ")
        var bytes = Array("anthropic-batches-exporter: \(line)\n".utf8)
        bytes.withUnsafeMutableBytes { _ = write(STDERR_FILENO, $0.baseAddress, $0.count) }
        Glibc.exit(code)
    }
}
