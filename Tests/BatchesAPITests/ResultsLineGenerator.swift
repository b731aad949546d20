import BatchesAPI
import Foundation

/// A seeded generator, so a failing case can be reproduced from the seed in the message.
struct SeededRandom: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Builds results lines as text in the shapes the API documents, with everything that makes
/// scanning hard: random key order, unknown fields, nested content blocks, escapes of every
/// kind, raw non-ASCII, long strings, odd whitespace and numbers the scanner must not take.
struct ResultsLineGenerator {
    var random: SeededRandom
    /// Strings up to this long appear in content.
    var maxTextLength = 300

    init(seed: UInt64) {
        random = SeededRandom(seed: seed)
    }

    mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &random) }
    mutating func int(_ range: Range<Int>) -> Int { Int.random(in: range, using: &random) }
    mutating func chance(_ percent: Int) -> Bool { int(0...99) < percent }

    mutating func space() -> String {
        guard chance(15) else { return "" }
        return [" ", "  ", "\t", " \t "][int(0...3)]
    }

    /// A JSON string literal with random content.
    mutating func string(maxLength: Int? = nil) -> String {
        let pieces = [
            "a", "b", "Z", " ", "0", "\\\"", "\\\\", "\\/", "\\n", "\\r", "\\t", "\\b", "\\f", "\\u00e9", "\\u4e2d",
            "\\ud83d\\ude00", "é", "中", "😀", "{", "}", "[", "]", ":", ",", "\\u0022", "\\u005c",
        ]
        let length = int(0...(maxLength ?? maxTextLength))
        var text = "\""
        for _ in 0..<length { text += chance(70) ? "x" : pieces[int(0..<pieces.count - 1)] }
        return text + "\""
    }

    mutating func scalarValue() -> String {
        switch int(0...7) {
        case 0: return string(maxLength: 20)
        case 1: return String(int(-1000...100_000))
        case 2: return "-12.5e-3"
        case 3: return "true"
        case 4: return "false"
        case 5: return "null"
        case 6: return "0.25"
        default: return "1E+2"
        }
    }

    /// Unknown structure, nested up to `depth`.
    mutating func anyValue(depth: Int) -> String {
        guard depth > 0, chance(40) else { return scalarValue() }
        if chance(50) {
            return "[" + (0..<int(0...4)).map { _ in space() + anyValue(depth: depth - 1) + space() }.joined(separator: ",") + "]"
        }
        return object((0..<int(0...4)).map { index in ("k\(index)_\(int(0...9))", anyValue(depth: depth - 1)) })
    }

    mutating func object(_ members: [(String, String)]) -> String {
        var members = members
        members.shuffle(using: &random)
        let body = members.map { key, value in space() + "\"\(key)\"" + space() + ":" + space() + value + space() }
        return "{" + body.joined(separator: ",") + "}"
    }

    /// An integer field as it may come: a plain count, null, or something not to be taken.
    mutating func count() -> String? {
        switch int(0...9) {
        case 0: return nil
        case 1: return "null"
        case 2: return "2.5"
        case 3: return "\"17\""
        case 4: return "-3"
        case 5: return "0"
        default: return String(int(1...200_000))
        }
    }

    mutating func unknownFields(into members: inout [(String, String)]) {
        for index in 0..<int(0...2) { members.append(("unknown_\(index)", anyValue(depth: 3))) }
    }

    mutating func usage() -> String {
        var members: [(String, String)] = []
        for name in ["input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"] {
            if let value = count() { members.append((name, value)) }
        }
        if chance(60) {
            var cache: [(String, String)] = []
            for name in ["ephemeral_5m_input_tokens", "ephemeral_1h_input_tokens"] {
                if let value = count() { cache.append((name, value)) }
            }
            unknownFields(into: &cache)
            members.append(("cache_creation", chance(10) ? "null" : object(cache)))
        }
        if chance(50) {
            var tools: [(String, String)] = []
            if let value = count() { tools.append(("web_search_requests", value)) }
            tools.append(("web_fetch_requests", String(int(0...3))))
            members.append(("server_tool_use", chance(10) ? "null" : object(tools)))
        }
        members.append(("service_tier", "\"batch\""))
        unknownFields(into: &members)
        return object(members)
    }

    mutating func contentBlock() -> String {
        switch int(0...2) {
        case 0: return object([("type", "\"text\""), ("text", string())])
        case 1:
            return object([
                ("type", "\"tool_use\""), ("id", "\"toolu_01\""), ("name", "\"get_weather\""),
                ("input", anyValue(depth: 4)),
            ])
        default: return object([("type", "\"thinking\""), ("thinking", string()), ("signature", string(maxLength: 40))])
        }
    }

    mutating func message() -> String {
        let models = ["\"claude-sonnet-4-5-20250929\"", "\"claude-haiku-4-5\"", "\"claude-opus-4-1-20250805\"", "\"m\\u006fdel-x\"", "null", "42"]
        let stops = ["\"end_turn\"", "\"max_tokens\"", "\"tool_use\"", "\"refusal\"", "\"new_reason\"", "null"]
        var members: [(String, String)] = [
            ("id", "\"msg_013Zva2CMHLNnXjNJJKqJ2EF\""), ("type", "\"message\""), ("role", "\"assistant\""),
            ("content", "[" + (0..<int(0...3)).map { _ in contentBlock() }.joined(separator: ",") + "]"),
            ("stop_sequence", "null"),
        ]
        if chance(95) { members.append(("model", models[int(0..<models.count)])) }
        if chance(95) { members.append(("stop_reason", stops[int(0..<stops.count)])) }
        if chance(95) { members.append(("usage", chance(5) ? "null" : usage())) }
        unknownFields(into: &members)
        return object(members)
    }

    mutating func result() -> String {
        var members: [(String, String)]
        switch int(0...9) {
        case 0...4:
            members = [("type", "\"succeeded\""), ("message", message())]
        case 5, 6:
            let types = ["\"invalid_request_error\"", "\"overloaded_error\"", "\"brand_new_error\"", "null"]
            var inner: [(String, String)] = [("message", string(maxLength: 60))]
            if chance(95) { inner.append(("type", types[int(0..<types.count)])) }
            members = [
                ("type", "\"errored\""),
                ("error", object([("type", "\"error\""), ("error", object(inner)), ("request_id", "\"req_1\"")])),
            ]
        case 7: members = [("type", "\"canceled\"")]
        case 8: members = [("type", "\"expired\"")]
        default: members = [("type", "\"paused_for_review\"")]
        }
        unknownFields(into: &members)
        return object(members)
    }

    /// One whole results line (without its newline).
    mutating func line() -> String {
        var members: [(String, String)] = [("custom_id", string(maxLength: 40)), ("result", result())]
        unknownFields(into: &members)
        return space() + object(members) + space()
    }
}

/// What a results line says, read with JSONSerialization: the reference the scanner must
/// agree with. `nil` when JSONSerialization refuses the line or it is not an object.
enum ReferenceReader {
    static func read(_ text: String) -> ResultsLine? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed]),
            let root = object as? [String: Any]
        else { return nil }
        var line = ResultsLine()
        guard let result = root["result"] as? [String: Any] else { return line }
        line.resultType = captured(result["type"])
        if let outer = result["error"] as? [String: Any], let inner = outer["error"] as? [String: Any] {
            line.errorType = captured(inner["type"])
        }
        guard let message = result["message"] as? [String: Any] else { return line }
        line.hasMessage = true
        line.model = captured(message["model"])
        line.stopReason = captured(message["stop_reason"])
        guard let usage = message["usage"] as? [String: Any] else { return line }
        line.inputTokens = integer(usage["input_tokens"])
        line.outputTokens = integer(usage["output_tokens"])
        line.cacheCreationInputTokens = integer(usage["cache_creation_input_tokens"])
        line.cacheReadInputTokens = integer(usage["cache_read_input_tokens"])
        if let cache = usage["cache_creation"] as? [String: Any] {
            line.ephemeral5mInputTokens = integer(cache["ephemeral_5m_input_tokens"])
            line.ephemeral1hInputTokens = integer(cache["ephemeral_1h_input_tokens"])
        }
        if let tools = usage["server_tool_use"] as? [String: Any] {
            line.webSearchRequests = integer(tools["web_search_requests"])
        }
        return line
    }

    static func captured(_ value: Any?) -> CapturedString {
        guard let string = value as? String else { return CapturedString() }
        return CapturedString(string)
    }

    /// Counts are whole and not negative; the generator's other numbers have a fraction
    /// (exponent spellings of whole numbers are tested on their own, not here).
    static func integer(_ value: Any?) -> Int? {
        guard let value, !(value is String), !(value is NSNull), let number = value as? NSNumber else { return nil }
        let double = number.doubleValue
        guard double >= 0, double < 9e18, double == double.rounded() else { return nil }
        return Int(double)
    }
}
