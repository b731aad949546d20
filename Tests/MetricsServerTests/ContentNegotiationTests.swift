import MetricsServer
import PrometheusExposition
import Testing

@Suite("ContentNegotiation")
struct ContentNegotiationTests {
    static let prometheus3Default =
        "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,"
        + "application/openmetrics-text;version=0.0.1;q=0.4,"
        + "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,"
        + "text/plain;version=0.0.4;q=0.2,*/*;q=0.1"

    @Test(
        "The Accept header picks the best format we speak, falling back to text 0.0.4",
        arguments: [
            (nil, ExpositionFormat.text),
            ("", .text),
            (prometheus3Default, .openMetrics),
            ("application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.2,*/*;q=0.1", .openMetrics),
            ("text/plain;version=0.0.4", .text),
            ("text/plain", .text),
            ("application/openmetrics-text; version=1.0.0", .openMetrics),
            ("application/openmetrics-text", .openMetrics),
            ("Application/OpenMetrics-Text;Version=1.0.0", .openMetrics),
            // Unsupported versions do not count; nothing usable is left, so text.
            ("application/openmetrics-text;version=0.0.1", .text),
            ("text/plain;version=1.0.0", .text),
            ("application/json", .text),
            ("*/*", .text),
            // q=0 means "not acceptable".
            ("application/openmetrics-text;version=1.0.0;q=0", .text),
            ("text/plain;q=0,application/openmetrics-text;version=1.0.0;q=0.1", .openMetrics),
            ("text/plain;version=0.0.4;q=0.9,application/openmetrics-text;version=1.0.0;q=1", .openMetrics),
            ("application/openmetrics-text;version=1.0.0;q=0.4,text/plain;version=0.0.4;q=0.6", .text),
            // Equal quality prefers text, whichever comes first.
            ("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4", .text),
            ("text/plain;version=0.0.4,application/openmetrics-text;version=1.0.0", .text),
            ("application/openmetrics-text;version=1.0.0;q=0.5,*/*;q=0.5", .text),
        ] as [(String?, ExpositionFormat)]
    )
    func format(accept: String?, expected: ExpositionFormat) {
        #expect(ContentNegotiation.format(forAccept: accept) == expected)
    }

    @Test(
        "gzip is accepted when listed or covered by '*' with a non-zero quality",
        arguments: [
            ("gzip", true),
            ("gzip, deflate", true),
            ("deflate, gzip;q=0.5", true),
            ("GZIP", true),
            ("deflate", false),
            ("gzip;q=0", false),
            ("gzip;q=0.0", false),
            ("*", true),
            ("identity", false),
            ("", false),
            (nil, false),
        ] as [(String?, Bool)]
    )
    func gzip(acceptEncoding: String?, expected: Bool) {
        #expect(ContentNegotiation.acceptsGzip(acceptEncoding) == expected)
    }

    // BUG (see report): RFC 9110 §12.5.3 — "*" matches only codings not listed explicitly, so an
    // explicit gzip;q=0 must win over "*"; and parameter names are case-insensitive.
    @Test(
        "An explicit gzip;q=0 refuses gzip even when '*' is also listed, and Q= counts like q=",
        arguments: ["gzip;q=0, *", "*, gzip;q=0", "gzip;Q=0"]
    )
    func gzipRefusedExplicitly(acceptEncoding: String) {
        #expect(ContentNegotiation.acceptsGzip(acceptEncoding) == false)
    }
}
