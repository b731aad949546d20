import Foundation
import LogFormats
import Logging
import Testing

@Suite("StructuredLogHandler.render, logfmt")
struct LogfmtRenderTests {
    @Test("Plain values are written bare, separated by single spaces, in the order given")
    func plainValues() {
        let line = StructuredLogHandler.render(
            [("ts", "2024-08-20T18:37:24.100Z"), ("level", "info"), ("msg", "started"), ("port", "9100")],
            format: .logfmt
        )
        #expect(line == "ts=2024-08-20T18:37:24.100Z level=info msg=started port=9100")
    }

    @Test(
        "Values with spaces, '=', quotes, backslashes or newlines, and empty values, are quoted and escaped",
        arguments: [
            ("hello world", #""hello world""#),
            ("a=b", #""a=b""#),
            (#"say "hi""#, #""say \"hi\"""#),
            (#"C:\dir"#, #""C:\\dir""#),
            ("line1\nline2", #""line1\nline2""#),
            ("cr\rhere", #""cr\rhere""#),
            ("", #""""#),
            ("plain-value_1.5", "plain-value_1.5"),
            ("ünïcode", "ünïcode"),
        ]
    )
    func quoting(value: String, expected: String) {
        #expect(StructuredLogHandler.render([("k", value)], format: .logfmt) == "k=" + expected)
    }

    // BUG (see report): logfmt readers (go-logfmt) end a bare value at any byte <= ' ', so a
    // tab or other control character must force quoting just as a space does.
    @Test(
        "Values with tabs or other control characters are quoted",
        arguments: [("a\tb", #""a\tb""#), ("bell\u{07}", #""bell\u0007""#)]
    )
    func quotesControlCharacters(value: String, expected: String) {
        #expect(StructuredLogHandler.render([("k", value)], format: .logfmt) == "k=" + expected)
    }
}

@Suite("StructuredLogHandler.render, JSON")
struct JSONRenderTests {
    @Test("Fields become one JSON object, keys in the order given")
    func object() {
        let line = StructuredLogHandler.render(
            [("ts", "2024-08-20T18:37:24.100Z"), ("level", "warn"), ("msg", "poll failed"), ("attempt", "3")],
            format: .json
        )
        #expect(line == #"{"ts":"2024-08-20T18:37:24.100Z","level":"warn","msg":"poll failed","attempt":"3"}"#)
    }

    @Test(
        "Quotes, backslashes and control characters are escaped; other characters pass through",
        arguments: [
            (#"say "hi""#, #""say \"hi\"""#),
            (#"C:\dir"#, #""C:\\dir""#),
            ("a\nb\rc\td", #""a\nb\rc\td""#),
            ("\u{00}\u{01}\u{1f}", #""\u0000\u0001\u001f""#),
            ("\u{7f}é✓", "\"\u{7f}é✓\""),
            ("a=b c", #""a=b c""#),
            ("", #""""#),
        ]
    )
    func escaping(value: String, expected: String) {
        #expect(StructuredLogHandler.render([("k", value)], format: .json) == "{\"k\":" + expected + "}")
    }

    @Test("Escaped keys and values read back unchanged with a JSON parser")
    func readsBack() throws {
        let fields = [("msg", "tab\there \"quoted\" \\ \u{01} ünï"), ("we\"ird key", "line1\nline2")]
        let line = StructuredLogHandler.render(fields, format: .json)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String])
        #expect(object == ["msg": "tab\there \"quoted\" \\ \u{01} ünï", "we\"ird key": "line1\nline2"])
    }
}

@Suite("Logger.Level(prometheusName:)")
struct PrometheusLevelNameTests {
    @Test(
        "The four Prometheus level names map to swift-log levels",
        arguments: [("debug", Logger.Level.debug), ("info", .info), ("warn", .warning), ("error", .error)]
    )
    func known(name: String, level: Logger.Level) {
        #expect(Logger.Level(prometheusName: name) == level)
    }

    @Test(
        "Other spellings are not level names",
        arguments: ["", "warning", "trace", "critical", "INFO", "Debug", " info", "notice"]
    )
    func unknown(name: String) {
        #expect(Logger.Level(prometheusName: name) == nil)
    }
}
