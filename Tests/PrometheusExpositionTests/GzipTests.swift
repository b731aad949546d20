import Foundation
import NIOCore
import PrometheusExposition
import Testing

@Suite("GzipPrefix")
struct GzipTests {
    static let sizes: [(prefix: Int, tail: Int)] = [
        (0, 0),
        (0, 100),
        (100, 0),
        (1, 1),
        (5000, 300),
        (1 << 20, 2000),
        (40_000, 70_000),
    ]

    static func parts(_ size: (prefix: Int, tail: Int)) -> (prefix: [UInt8], tail: [UInt8]) {
        (pseudoRandomText(bytes: size.prefix, seed: 1), pseudoRandomText(bytes: size.tail, seed: 2))
    }

    @Test("The prefix plus completion(for:) is one gzip member that zlib inflates to prefix + tail", arguments: sizes)
    func inflatesWithZlib(size: (prefix: Int, tail: Int)) throws {
        let (prefix, tail) = Self.parts(size)
        let gzip = GzipPrefix(compressing: prefix)
        let member = gzip.compressed + gzip.completion(for: tail)
        #expect(Array(member.prefix(3)) == [0x1f, 0x8b, 0x08])
        let inflated = try gunzip(member)
        #expect(inflated.count == prefix.count + tail.count)
        #expect(inflated == prefix + tail)
    }

    @Test("One prefix serves many different tails")
    func prefixIsReusable() throws {
        let prefix = pseudoRandomText(bytes: 10_000, seed: 3)
        let gzip = GzipPrefix(compressing: prefix)
        for seed: UInt64 in 10..<14 {
            let tail = pseudoRandomText(bytes: 500 + Int(seed), seed: seed)
            #expect(try gunzip(gzip.compressed + gzip.completion(for: tail)) == prefix + tail)
        }
    }

    @Test("The prefix really is compressed")
    func compresses() {
        let prefix = pseudoRandomText(bytes: 1 << 20, seed: 1)
        let gzip = GzipPrefix(compressing: prefix)
        #expect(gzip.compressed.count < prefix.count / 2)
    }

    @Test("Python's gzip module decodes the same bytes to prefix + tail", arguments: sizes)
    func inflatesWithPython(size: (prefix: Int, tail: Int)) throws {
        let (prefix, tail) = Self.parts(size)
        let gzip = GzipPrefix(compressing: prefix)
        let member = gzip.compressed + gzip.completion(for: tail)
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("gzip-test-\(UUID().uuidString).gz")
        try Data(member).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let result = try run([
            "python3", "-c",
            #"import gzip,sys; sys.stdout.buffer.write(gzip.decompress(open(sys.argv[1],"rb").read()))"#,
            file.path,
        ])
        #expect(result.status == 0, "\(String(decoding: result.stderr, as: UTF8.self))")
        #expect(result.stdout.count == prefix.count + tail.count)
        #expect(result.stdout == prefix + tail)
    }
}

@Suite("RenderedExposition")
struct RenderedExpositionTests {
    static let families = [
        MetricFamily(name: "b_gauge", help: "B.", type: .gauge, samples: [Sample([Label("l", "v")], 2)]),
        MetricFamily(name: "a_events", help: "A.", type: .counter, samples: [Sample([], 10)]),
    ]
    static let tail = [
        MetricFamily(name: "process_open_fds", help: "Fds.", type: .gauge, samples: [Sample([], 12)]),
        MetricFamily(name: "age_seconds", help: "Age.", type: .gauge, unit: "seconds", samples: [Sample([], 0.25)]),
    ]

    static func expectedBody(_ format: ExpositionFormat) -> [UInt8] {
        var body = ExpositionRenderer.render(families, format: format) + ExpositionRenderer.render(tail, format: format)
        if format == .openMetrics { body += Array("# EOF\n".utf8) }
        return body
    }

    @Test("Plain: shared is the rendered families, perScrape the rendered tail (+ # EOF for OpenMetrics)", arguments: ExpositionFormat.allCases)
    func plain(format: ExpositionFormat) {
        let response = RenderedExposition(families: Self.families).response(format: format, tail: Self.tail, gzip: false)
        #expect(response.isGzip == false)
        #expect(response.shared.flatMap(\.readableBytesView) == ExpositionRenderer.render(Self.families, format: format))
        var expectedTail = ExpositionRenderer.render(Self.tail, format: format)
        if format == .openMetrics { expectedTail += Array("# EOF\n".utf8) }
        #expect(Array(response.perScrape.readableBytesView) == expectedTail)
        #expect(response.shared.flatMap(\.readableBytesView) + Array(response.perScrape.readableBytesView) == Self.expectedBody(format))
    }

    @Test("The plain OpenMetrics body ends with exactly one # EOF line")
    func openMetricsTerminator() {
        let response = RenderedExposition(families: Self.families).response(format: .openMetrics, tail: [], gzip: false)
        let body = String(decoding: response.shared.flatMap(\.readableBytesView), as: UTF8.self) + String(buffer: response.perScrape)
        #expect(body.hasSuffix("b_gauge{l=\"v\"} 2\n# EOF\n"))
        #expect(body.components(separatedBy: "# EOF").count == 2)
    }

    @Test("Gzip: shared + perScrape inflate to the same body as the plain response", arguments: ExpositionFormat.allCases)
    func gzip(format: ExpositionFormat) throws {
        let response = RenderedExposition(families: Self.families).response(format: format, tail: Self.tail, gzip: true)
        #expect(response.isGzip)
        let member = response.shared.flatMap(\.readableBytesView) + Array(response.perScrape.readableBytesView)
        #expect(try gunzip(member) == Self.expectedBody(format))
    }

    @Test("Gzip with no families and no tail still inflates to the empty body")
    func gzipEmpty() throws {
        let response = RenderedExposition(families: []).response(format: .text, tail: [], gzip: true)
        #expect(response.isGzip)
        #expect(try gunzip(response.shared.flatMap(\.readableBytesView) + Array(response.perScrape.readableBytesView)) == [])
    }

    @Test("Two gzip responses for one format carry the same cached prefix; only the per-scrape part differs")
    func sharedAcrossScrapes() {
        let exposition = RenderedExposition(families: Self.families)
        let first = exposition.response(format: .text, tail: [], gzip: true)
        let second = exposition.response(format: .text, tail: Self.tail, gzip: true)
        #expect(first.shared == second.shared)
        #expect(first.perScrape != second.perScrape)
    }

    @Test("ExpositionStore holds nothing until published, then the latest publication")
    func store() {
        let store = ExpositionStore()
        #expect(store.latest == nil)
        store.publish(RenderedExposition(families: Self.families))
        store.publish(RenderedExposition(families: Self.tail))
        let latest = store.latest?.response(format: .text, tail: [], gzip: false)
        #expect(latest.map { $0.shared.flatMap(\.readableBytesView) } == ExpositionRenderer.render(Self.tail, format: .text))
    }
}
