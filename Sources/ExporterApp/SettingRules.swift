import Basics
import BatchesAPI
import BatchesExporter

/// The checks a setting's value must pass, shared by the flags and the entries of
/// `--config.file`, so a value the one accepts the other cannot refuse. `name` is the setting
/// as the user wrote it (`--api-base-url`, `api_base_url`), so every problem is one line that
/// names it.
public enum SettingRules {
    /// An `http://` or `https://` URL with a host: `https://` alone, or a value with
    /// whitespace, would only fail later on every request.
    public static func apiBaseURL(_ text: String, name: String) throws(SettingsError) -> String {
        let scheme = ["https://", "http://"].first { text.hasPrefix($0) }
        let host = scheme.map { text.dropFirst($0.count).prefix { $0 != "/" && $0 != "?" && $0 != "#" } }
        guard let host, !host.isEmpty, !text.contains(where: \.isWhitespace) else {
            throw SettingsError(description: "\(name) must be an http:// or https:// URL (got \"\(text)\")")
        }
        return text
    }

    /// A Go duration (`500ms`, `30s`, `5m`) of at least `minimum`.
    public static func duration(_ text: String, name: String, minimum: Duration) throws(SettingsError) -> Duration {
        let duration: Duration
        do {
            duration = try GoDuration.parse(text)
        } catch {
            throw SettingsError(description: "\(name): \(error)")
        }
        guard duration >= minimum else {
            throw SettingsError(description: "\(name) must be at least \(GoDuration.format(minimum)) (got \(text))")
        }
        return duration
    }

    /// A count that may be zero; `zeroMeans` says what zero does, when it is special.
    public static func notNegative(_ value: Int, name: String, zeroMeans: String? = nil) throws(SettingsError) -> Int {
        guard value >= 0 else {
            let zero = zeroMeans.map { "0 (\($0))" } ?? "0"
            throw SettingsError(description: "\(name) must be \(zero) or more (got \(value))")
        }
        return value
    }

    /// A count within `range`; `why` explains the bounds when they come from outside (the API).
    public static func within<Value: BinaryInteger>(
        _ value: Value, _ range: ClosedRange<Value>, name: String, why: String? = nil
    ) throws(SettingsError) -> Value {
        guard range.contains(value) else {
            let reason = why.map { ", \($0)" } ?? ""
            throw SettingsError(description: "\(name) must be between \(range.lowerBound) and \(range.upperBound)\(reason) (got \(value))")
        }
        return value
    }

    /// A count of at least `minimum`.
    public static func atLeast<Value: BinaryInteger>(_ value: Value, _ minimum: Value, name: String) throws(SettingsError) -> Value {
        guard value >= minimum else {
            throw SettingsError(description: "\(name) must be at least \(minimum) (got \(value))")
        }
        return value
    }

    public static func authScheme(_ text: String, name: String) throws(SettingsError) -> AuthScheme {
        guard let scheme = AuthScheme(rawValue: text) else {
            throw SettingsError(description: "\(name) must be x-api-key or bearer (got \"\(text)\")")
        }
        return scheme
    }

    /// The minimum of each duration setting, for the flag and the file key alike.
    public static let minimumPollInterval: Duration = .milliseconds(100)
}
