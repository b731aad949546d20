import Foundation
import PrometheusExposition
import Testing

@Suite("Golden exposition")
struct GoldenTests {
    /// Given out of order on purpose: the renderer sorts families by name.
    static let families: [MetricFamily] = [
        MetricFamily(
            name: "anthropic_values",
            help: "Special values: NaN, \\Inf\\ and exponents.\nSecond line.",
            type: .gauge,
            samples: [
                Sample([Label("kind", "nan")], .nan),
                Sample([Label("kind", "pos_inf")], .infinity),
                Sample([Label("kind", "neg_inf")], -.infinity),
                Sample([Label("kind", "big")], 1e21),
                Sample([Label("kind", "small")], 0.1),
                Sample([Label("kind", "negative")], -2.5),
            ]
        ),
        MetricFamily.histogram(
            name: "anthropic_poll_duration_seconds",
            help: "Time to list every batch of a workspace, in seconds.",
            unit: "seconds",
            bounds: [0.05, 0.5, 5],
            series: [(labels: [Label("workspace", "default")], bucketCounts: [1, 4, 2], sum: 9.75, count: 8)]
        ),
        MetricFamily(
            name: "anthropic_exporter_build",
            help: "Build information: version and Swift version.",
            type: .info,
            samples: [Sample([Label("version", "1.0.0"), Label("swift", "6.2")], 1)]
        ),
        MetricFamily(
            name: "anthropic_batches",
            help: "Message batches by processing status.",
            type: .gauge,
            samples: [
                Sample([Label("workspace", "default"), Label("processing_status", "in_progress")], 2),
                Sample([Label("workspace", "default"), Label("processing_status", "ended")], 40),
                Sample([Label("workspace", "team \"a\"\\b\nc"), Label("processing_status", "ended")], 1),
            ]
        ),
        MetricFamily(
            name: "anthropic_snapshot_timestamp_seconds",
            help: "When the snapshot was taken, \"Unix time\".",
            type: .gauge,
            unit: "seconds",
            samples: [Sample([], 1_724_179_044.100435)]
        ),
        MetricFamily(
            name: "anthropic_batch_requests",
            help: "Requests in ended batches, by result.",
            type: .counter,
            samples: [
                Sample([Label("workspace", "default"), Label("result", "succeeded")], 1200),
                Sample([Label("workspace", "default"), Label("result", "errored")], 3),
            ]
        ),
    ]

    static func fixture() throws -> [UInt8] {
        let url = try #require(Bundle.module.url(forResource: "golden", withExtension: "prom", subdirectory: "Fixtures"))
        return Array(try Data(contentsOf: url))
    }

    @Test("A fixed list of families renders to exactly Fixtures/golden.prom in text 0.0.4")
    func matchesFixture() throws {
        let expected = try Self.fixture()
        let actual = ExpositionRenderer.render(Self.families, format: .text)
        #expect(String(decoding: actual, as: UTF8.self) == String(decoding: expected, as: UTF8.self))
        #expect(actual == expected)
    }

    @Test(
        "promtool accepts the golden fixture without complaint",
        .enabled(if: promtoolOnPath())
    )
    func promtoolAccepts() throws {
        let result = try run(["promtool", "check", "metrics"], stdin: try Self.fixture())
        #expect(result.status == 0)
        #expect(String(decoding: result.stdout + result.stderr, as: UTF8.self) == "")
    }

    @Test("promtool is really checking: it rejects a family without HELP (guards the test above)", .enabled(if: promtoolOnPath()))
    func promtoolRejects() throws {
        let result = try run(["promtool", "check", "metrics"], stdin: Array("x_total 1\n# TYPE y counter\n".utf8))
        #expect(result.status != 0)
    }
}

func promtoolOnPath() -> Bool {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    return path.split(separator: ":").contains { FileManager.default.isExecutableFile(atPath: "\($0)/promtool") }
}
