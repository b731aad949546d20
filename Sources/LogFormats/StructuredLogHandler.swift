import Basics
import Logging
import RFC3339

#if canImport(Glibc)
import Glibc
#endif

/// The two line formats Prometheus exporters log in.
public enum LogFormat: String, Sendable, CaseIterable {
    /// `ts=... level=info msg="..." key=value`, as go-kit / slog's text handler write it.
    case logfmt
    /// One JSON object per line.
    case json
}

/// A swift-log handler that writes one structured line per event to standard error.
public struct StructuredLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    private let format: LogFormat
    private let label: String

    public init(label: String, format: LogFormat, level: Logger.Level) {
        self.label = label
        self.format = format
        logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields: [(String, String)] = [
            ("ts", Self.timestamp()),
            ("level", Self.levelName(event.level)),
            ("msg", event.message.description),
        ]
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        for (key, value) in merged.sorted(by: { $0.key < $1.key }) {
            fields.append((key, "\(value)"))
        }
        let line = Self.render(fields, format: format) + "\n"
        var bytes = Array(line.utf8)
        // One write(2) per line keeps lines from concurrent tasks whole.
        bytes.withUnsafeMutableBytes { _ = write(STDERR_FILENO, $0.baseAddress, $0.count) }
    }

    /// Renders fields in the chosen format; exposed for tests.
    public static func render(_ fields: [(String, String)], format: LogFormat) -> String {
        switch format {
        case .logfmt:
            return fields.map { "\($0.0)=\(logfmtValue($0.1))" }.joined(separator: " ")
        case .json:
            return "{" + fields.map { "\(jsonString($0.0)):\(jsonString($0.1))" }.joined(separator: ",") + "}"
        }
    }

    static func logfmtValue(_ value: String) -> String {
        // go-logfmt ends a bare value at any byte up to space, so every control character
        // (tab included) must be quoted too.
        let needsQuotes =
            value.isEmpty
            || value.unicodeScalars.contains { $0.value <= 0x20 || $0.value == 0x7F || $0 == "=" || $0 == "\"" || $0 == "\\" }
        guard needsQuotes else { return value }
        return jsonString(value)
    }

    static func jsonString(_ value: String) -> String {
        var output = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": output += "\\\""
            case "\\": output += "\\\\"
            case "\n": output += "\\n"
            case "\r": output += "\\r"
            case "\t": output += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                output += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: output.unicodeScalars.append(scalar)
            }
        }
        return output + "\""
    }

    static func levelName(_ level: Logger.Level) -> String {
        switch level {
        case .trace, .debug: "debug"
        case .info, .notice: "info"
        case .warning: "warn"
        case .error, .critical: "error"
        }
    }

    static func timestamp() -> String {
        // Milliseconds are plenty for logs; the API's microseconds would only add noise.
        let full = RFC3339.format(WallClock.now())
        return String(full.prefix(23)) + "Z"
    }
}

extension Logger.Level {
    /// Parses the Prometheus-style names `debug`, `info`, `warn`, `error`.
    public init?(prometheusName: String) {
        switch prometheusName {
        case "debug": self = .debug
        case "info": self = .info
        case "warn": self = .warning
        case "error": self = .error
        default: return nil
        }
    }
}
