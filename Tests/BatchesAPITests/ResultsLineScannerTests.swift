import BatchesAPI
import Foundation
import Testing

@Suite("Scanning results files (JSON Lines) as a stream")
struct ResultsLineScannerTests {
    static let succeeded = """
        {"custom_id":"my-first-request","result":{"type":"succeeded","message":{"id":"msg_014VwiXbi91y3JMjcpyGBHX5",\
        "type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[{"type":"text",\
        "text":"Hello again! It's nice to see you. How can I assist you today? Is there anything specific you'd like to chat about?"}],\
        "stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":11,"cache_creation_input_tokens":7,\
        "cache_read_input_tokens":5,"cache_creation":{"ephemeral_5m_input_tokens":3,"ephemeral_1h_input_tokens":4},\
        "output_tokens":36,"server_tool_use":{"web_search_requests":2,"web_fetch_requests":1},"service_tier":"batch"}}}}
        """
    static let errored = """
        {"custom_id":"my-second-request","result":{"type":"errored","error":{"type":"error","error":{"type":"invalid_request_error",\
        "message":"Validation error: max_tokens must be positive"},"request_id":"req_1"}}}
        """

    static func scan(_ text: String, chunkSizes: [Int]? = nil) -> [ResultsLineScanner.Event] {
        scan(Array(text.utf8), chunkSizes: chunkSizes)
    }

    /// Feeds `bytes` in chunks of the given sizes (cycled), or whole.
    static func scan(_ bytes: [UInt8], chunkSizes: [Int]? = nil) -> [ResultsLineScanner.Event] {
        var scanner = ResultsLineScanner()
        var events: [ResultsLineScanner.Event] = []
        var offset = 0
        var sizeIndex = 0
        while offset < bytes.count {
            let size = chunkSizes.map { $0[sizeIndex % $0.count] } ?? bytes.count
            sizeIndex += 1
            let end = min(bytes.count, offset + max(1, size))
            scanner.feed(bytes[offset..<end]) { events.append($0) }
            offset = end
        }
        scanner.finish { events.append($0) }
        #expect(scanner.bytesScanned == UInt64(bytes.count))
        return events
    }

    static func line(_ text: String) throws -> ResultsLine {
        let events = scan(text)
        try #require(events.count == 1)
        guard case .line(let line) = events[0] else {
            Issue.record("malformed: \(text)")
            return ResultsLine()
        }
        return line
    }

    @Test("A documented succeeded line yields its model, stop reason and every usage field")
    func succeededLine() throws {
        let line = try Self.line(Self.succeeded)
        #expect(line.resultType.string == "succeeded")
        #expect(line.hasMessage)
        #expect(line.model.string == "claude-sonnet-4-5-20250929")
        #expect(line.stopReason.string == "end_turn")
        #expect(line.inputTokens == 11)
        #expect(line.outputTokens == 36)
        #expect(line.cacheCreationInputTokens == 7)
        #expect(line.cacheReadInputTokens == 5)
        #expect(line.ephemeral5mInputTokens == 3)
        #expect(line.ephemeral1hInputTokens == 4)
        #expect(line.webSearchRequests == 2)
        #expect(line.errorType.string == nil)
    }

    @Test("An errored line yields the error type from result.error.error.type, not result.error.type")
    func erroredLine() throws {
        let line = try Self.line(Self.errored)
        #expect(line.resultType.string == "errored")
        #expect(line.errorType.string == "invalid_request_error")
        #expect(!line.hasMessage)
    }

    @Test("Canceled, expired and unknown result types are kept as they are", arguments: ["canceled", "expired", "brand_new"])
    func otherTypes(type: String) throws {
        let line = try Self.line(#"{"custom_id":"x","result":{"type":"\#(type)"}}"#)
        #expect(line.resultType.string == type)
    }

    @Test("Keys in any order, escaped keys and values, and the last of duplicate keys win")
    func keyOrderEscapesDuplicates() throws {
        let line = try Self.line(
            #"{"result":{"message":{"usage":{"output_tokens":1,"output_tokens":9,"input_tokens":3},"model":"first","m\u006fdel":"cl\u0061ude-\u4e2d\ud83d\ude00","stop_reason":"x","stop_reason":null},"type":"errored","\u0074ype":"succeeded"}}"#
        )
        #expect(line.resultType.string == "succeeded")
        #expect(line.model.string == "claude-中😀")
        #expect(line.stopReason.isPresent == false)
        #expect(line.outputTokens == 9)
        #expect(line.inputTokens == 3)
    }

    @Test("A duplicate object key replaces everything the earlier one set, whatever its type")
    func duplicateObjects() throws {
        let line = try Self.line(
            #"{"result":{"type":"succeeded","message":{"model":"a","usage":{"input_tokens":5,"cache_creation":{"ephemeral_1h_input_tokens":2}},"usage":{"output_tokens":1}}}}"#
        )
        #expect(line.inputTokens == nil)
        #expect(line.ephemeral1hInputTokens == nil)
        #expect(line.outputTokens == 1)
        let replaced = try Self.line(#"{"result":{"type":"succeeded","message":{"model":"a","usage":{"input_tokens":5}},"message":null}}"#)
        #expect(!replaced.hasMessage)
        #expect(replaced.model.string == nil)
        #expect(replaced.inputTokens == nil)
    }

    @Test(
        "Counts that are null, negative, fractional, in exponent form, too large or not numbers read as absent",
        arguments: ["null", "-4", "2.5", "1e2", "1E+2", "3.0", "99999999999999999999999", "\"12\"", "true", "[1]", "{\"n\":1}"]
    )
    func unusableCounts(value: String) throws {
        let line = try Self.line(#"{"result":{"type":"succeeded","message":{"usage":{"input_tokens":\#(value),"output_tokens":8}}}}"#)
        #expect(line.inputTokens == nil)
        #expect(line.outputTokens == 8)
    }

    @Test("Values of the wrong type for captured strings read as absent")
    func wrongTypedStrings() throws {
        let line = try Self.line(#"{"result":{"type":{"x":"succeeded"},"message":{"model":["a"],"stop_reason":7}}}"#)
        #expect(line.resultType.isPresent == false)
        #expect(line.model.isPresent == false)
        #expect(line.stopReason.isPresent == false)
    }

    @Test("Fields at the wrong depth are not taken")
    func wrongDepth() throws {
        let line = try Self.line(
            #"{"type":"succeeded","model":"top","result":{"error":{"type":"error"},"content":{"type":"x"},"usage":{"input_tokens":4},"message":{"content":[{"model":"inner","usage":{"input_tokens":1}}]}}}"#
        )
        #expect(line.resultType.isPresent == false)
        #expect(line.errorType.isPresent == false)
        #expect(line.model.isPresent == false)
        #expect(line.inputTokens == nil)
    }

    @Test("A captured string longer than the limit is marked truncated and reads as other")
    func longCapturedString() throws {
        let long = String(repeating: "m", count: ResultsLineScanner.captureLimit + 1)
        let line = try Self.line(#"{"result":{"type":"succeeded","message":{"model":"\#(long)"}}}"#)
        #expect(line.model.truncated)
        #expect(line.model.string == "other")
        #expect(line.model.bytes.count == ResultsLineScanner.captureLimit)
        let exact = String(repeating: "m", count: ResultsLineScanner.captureLimit)
        #expect(try Self.line(#"{"result":{"type":"succeeded","message":{"model":"\#(exact)"}}}"#).model.string == exact)
    }

    @Test("Blank lines are ignored, CRLF ends are accepted, and a last line without a newline counts")
    func lineEnds() {
        let text = "\n" + Self.errored + "\r\n\r\n  \n" + Self.succeeded + "\n" + Self.errored
        let events = Self.scan(text)
        #expect(events.count == 3)
        #expect(events.allSatisfy { if case .line = $0 { true } else { false } })
        #expect(Self.scan(text + "\n") == events)
    }

    @Test(
        "Malformed lines are reported as such and the next line still scans",
        arguments: [
            #"{"result":{"type":"succeeded"}"#,
            #"{"result":{"type":"succeeded"}}}"#,
            #"{"result":{"type":"succeeded"}} x"#,
            #"[{"result":{}}]"#,
            #"{"result":{"type":"succ\eeded"}}"#,
            #"{"result":{"type":"a\u12"}}"#,
            "{\"result\":{\"type\":\"tab\there\"}}",
            #"{"result":{"type":"x","n":01}}"#,
            #"{"result":{"type":"x","n":1.}}"#,
            #"{"result":{"type":"x","n":-}}"#,
            #"{"result":{"type":"x","n":1e}}"#,
            #"{"result":{"type":"x","n":nul}}"#,
            #"{"result":{"type":"x","n":nullx}}"#,
            #"{"result":{"type":"x",}}"#,
            #"{"result":{"type" "x"}}"#,
            #"{"result":[1,]}"#,
            #"{"result":{"type":"x"]}"#,
            #"{"result":{"a":"unterminated}}"#,
            #"{"result":{"n":12"#,
            "{\"n\":1.",
            "\"just a string\"",
            #"{"custom_id":"a\qb","result":{"type":"x"}}"#,
            #"{"custom_id":"\u12G4","result":{"type":"x"}}"#,
            #"{"custom_id":"\u12"#,
            "{\"custom_id\":\"tab\there\",\"result\":{\"type\":\"x\"}}",
            "{\"custom_id\":\"nul\u{0}here\",\"result\":{\"type\":\"x\"}}",
            "42",
        ]
    )
    func malformed(text: String) {
        for tail in ["\n" + Self.errored, "\r\n" + Self.errored + "\n"] {
            let events = Self.scan(text + tail)
            #expect(events.count == 2, "\(text)")
            #expect(events.first == .malformed, "\(text)")
            if case .line(let line) = events.last {
                #expect(line.errorType.string == "invalid_request_error")
            } else {
                Issue.record("the line after \(text) did not scan")
            }
        }
        // The same line at the end of the stream, without a newline, is malformed too.
        #expect(Self.scan(text) == [.malformed], "\(text)")
    }

    @Test("Nesting deeper than the limit makes the line malformed, not a crash")
    func deepNesting() throws {
        let deep = #"{"result":{"type":"x","deep":"# + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000) + "}}"
        #expect(Self.scan(deep + "\n" + Self.errored).first == .malformed)
        let allowed = #"{"result":{"type":"x","deep":"# + String(repeating: "[", count: 500) + String(repeating: "]", count: 500) + "}}"
        #expect(try Self.line(allowed).resultType.string == "x")
    }

    /// Equal, except that counts the scanner left absent are not compared: a whole number
    /// spelled with a fraction or exponent (`620E1`,
    /// which a mutation can make of `6200`) is absent for the scanner by design, while
    /// JSONSerialization reads it as a number.
    static func agree(_ line: ResultsLine, _ reference: ResultsLine?) -> Bool {
        guard var reference else { return false }
        let paths: [WritableKeyPath<ResultsLine, Int?>] = [
            \.inputTokens, \.outputTokens, \.cacheCreationInputTokens, \.cacheReadInputTokens,
            \.ephemeral5mInputTokens, \.ephemeral1hInputTokens, \.webSearchRequests,
        ]
        for path in paths where line[keyPath: path] == nil { reference[keyPath: path] = nil }
        return line == reference
    }

    @Test("A line of several megabytes of content scans like a short one")
    func veryLongLine() throws {
        let text = String(repeating: "lorem \\\"ipsum\\\" \\u00e9 dolor ", count: 200_000)
        let line = try Self.line(
            #"{"custom_id":"big","result":{"type":"succeeded","message":{"content":[{"type":"text","text":"\#(text)"}],"model":"m","usage":{"output_tokens":128000}}}}"#
        )
        #expect(line.outputTokens == 128_000)
        #expect(line.model.string == "m")
    }

    @Test("Random chunk splits, down to single bytes, give the same lines as one whole buffer", arguments: [1, 2, 3])
    func chunkSplits(seed: UInt64) {
        var generator = ResultsLineGenerator(seed: seed)
        var text = ""
        for index in 0..<200 {
            text += generator.line() + (index % 7 == 0 ? "\r\n" : "\n")
        }
        text += generator.line()  // no trailing newline
        let bytes = Array(text.utf8)
        let whole = Self.scan(bytes)
        #expect(whole.count == 201)
        #expect(Self.scan(bytes, chunkSizes: [1]) == whole)
        var random = SeededRandom(seed: seed)
        for _ in 0..<20 {
            let sizes = (0..<50).map { _ in Int.random(in: 1...(Int.random(in: 0...1, using: &random) == 0 ? 7 : 5000), using: &random) }
            #expect(Self.scan(bytes, chunkSizes: sizes) == whole, "seed \(seed), sizes \(sizes)")
        }
    }

    @Test("Generated lines of every documented shape read as JSONSerialization reads them", arguments: 0..<8)
    func agreesWithJSONSerialization(seed: UInt64) throws {
        var generator = ResultsLineGenerator(seed: 100 + seed)
        var compared = 0
        for _ in 0..<400 {
            let text = generator.line()
            let reference = try #require(ReferenceReader.read(text), "JSONSerialization refused a generated line: \(text)")
            let events = Self.scan(text, chunkSizes: [Int(seed) + 1, 13, 64])
            #expect(events == [.line(reference)], "seed \(seed): \(text)")
            compared += 1
        }
        #expect(compared == 400)
    }

    @Test("Under random mutations the scanner accepts only lines JSONSerialization accepts, and reads them the same")
    func mutations() {
        var generator = ResultsLineGenerator(seed: 7)
        generator.maxTextLength = 30
        var random = SeededRandom(seed: 8)
        let alphabet = Array(#"{}[]:,"\ 0123456789.-+eEtrufalsnxu"#.utf8) + [0x09, 0x0D, 0x00, 0x1F]
        var accepted = 0
        var refused = 0
        for _ in 0..<4_000 {
            var bytes = Array(generator.line().utf8)
            for _ in 0..<Int.random(in: 1...2, using: &random) {
                let position = Int.random(in: 0..<bytes.count, using: &random)
                switch Int.random(in: 0..<3, using: &random) {
                case 0: bytes[position] = alphabet.randomElement(using: &random)!
                case 1: bytes.insert(alphabet.randomElement(using: &random)!, at: position)
                default: bytes.remove(at: position)
                }
            }
            let text = String(decoding: bytes, as: UTF8.self)
            // Mutated hex digits can make lone surrogates, which JSONSerialization may refuse
            // and the scanner decodes as U+FFFD: leave those out of the comparison.
            if text.lowercased().contains("\\ud") { continue }
            let events = Self.scan(bytes)
            let reference = ReferenceReader.read(text)
            switch events.count == 1 ? events[0] : nil {
            case .line(let line):
                accepted += 1
                #expect(Self.agree(line, reference), "scanner accepted what JSONSerialization reads differently: \(text)")
            case .malformed:
                refused += 1
                #expect(reference == nil, "scanner refused a line JSONSerialization accepts: \(text)")
            case nil:
                // A mutation can make a line blank (no event) only if it was all whitespace.
                #expect(events.isEmpty && text.allSatisfy(\.isWhitespace), "\(events): \(text)")
            }
        }
        #expect(accepted > 1_000, "only \(accepted) mutated lines stayed valid")
        #expect(refused > 500, "only \(refused) mutated lines were refused")
    }
}
