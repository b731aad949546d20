import Testing

@testable import BatchesAPI

@Suite("Tallying results lines per batch")
struct ResultsTallyTests {
    static func tally(_ lines: [String], distinctLimit: Int = 1000) -> ResultsTally {
        var stream = ResultsStreamTally(distinctLimit: distinctLimit)
        stream.feed(Array(lines.joined(separator: "\n").utf8))
        return stream.finish()
    }

    static func succeeded(model: String = "m", stop: String = "end_turn", usage: String) -> String {
        #"{"result":{"type":"succeeded","message":{"model":"\#(model)","stop_reason":"\#(stop)","usage":{\#(usage)}}}}"#
    }

    @Test("Tokens split into the five token types; a cache write without breakdown counts as 5-minute")
    func tokenTypes() {
        let tally = Self.tally([
            Self.succeeded(
                usage:
                    #""input_tokens":1,"output_tokens":2,"cache_read_input_tokens":3,"cache_creation_input_tokens":9,"cache_creation":{"ephemeral_5m_input_tokens":4,"ephemeral_1h_input_tokens":5}"#
            ),
            Self.succeeded(usage: #""input_tokens":10,"cache_creation_input_tokens":6"#),
            Self.succeeded(usage: #""cache_creation_input_tokens":6,"cache_creation":null"#),
        ])
        func tokens(_ type: ResultsTally.TokenType) -> Int? { tally.tokens[.init(model: "m", tokenType: type)] }
        #expect(tokens(.input) == 11)
        #expect(tokens(.output) == 2)
        #expect(tokens(.cacheRead) == 3)
        #expect(tokens(.cacheWrite5m) == 4 + 6 + 6)
        #expect(tokens(.cacheWrite1h) == 5)
        #expect(tally.totalTokens == 11 + 2 + 3 + 16 + 5)
    }

    @Test("Results, error types, stop reasons and web searches are counted by their labels")
    func labels() {
        let tally = Self.tally([
            Self.succeeded(model: "a", stop: "max_tokens", usage: #""server_tool_use":{"web_search_requests":3}"#),
            Self.succeeded(model: "a", stop: "max_tokens", usage: #""server_tool_use":{"web_search_requests":1}"#),
            #"{"result":{"type":"succeeded","message":{"model":"b","stop_reason":null,"usage":{}}}}"#,
            #"{"result":{"type":"errored","error":{"type":"error","error":{"type":"overloaded_error"}}}}"#,
            #"{"result":{"type":"errored","error":{"type":"error"}}}"#,
            #"{"result":{"type":"canceled"}}"#,
            #"{"result":{"type":"new_kind"}}"#,
        ])
        #expect(tally.results == ["succeeded": 3, "errored": 2, "canceled": 1, "new_kind": 1])
        #expect(tally.erroredByType == ["overloaded_error": 1, "unknown": 1])
        #expect(tally.stopReasons[.init(model: "a", stopReason: "max_tokens")] == 2)
        #expect(tally.stopReasons[.init(model: "b", stopReason: "none")] == 1)
        #expect(tally.webSearchRequests == ["a": 4])
        #expect(tally.lines == 7)
    }

    @Test("Consistent only when every documented type matches request_counts and no line is malformed")
    func consistency() {
        let lines = [
            Self.succeeded(usage: ""), Self.succeeded(usage: ""),
            #"{"result":{"type":"errored","error":{"error":{"type":"api_error"}}}}"#,
            #"{"result":{"type":"expired"}}"#,
        ]
        let tally = Self.tally(lines)
        #expect(tally.consistent(with: RequestCounts(succeeded: 2, errored: 1, expired: 1)))
        #expect(!tally.consistent(with: RequestCounts(succeeded: 3, errored: 1, expired: 1)))
        #expect(!tally.consistent(with: RequestCounts(succeeded: 2, errored: 1, canceled: 1, expired: 1)))
        #expect(!tally.consistent(with: RequestCounts(processing: 1, succeeded: 2, errored: 1, expired: 1)))
        let broken = Self.tally(lines + [#"{"result":{"type":"canceled""#])
        #expect(broken.malformedLines == 1)
        #expect(!broken.consistent(with: RequestCounts(succeeded: 2, errored: 1, expired: 1)))
    }

    @Test("Past the per-batch distinct limit, new label values count as other")
    func distinctLimit() {
        let lines = (0..<5).map { Self.succeeded(model: "model-\($0)", stop: "reason-\($0)", usage: #""input_tokens":1"#) }
        let tally = Self.tally(lines, distinctLimit: 3)
        let models = Set(tally.tokens.keys.map(\.model))
        #expect(models == ["model-0", "model-1", "model-2", "other"])
        #expect(tally.tokens[.init(model: "other", tokenType: .input)] == 2)
        #expect(Set(tally.stopReasons.keys.map(\.stopReason)) == ["reason-0", "reason-1", "reason-2", "other"])
    }

    @Test("A tally holds no content: its encoded form has only labels and numbers")
    func noContent() throws {
        let tally = Self.tally([
            #"{"custom_id":"private-id","result":{"type":"succeeded","message":{"model":"m","content":[{"type":"text","text":"private text"}],"usage":{"input_tokens":1}}}}"#
        ])
        let encoded = "\(tally)"
        #expect(!encoded.contains("private"))
        #expect(tally.bytes > 0)
    }
}

@Suite("The scanner's eight-bytes-at-a-time test")
struct ResultsSWARTests {
    @Test("hasSpecialByte flags a word exactly when one of its bytes is a quote, a backslash or a control character")
    func matchesBytewise() {
        var random = SeededRandom(seed: 42)
        let interesting: [UInt8] = [0x00, 0x1F, 0x20, 0x21, 0x22, 0x23, 0x5B, 0x5C, 0x5D, 0x7F, 0x80, 0xA2, 0xDC, 0xFF, 0x41]
        var flagged = 0
        for _ in 0..<200_000 {
            let bytes = (0..<8).map { _ in interesting.randomElement(using: &random)! }
            let word = bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
            let expected = bytes.contains { $0 == 0x22 || $0 == 0x5C || $0 < 0x20 }
            #expect(ResultsLineScanner.hasSpecialByte(word) == expected, "\(bytes)")
            if expected { flagged += 1 }
        }
        #expect(flagged > 10_000 && flagged < 200_000)
    }
}
