import Basics
import Testing

@Suite("Duration conversions")
struct DurationUnitsTests {
    @Test(
        "Timeouts become whole milliseconds and seconds rounded up, never zero (zero means no limit to libcurl)",
        arguments: [
            (Duration.milliseconds(300), 300, 1), (.seconds(2), 2000, 2), (.microseconds(10), 1, 1),
            (.milliseconds(1500), 1500, 2), (.microseconds(1_000_500), 1001, 2), (.zero, 1, 1),
        ]
    )
    func timeouts(duration: Duration, milliseconds: Int, seconds: Int) {
        #expect(duration.timeoutMilliseconds == milliseconds)
        #expect(duration.timeoutSeconds == seconds)
    }

    @Test("Whole milliseconds truncate; seconds and milliseconds as Double keep the fraction")
    func exactValues() {
        #expect(Duration.microseconds(2_999).inWholeMilliseconds == 2)
        #expect(Duration.seconds(90).inWholeMilliseconds == 90_000)
        #expect(Duration.milliseconds(1_250).inSeconds == 1.25)
        #expect(Duration.microseconds(1_500).inMilliseconds == 1.5)
        #expect(Duration.seconds(-2).inSeconds == -2)
    }
}

@Suite("Whitespace trim")
struct TrimmingTests {
    @Test(
        "Leading and trailing spaces, tabs and line breaks go; inner ones stay",
        arguments: [
            ("  gzip ", "gzip"), ("\tq=0.5\t", "q=0.5"), ("sk-ant-key\n", "sk-ant-key"), ("\r\n a b \r\n", "a b"),
            ("", ""), ("   ", ""), ("none", "none"),
        ]
    )
    func trims(input: String, expected: String) {
        #expect(input.trimmingWhitespace == expected)
        #expect(input[...].trimmingWhitespace == expected)
    }
}
