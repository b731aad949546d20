import Foundation
import RFC3339
import Testing

// Expected epoch values were computed independently with Python's `datetime` (and are
// cross-checked against Foundation's ISO8601DateFormatter below), not with the code under test.

@Suite("RFC3339.parse")
struct RFC3339ParseTests {
    @Test("The API's own spelling parses to the exact epoch seconds, microseconds included")
    func parsesAPIFormat() throws {
        let value = try #require(RFC3339.parse("2024-08-20T18:37:24.100435Z"))
        #expect(value == 1_724_179_044.100435)
    }

    @Test(
        "Offsets, missing fractions, lower-case separators and dates before 1970 parse to the exact epoch value",
        arguments: [
            ("2024-08-20T18:37:24Z", 1_724_179_044.0),
            ("2024-08-20T18:37:24+00:00", 1_724_179_044.0),
            ("2024-08-20T18:37:24+02:00", 1_724_171_844.0),
            ("2024-08-20T18:37:24-05:30", 1_724_198_844.0),
            ("2024-08-20T20:37:24.25+02:00", 1_724_179_044.25),
            ("2024-08-20t18:37:24.5z", 1_724_179_044.5),
            ("2024-08-20 18:37:24Z", 1_724_179_044.0),
            ("2024-02-29T00:00:00Z", 1_709_164_800.0),
            ("1970-01-01T00:00:00Z", 0.0),
            ("1969-12-31T23:59:59.5Z", -0.5),
            ("1969-07-20T20:17:40Z", -14_182_940.0),
            ("1900-01-01T00:00:00Z", -2_208_988_800.0),
        ]
    )
    func parsesVariants(text: String, expected: Double) {
        #expect(RFC3339.parse(text) == expected)
    }

    @Test(
        "Whole-second timestamps agree with Foundation's ISO8601DateFormatter",
        arguments: [
            "2024-08-20T18:37:24Z", "2024-08-20T18:37:24+02:00", "2024-08-20T18:37:24-05:30", "2024-02-29T12:00:00Z",
            "1969-07-20T20:17:40Z", "1900-01-01T00:00:00Z", "2038-01-19T03:14:08Z", "2000-02-29T23:59:59Z",
        ]
    )
    func agreesWithFoundation(text: String) throws {
        let expected = try #require(ISO8601DateFormatter().date(from: text)).timeIntervalSince1970
        #expect(RFC3339.parse(text) == expected)
    }

    @Test(
        "Malformed timestamps are rejected with nil",
        arguments: [
            "",
            "2024-08-20",
            "2024-13-20T18:37:24Z",
            "2024-00-20T18:37:24Z",
            "2024-08-00T18:37:24Z",
            "2024-08-32T18:37:24Z",
            "2024-08-20T18:37:24",
            "2024-08-20T18:37:24.100435",
            "2024-08-20T18:37:24Zjunk",
            "2024-08-20T18:37:24+02:00 ",
            " 2024-08-20T18:37:24Z",
            "2024-08-20T18:37:24.Z",
            "2024-08-20T24:00:00Z",
            "2024-08-20T18:60:00Z",
            "2024-08-20T18:37:61Z",
            "2024-08-20T18:37:24+0200",
            "2024-08-20T18:37:24+02",
            "2024-8-20T18:37:24Z",
            "2024-08-20X18:37:24Z",
            "2024/08/20T18:37:24Z",
            "2024-08-20T18:37Z",
            "not a timestamp",
        ]
    )
    func rejectsMalformed(text: String) {
        #expect(RFC3339.parse(text) == nil)
    }

    // BUG (see report): only 1...31 is checked, so days that do not exist in their month are
    // accepted and silently roll over into the next month.
    @Test(
        "Days that do not exist in their month are rejected",
        arguments: ["2024-02-30T00:00:00Z", "2023-02-29T00:00:00Z", "2024-04-31T00:00:00Z"]
    )
    func rejectsImpossibleDays(text: String) {
        #expect(RFC3339.parse(text) == nil)
    }

    @Test("The UTF-8 buffer entry point gives the same value as the String one")
    func parsesUTF8Buffer() {
        let bytes = Array("2024-08-20T18:37:24.100435Z".utf8)
        let value = bytes.withUnsafeBufferPointer { RFC3339.parse(utf8: $0) }
        #expect(value == 1_724_179_044.100435)
    }
}

@Suite("RFC3339.format")
struct RFC3339FormatTests {
    @Test(
        "format writes UTC with six fraction digits, and parse reads it back to the microsecond",
        arguments: [
            (1_724_179_044.100435, "2024-08-20T18:37:24.100435Z"),
            (0.0, "1970-01-01T00:00:00.000000Z"),
            (-0.000001, "1969-12-31T23:59:59.999999Z"),
            (-14_182_939.999999, "1969-07-20T20:17:40.000001Z"),
            (-310_498_199.75, "1960-02-29T06:30:00.250000Z"),
            (1_709_251_199.999999, "2024-02-29T23:59:59.999999Z"),
            (951_782_400.0, "2000-02-29T00:00:00.000000Z"),
            (-2_203_845_903.210988, "1900-03-01T12:34:56.789012Z"),
            (2_147_483_648.0, "2038-01-19T03:14:08.000000Z"),
            (4_133_980_799.5, "2100-12-31T23:59:59.500000Z"),
        ]
    )
    func roundTrips(seconds: Double, text: String) throws {
        #expect(RFC3339.format(seconds) == text)
        let parsed = try #require(RFC3339.parse(text))
        #expect(abs(parsed - seconds) < 0.000_000_5)
        #expect(RFC3339.format(parsed) == text)
    }

    @Test("format rounds to the nearest microsecond, carrying into the next second")
    func roundsToMicroseconds() {
        #expect(RFC3339.format(1_724_179_044.000_000_2) == "2024-08-20T18:37:24.000000Z")
        #expect(RFC3339.format(1_724_179_044.999_999_7) == "2024-08-20T18:37:25.000000Z")
        #expect(RFC3339.format(-0.000_000_7) == "1969-12-31T23:59:59.999999Z")
    }
}

@Suite("HTTPDate.parse")
struct HTTPDateTests {
    @Test("RFC 9110's example IMF-fixdate parses to its epoch seconds")
    func parsesExample() {
        #expect(HTTPDate.parse("Sun, 06 Nov 1994 08:49:37 GMT") == 784_111_777)
    }

    @Test(
        "IMF-fixdates parse to the exact epoch value",
        arguments: [
            ("Thu, 29 Feb 2024 00:00:00 GMT", 1_709_164_800.0),
            ("Thu, 01 Jan 1970 00:00:00 GMT", 0.0),
            ("Tue, 20 Aug 2024 18:37:24 GMT", 1_724_179_044.0),
            ("Sun, 20 Jul 1969 20:17:40 GMT", -14_182_940.0),
        ]
    )
    func parsesDates(text: String, expected: Double) {
        #expect(HTTPDate.parse(text) == expected)
    }

    @Test(
        "Malformed HTTP dates are rejected with nil",
        arguments: [
            "",
            "120",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 06 Nov 1994 08:49:37",
            "Sun, 06 Nov 1994 08:49:37 GMT extra",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 06 nov 1994 08:49:37 GMT",
            "Sun, 00 Nov 1994 08:49:37 GMT",
            "Sun, 32 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 06 Nov 1994 08:60:00 GMT",
            "Sun, 06 Nov 1994 08:49:61 GMT",
            "Sun, 06 Nov 1994 08:49 GMT",
            "Sun, 06 Nov 1994 08:49:37:00 GMT",
            "Sun, xx Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "1994-11-06T08:49:37Z",
        ]
    )
    func rejectsMalformed(text: String) {
        #expect(HTTPDate.parse(text) == nil)
    }
}
