/// Go-style durations as Prometheus tools take them on the command line: `500ms`, `30s`,
/// `5m`, `1h30m`, `1.5h`. Units: ns, us (or µs), ms, s, m, h, d (24h, as Prometheus allows).
public enum GoDuration {
    public struct ParseError: Error, CustomStringConvertible, Equatable {
        public let input: String
        public var description: String {
            "invalid duration \"\(input)\": expected a number with a unit, like 500ms, 30s, 5m or 1h30m"
        }
    }

    public static func parse(_ text: String) throws(ParseError) -> Duration {
        let units: [(String, Double)] = [
            ("ns", 1e-9), ("us", 1e-6), ("µs", 1e-6), ("ms", 1e-3), ("s", 1), ("m", 60), ("h", 3600), ("d", 86_400),
        ]
        var rest = Substring(text)
        guard !rest.isEmpty else { throw ParseError(input: text) }
        if rest == "0" { return .zero }
        var seconds = 0.0
        while !rest.isEmpty {
            let number = rest.prefix { $0.isASCII && ($0.isNumber || $0 == ".") }
            guard !number.isEmpty, let value = Double(number) else { throw ParseError(input: text) }
            rest = rest.dropFirst(number.count)
            let unitText = rest.prefix { !($0.isASCII && ($0.isNumber || $0 == ".")) }
            guard let unit = units.first(where: { $0.0 == unitText }) else { throw ParseError(input: text) }
            rest = rest.dropFirst(unitText.count)
            seconds += value * unit.1
        }
        guard seconds.isFinite, seconds < 1e12 else { throw ParseError(input: text) }
        return .nanoseconds(Int64((seconds * 1e9).rounded()))
    }

    /// The shortest Go-style spelling, for help texts and logs: `1m30s`, `500ms`, `24h`.
    public static func format(_ duration: Duration) -> String {
        let totalMilliseconds = duration.inWholeMilliseconds
        if totalMilliseconds == 0 { return "0s" }
        if totalMilliseconds < 1000 { return "\(totalMilliseconds)ms" }
        var text = ""
        var seconds = totalMilliseconds / 1000
        let milliseconds = totalMilliseconds % 1000
        if seconds >= 3600 {
            text += "\(seconds / 3600)h"
            seconds %= 3600
        }
        if seconds >= 60 {
            text += "\(seconds / 60)m"
            seconds %= 60
        }
        if seconds > 0 || milliseconds > 0 {
            var fraction = String(String(milliseconds + 1000).dropFirst())
            while fraction.hasSuffix("0") { fraction.removeLast() }
            text += fraction.isEmpty ? "\(seconds)s" : "\(seconds).\(fraction)s"
        }
        return text
    }
}
