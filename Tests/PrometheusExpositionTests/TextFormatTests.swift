import PrometheusExposition
import Testing

func rendered(_ families: [MetricFamily], _ format: ExpositionFormat) -> String {
    String(decoding: ExpositionRenderer.render(families, format: format), as: UTF8.self)
}

@Suite("formatValue")
struct FormatValueTests {
    @Test(
        "Sample values are written as Prometheus and OpenMetrics parse them",
        arguments: [
            (1.0, "1"),
            (1.5, "1.5"),
            (-2.0, "-2"),
            (0.0, "0"),
            (-0.0, "0"),
            (0.1, "0.1"),
            (-2.5, "-2.5"),
            (1e21, "1e+21"),
            (1e-7, "1e-07"),
            (123_456_789_012.0, "123456789012"),
            (9_007_199_254_740_991.0, "9007199254740991"),
            (9_007_199_254_740_992.0, "9007199254740992.0"),
            (1e16, "1e+16"),
            (1_724_179_044.100435, "1724179044.100435"),
            (Double.nan, "NaN"),
            (Double.infinity, "+Inf"),
            (-Double.infinity, "-Inf"),
        ]
    )
    func formats(value: Double, expected: String) {
        #expect(formatValue(value) == expected)
    }
}

@Suite("ExpositionRenderer")
struct ExpositionRendererTests {
    @Test("Label values escape backslash, double quote and newline in both formats", arguments: ExpositionFormat.allCases)
    func labelEscaping(format: ExpositionFormat) {
        let family = MetricFamily(
            name: "x", help: "h", type: .gauge,
            samples: [Sample([Label("path", #"C:\dir"#), Label("q", #"say "hi""#), Label("n", "a\nb")], 1)]
        )
        let sampleLine = rendered([family], format).split(separator: "\n").last.map(String.init)
        #expect(sampleLine == #"x{path="C:\\dir",q="say \"hi\"",n="a\nb"} 1"#)
    }

    @Test("HELP escapes only backslash and newline in text 0.0.4")
    func helpEscapingText() {
        let family = MetricFamily(name: "x", help: "a \\ b\n\"c\"", type: .gauge, samples: [Sample([], 1)])
        #expect(rendered([family], .text) == "# HELP x a \\\\ b\\n\"c\"\n# TYPE x gauge\nx 1\n")
    }

    @Test("HELP escapes backslash, newline and double quote in OpenMetrics")
    func helpEscapingOpenMetrics() {
        let family = MetricFamily(name: "x", help: "a \\ b\n\"c\"", type: .gauge, samples: [Sample([], 1)])
        #expect(rendered([family], .openMetrics) == "# HELP x a \\\\ b\\n\\\"c\\\"\n# TYPE x gauge\nx 1\n")
    }

    @Test("Text 0.0.4 names a counter family and its samples x_total")
    func counterText() {
        let family = MetricFamily(name: "x", help: "Things.", type: .counter, samples: [Sample([Label("a", "1")], 5), Sample([], 2)])
        #expect(rendered([family], .text) == "# HELP x_total Things.\n# TYPE x_total counter\nx_total{a=\"1\"} 5\nx_total 2\n")
    }

    @Test("OpenMetrics names a counter family x and its samples x_total")
    func counterOpenMetrics() {
        let family = MetricFamily(name: "x", help: "Things.", type: .counter, samples: [Sample([Label("a", "1")], 5)])
        #expect(rendered([family], .openMetrics) == "# HELP x Things.\n# TYPE x counter\nx_total{a=\"1\"} 5\n")
    }

    @Test("Text 0.0.4 shows an info family as a gauge named x_info")
    func infoText() {
        let family = MetricFamily(name: "x", help: "Build.", type: .info, samples: [Sample([Label("version", "1.0")], 1)])
        #expect(rendered([family], .text) == "# HELP x_info Build.\n# TYPE x_info gauge\nx_info{version=\"1.0\"} 1\n")
    }

    @Test("OpenMetrics shows an info family as type info named x, samples x_info")
    func infoOpenMetrics() {
        let family = MetricFamily(name: "x", help: "Build.", type: .info, samples: [Sample([Label("version", "1.0")], 1)])
        #expect(rendered([family], .openMetrics) == "# HELP x Build.\n# TYPE x info\nx_info{version=\"1.0\"} 1\n")
    }

    @Test("# UNIT appears only in OpenMetrics, and only when the name ends in _<unit>")
    func unit() {
        let matching = MetricFamily(name: "x_seconds", help: "h", type: .gauge, unit: "seconds", samples: [Sample([], 1)])
        let counter = MetricFamily(name: "y_seconds", help: "h", type: .counter, unit: "seconds", samples: [Sample([], 2)])
        let mismatched = MetricFamily(name: "x_secondsish", help: "h", type: .gauge, unit: "seconds", samples: [Sample([], 1)])
        let noUnit = MetricFamily(name: "z_bytes", help: "h", type: .gauge, samples: [Sample([], 1)])

        #expect(rendered([matching], .openMetrics) == "# HELP x_seconds h\n# TYPE x_seconds gauge\n# UNIT x_seconds seconds\nx_seconds 1\n")
        #expect(
            rendered([counter], .openMetrics)
                == "# HELP y_seconds h\n# TYPE y_seconds counter\n# UNIT y_seconds seconds\ny_seconds_total 2\n"
        )
        #expect(rendered([mismatched], .openMetrics) == "# HELP x_secondsish h\n# TYPE x_secondsish gauge\nx_secondsish 1\n")
        #expect(rendered([noUnit], .openMetrics) == "# HELP z_bytes h\n# TYPE z_bytes gauge\nz_bytes 1\n")
        #expect(!rendered([matching, counter], .text).contains("# UNIT"))
    }

    @Test("Families come out sorted by name, samples in the order given", arguments: ExpositionFormat.allCases)
    func sorted(format: ExpositionFormat) {
        let families = [
            MetricFamily(name: "c", help: "h", type: .gauge, samples: [Sample([Label("i", "2")], 2), Sample([Label("i", "1")], 1)]),
            MetricFamily(name: "a", help: "h", type: .gauge, samples: [Sample([], 0)]),
            MetricFamily(name: "b", help: "h", type: .gauge, samples: [Sample([], 0)]),
        ]
        let sampleLines = rendered(families, format).split(separator: "\n").filter { !$0.hasPrefix("#") }
        #expect(sampleLines == ["a 0", "b 0", #"c{i="2"} 2"#, #"c{i="1"} 1"#])
    }

    @Test("A family without samples renders only its HELP and TYPE")
    func emptyFamily() {
        #expect(rendered([MetricFamily(name: "x", help: "h", type: .gauge)], .text) == "# HELP x h\n# TYPE x gauge\n")
        #expect(rendered([], .text) == "")
    }

    @Test("Content types name the format versions")
    func contentTypes() {
        #expect(ExpositionFormat.text.contentType == "text/plain; version=0.0.4; charset=utf-8")
        #expect(ExpositionFormat.openMetrics.contentType == "application/openmetrics-text; version=1.0.0; charset=utf-8")
    }

    @Test("render(into:) appends to what is already in the buffer")
    func renderInto() {
        var output = Array("prefix\n".utf8)
        ExpositionRenderer.render([MetricFamily(name: "x", help: "h", type: .gauge, samples: [Sample([], 1)])], format: .text, into: &output)
        #expect(String(decoding: output, as: UTF8.self) == "prefix\n# HELP x h\n# TYPE x gauge\nx 1\n")
    }
}

@Suite("Histograms")
struct HistogramTests {
    @Test("The histogram helper writes cumulative buckets, then le=\"+Inf\" with the count, then _sum and _count")
    func helper() {
        let family = MetricFamily.histogram(
            name: "poll_seconds",
            help: "h",
            unit: "seconds",
            bounds: [0.1, 1, 10],
            series: [
                (labels: [Label("w", "a")], bucketCounts: [1, 2, 0], sum: 25.5, count: 5),
                (labels: [Label("w", "b")], bucketCounts: [0, 0, 0], sum: 0, count: 0),
            ]
        )
        #expect(
            rendered([family], .text) == """
                # HELP poll_seconds h
                # TYPE poll_seconds histogram
                poll_seconds_bucket{w="a",le="0.1"} 1
                poll_seconds_bucket{w="a",le="1"} 3
                poll_seconds_bucket{w="a",le="10"} 3
                poll_seconds_bucket{w="a",le="+Inf"} 5
                poll_seconds_sum{w="a"} 25.5
                poll_seconds_count{w="a"} 5
                poll_seconds_bucket{w="b",le="0.1"} 0
                poll_seconds_bucket{w="b",le="1"} 0
                poll_seconds_bucket{w="b",le="10"} 0
                poll_seconds_bucket{w="b",le="+Inf"} 0
                poll_seconds_sum{w="b"} 0
                poll_seconds_count{w="b"} 0

                """
        )
        #expect(rendered([family], .openMetrics).hasPrefix("# HELP poll_seconds h\n# TYPE poll_seconds histogram\n# UNIT poll_seconds seconds\n"))
    }

    @Test("HistogramCounts counts a value equal to a bound into that bound's bucket (value <= bound)")
    func boundaries() {
        var counts = HistogramCounts(bounds: [5, 1, 2])
        #expect(counts.bounds == [1, 2, 5])
        for value in [1.0, 2.0, 5.0, 0.5, 1.000_001, 5.000_001, 100] {
            counts.observe(value)
        }
        #expect(counts.bucketCounts == [2, 2, 1])
        #expect(counts.count == 7)
        #expect(counts.sum == 1 + 2 + 5 + 0.5 + 1.000_001 + 5.000_001 + 100)
    }

    @Test("HistogramCounts ignores NaN and counts negative values into the first bucket")
    func nanAndNegative() {
        var counts = HistogramCounts(bounds: [0, 1])
        counts.observe(.nan)
        counts.observe(-3)
        counts.observe(.infinity)
        #expect(counts.bucketCounts == [1, 0])
        #expect(counts.count == 2)
        #expect(counts.sum == .infinity)
    }

    @Test("HistogramCounts feeds the histogram helper to the same cumulative series")
    func countsToFamily() {
        var counts = HistogramCounts(bounds: [1, 10])
        for value in [0.5, 1, 3, 10, 11] { counts.observe(value) }
        let family = MetricFamily.histogram(
            name: "h", help: "h", bounds: counts.bounds,
            series: [(labels: [], bucketCounts: counts.bucketCounts, sum: counts.sum, count: counts.count)]
        )
        let sampleLines = rendered([family], .text).split(separator: "\n").filter { !$0.hasPrefix("#") }
        #expect(sampleLines == [#"h_bucket{le="1"} 2"#, #"h_bucket{le="10"} 4"#, #"h_bucket{le="+Inf"} 5"#, "h_sum 25.5", "h_count 5"])
    }
}
