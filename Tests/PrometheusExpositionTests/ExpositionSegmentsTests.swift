import Foundation
import NIOCore
import PrometheusExposition
import Synchronization
import Testing

/// What the exporter did before segments: families with one name, from all sources in order,
/// joined under the first one's header, then rendered whole. The segment path must give the
/// same bytes.
func mergedReference(_ lists: [[MetricFamily]]) -> [MetricFamily] {
    var merged: [String: MetricFamily] = [:]
    var order: [String] = []
    for family in lists.joined() {
        if merged[family.name] == nil {
            merged[family.name] = family
            order.append(family.name)
        } else {
            merged[family.name]?.samples += family.samples
        }
    }
    return order.compactMap { merged[$0] }
}

/// The whole body a scrape gets: the cached part and the per-scrape part, inflated if gzip.
func fullBody(_ exposition: RenderedExposition, format: ExpositionFormat, tail: [MetricFamily], gzip: Bool) throws -> [UInt8] {
    let response = exposition.response(format: format, tail: tail, gzip: gzip)
    #expect(response.isGzip == gzip)
    let bytes = response.shared.flatMap(\.readableBytesView) + Array(response.perScrape.readableBytesView)
    return gzip ? try gunzip(bytes) : bytes
}

/// The old path's body for the same families and tail.
func referenceBody(_ families: [MetricFamily], format: ExpositionFormat, tail: [MetricFamily]) -> [UInt8] {
    var body = ExpositionRenderer.render(families, format: format) + ExpositionRenderer.render(tail, format: format)
    if format == .openMetrics { body += Array("# EOF\n".utf8) }
    return body
}

/// Counts build calls per group key, from any thread.
final class BuildCounter: Sendable {
    private let counts = Mutex<[String: Int]>([:])

    func group(_ key: String, version: UInt64, _ families: [MetricFamily]) -> FamilyGroup {
        FamilyGroup(key: key, version: version) { [self] in
            counts.withLock { $0[key, default: 0] += 1 }
            return families
        }
    }

    /// The counts so far, and starts counting afresh.
    func take() -> [String: Int] {
        counts.withLock { counts in
            defer { counts = [:] }
            return counts
        }
    }
}

/// A small, seeded generator so every failure names a seed that reproduces it.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Random families drawn from a fixed catalogue: each name always has the same help, type and
/// unit, as the exporter's families do, with awkward help texts, label values and numbers.
enum RandomFamilies {
    static let catalogue: [(name: String, help: String, type: MetricType, unit: String?)] = [
        ("anthropic_message_batches", "Batches by status.", .gauge, nil),
        ("anthropic_batches_exporter_api_requests", "Requests by \"code\" and\\kind.\nSecond line.", .counter, nil),
        ("anthropic_message_batch", "One series per batch.", .info, nil),
        ("anthropic_poll_duration_seconds", "Poll time.", .histogram, "seconds"),
        ("anthropic_last_success_timestamp_seconds", "When.", .gauge, "seconds"),
        ("anthropic_message_batch_requests", "Requests per batch, by result.", .gauge, nil),
        ("anthropic_zeta", "Sorted last.", .gauge, "bytes"),  // unit not in the name: no # UNIT
        ("a", "Sorted first.", .counter, nil),
    ]
    static let labelValues = ["x", "", "a\"b", "back\\slash", "new\nline", "ünïcødé", "🙂", "with space"]
    static let values: [Double] = [0, 1, -1, 0.5, 1e21, 1e-7, 1_724_179_044.100435, .nan, .infinity, -.infinity, 123_456_789]

    static func family(_ index: Int, source: String, using random: inout SplitMix) -> MetricFamily {
        let entry = catalogue[index]
        var family = MetricFamily(name: entry.name, help: entry.help, type: entry.type, unit: entry.unit)
        if entry.type == .histogram {
            let series = (0..<Int.random(in: 0...2, using: &random)).map { series in
                (
                    labels: [Label("workspace", source), Label("n", "\(series)")],
                    bucketCounts: [UInt64.random(in: 0...5, using: &random), UInt64.random(in: 0...5, using: &random)],
                    sum: values.randomElement(using: &random) ?? 0,
                    count: UInt64.random(in: 0...20, using: &random)
                )
            }
            family.samples = MetricFamily.histogram(name: entry.name, help: entry.help, bounds: [0.5, 5], series: series).samples
        } else {
            family.samples = (0..<Int.random(in: 0...4, using: &random)).map { _ in
                var labels = [Label("workspace", source)]
                if Bool.random(using: &random) { labels.append(Label("v", labelValues.randomElement(using: &random) ?? "")) }
                return Sample(labels, values.randomElement(using: &random) ?? 0)
            }
        }
        return family
    }

    static func families(source: String, using random: inout SplitMix) -> [MetricFamily] {
        (0..<Int.random(in: 0...4, using: &random)).map { _ in
            family(Int.random(in: 0..<catalogue.count, using: &random), source: source, using: &random)
        }
    }
}

@Suite("ExpositionSegments")
struct ExpositionSegmentsTests {
    /// A model of what was published: per source, its groups in order.
    struct ModelGroup {
        var key: String
        var version: UInt64
        var families: [MetricFamily]
    }

    static func checkEqual(_ segments: inout ExpositionSegments<Int>, model: [Int: [ModelGroup]], tail: [MetricFamily], context: String) throws {
        let exposition = segments.assemble()
        let lists: [[MetricFamily]] = model.keys.sorted().map { source in (model[source] ?? []).flatMap(\.families) }
        let merged = mergedReference(lists)
        for format in ExpositionFormat.allCases {
            let expected = referenceBody(merged, format: format, tail: tail)
            for gzip in [false, true] {
                let body = try fullBody(exposition, format: format, tail: tail, gzip: gzip)
                // Compared as text for a readable failure, and as bytes so nothing hides in decoding.
                #expect(String(decoding: body, as: UTF8.self) == String(decoding: expected, as: UTF8.self), "\(context), \(format), gzip \(gzip)")
                let identical = body == expected
                #expect(identical, "\(context), \(format), gzip \(gzip): bytes differ")
            }
        }
    }

    @Test(
        "Property: after any sequence of updates, the assembled bodies equal the old render of the merged families, plain and gunzipped",
        arguments: 0..<40
    )
    func goldenEquality(seed: UInt64) throws {
        var random = SplitMix(state: seed)
        var segments = ExpositionSegments<Int>()
        var model: [Int: [ModelGroup]] = [:]
        var nextVersion: UInt64 = 1
        for step in 0..<8 {
            // Change a few sources: new groups, new versions, dropped groups, removed sources.
            for _ in 0..<Int.random(in: 1...4, using: &random) {
                let source = Int.random(in: 0..<6, using: &random)
                if Int.random(in: 0..<6, using: &random) == 0 {
                    model[source] = nil
                    segments.remove(source: source)
                    continue
                }
                var groups = model[source] ?? []
                for index in groups.indices.reversed() {
                    switch Int.random(in: 0..<4, using: &random) {
                    case 0:
                        groups[index].version = nextVersion
                        groups[index].families = RandomFamilies.families(source: "s\(source)", using: &random)
                        nextVersion += 1
                    case 1: groups.remove(at: index)
                    default: break  // unchanged: same version, same families
                    }
                }
                if groups.count < 4, Bool.random(using: &random) {
                    let key = ["health", "batches", "per_batch", "extra"].first { key in !groups.contains { $0.key == key } } ?? "health"
                    groups.insert(
                        ModelGroup(key: key, version: nextVersion, families: RandomFamilies.families(source: "s\(source)", using: &random)),
                        at: Int.random(in: 0...groups.count, using: &random)
                    )
                    nextVersion += 1
                }
                model[source] = groups
                segments.update(
                    source: source,
                    groups: groups.map { group in
                        let families = group.families
                        return FamilyGroup(key: group.key, version: group.version) { families }
                    })
            }
            let tail = Bool.random(using: &random) ? [] : [RandomFamilies.family(4, source: "tail", using: &random)]
            try Self.checkEqual(&segments, model: model, tail: tail, context: "seed \(seed), step \(step)")
        }
    }

    @Test("Only groups whose version changed are built; an unchanged update builds nothing")
    func buildsOnlyChangedGroups() throws {
        let counter = BuildCounter()
        var segments = ExpositionSegments<String>()
        let health = [MetricFamily(name: "h", help: "H.", type: .gauge, samples: [Sample([], 1)])]
        let batches = [MetricFamily(name: "b", help: "B.", type: .gauge, samples: [Sample([], 2)])]
        let perBatch = [MetricFamily(name: "p", help: "P.", type: .info, samples: [Sample([Label("id", "x")], 1)])]

        segments.update(
            source: "w",
            groups: [
                counter.group("health", version: 1, health), counter.group("batches", version: 1, batches), counter.group("per_batch", version: 1, perBatch),
            ])
        #expect(counter.take() == ["health": 1, "batches": 1, "per_batch": 1])

        let changed = [MetricFamily(name: "h", help: "H.", type: .gauge, samples: [Sample([], 7)])]
        let built = segments.update(
            source: "w",
            groups: [counter.group("health", version: 2, changed), counter.group("batches", version: 1, []), counter.group("per_batch", version: 1, [])]
        )
        #expect(built == ["health"])
        #expect(counter.take() == ["health": 1])
        // The unchanged groups' closures (which would now give nothing) were not consulted.
        let text = String(decoding: try fullBody(segments.assemble(), format: .text, tail: [], gzip: false), as: UTF8.self)
        #expect(text == "# HELP b B.\n# TYPE b gauge\nb 2\n# HELP h H.\n# TYPE h gauge\nh 7\n# HELP p_info P.\n# TYPE p_info gauge\np_info{id=\"x\"} 1\n")

        let none = segments.update(
            source: "w",
            groups: [counter.group("health", version: 2, []), counter.group("batches", version: 1, []), counter.group("per_batch", version: 1, [])]
        )
        #expect(none.isEmpty)
        #expect(counter.take().isEmpty)
    }

    @Test("A group left out of a later update is dropped from the body")
    func droppedGroup() throws {
        var segments = ExpositionSegments<String>()
        let a = MetricFamily(name: "a", help: "A.", type: .gauge, samples: [Sample([], 1)])
        let b = MetricFamily(name: "b", help: "B.", type: .gauge, samples: [Sample([], 2)])
        segments.update(source: "w", groups: [FamilyGroup(key: "one", version: 1) { [a] }, FamilyGroup(key: "two", version: 1) { [b] }])
        segments.update(source: "w", groups: [FamilyGroup(key: "two", version: 1) { [] }])
        let text = String(decoding: try fullBody(segments.assemble(), format: .text, tail: [], gzip: false), as: UTF8.self)
        #expect(text == "# HELP b B.\n# TYPE b gauge\nb 2\n")
    }

    @Test("A new generation of a source rebuilds its groups even at the same versions")
    func generationRebuilds() throws {
        let counter = BuildCounter()
        var segments = ExpositionSegments<String>()
        let old = [MetricFamily(name: "x", help: "X.", type: .gauge, samples: [Sample([], 1)])]
        let new = [MetricFamily(name: "x", help: "X.", type: .gauge, samples: [Sample([], 2)])]
        segments.update(source: "w", generation: 1, groups: [counter.group("g", version: 1, old)])
        segments.update(source: "w", generation: 2, groups: [counter.group("g", version: 1, new)])
        #expect(counter.take() == ["g": 2])
        let text = String(decoding: try fullBody(segments.assemble(), format: .text, tail: [], gzip: false), as: UTF8.self)
        #expect(text == "# HELP x X.\n# TYPE x gauge\nx 2\n")
    }

    @Test("Families of one name from several sources share one header, samples in source order", arguments: ExpositionFormat.allCases)
    func oneHeaderPerFamily(format: ExpositionFormat) throws {
        var segments = ExpositionSegments<String>()
        for source in ["b", "a", "c"] {
            let family = MetricFamily(name: "requests", help: "R.", type: .counter, samples: [Sample([Label("workspace", source)], 1)])
            segments.update(source: source, groups: [FamilyGroup(key: "g", version: 1) { [family] }])
        }
        let text = String(decoding: try fullBody(segments.assemble(), format: format, tail: [], gzip: true), as: UTF8.self)
        let header = format == .text ? "# HELP requests_total R.\n# TYPE requests_total counter\n" : "# HELP requests R.\n# TYPE requests counter\n"
        let samples = #"requests_total{workspace="a"} 1"# + "\n" + #"requests_total{workspace="b"} 1"# + "\n" + #"requests_total{workspace="c"} 1"# + "\n"
        #expect(text == header + samples + (format == .openMetrics ? "# EOF\n" : ""))
    }

    @Test("Assembling twice in a row, with nothing changed, gives the same bytes (segments survive being re-pointed)")
    func reassembly() throws {
        var segments = ExpositionSegments<String>()
        let families = (0..<50).map { index in
            MetricFamily(name: "f\(index % 7)", help: "F.", type: .gauge, samples: [Sample([Label("i", "\(index)")], Double(index))])
        }
        segments.update(source: "w", groups: [FamilyGroup(key: "g", version: 1) { families }])
        let first = segments.assemble()
        let second = segments.assemble()
        for format in ExpositionFormat.allCases {
            for gzip in [false, true] {
                #expect(try fullBody(first, format: format, tail: [], gzip: gzip) == fullBody(second, format: format, tail: [], gzip: gzip))
            }
            #expect(try fullBody(second, format: format, tail: [], gzip: true) == referenceBody(mergedReference([families]), format: format, tail: []))
        }
    }

    @Test("The cached gzip body really is compressed")
    func compresses() {
        var segments = ExpositionSegments<String>()
        for workspace in 0..<20 {
            let families = (0..<5).map { family in
                MetricFamily(
                    name: "anthropic_family_\(family)", help: "Help.", type: .gauge,
                    samples: (0..<200).map { Sample([Label("workspace", "w\(workspace)"), Label("batch_id", "msgbatch_\($0)")], Double($0)) }
                )
            }
            segments.update(source: "w\(workspace)", groups: [FamilyGroup(key: "g", version: 1) { families }])
        }
        let response = segments.assemble().response(format: .text, tail: [], gzip: true)
        let plain = segments.assemble().response(format: .text, tail: [], gzip: false)
        #expect(response.shared.flatMap(\.readableBytesView).count < plain.shared.flatMap(\.readableBytesView).count / 4)
    }

    @Test("The OpenMetrics body holds no copy of the samples: its pieces are the text body's bytes but for the headers that differ")
    func openMetricsSharesTheTextBody() throws {
        var segments = SeveralWorkspaces.segments()
        let exposition = segments.assemble()
        let text = exposition.response(format: .text, tail: [], gzip: false).shared
        let openMetrics = exposition.response(format: .openMetrics, tail: [], gzip: false).shared
        try #require(text.count == 1)
        let textBase = text[0].withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        let textBytes = text[0].withUnsafeReadableBytes { textBase..<(textBase + UInt($0.count)) }
        var sharedBytes = 0
        var ownPieces: [String] = []
        for piece in openMetrics {
            let start = piece.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
            if textBytes.contains(start) {
                sharedBytes += piece.readableBytes
            } else {
                ownPieces.append(String(buffer: piece))
            }
        }
        // The families whose headers differ: the two info families, the API requests counter
        // and the two families with a unit; each is one piece of its own.
        #expect(ownPieces.count == 5, "\(ownPieces)")
        for piece in ownPieces {
            #expect(piece.split(separator: "\n").allSatisfy { $0.hasPrefix("# ") }, "only header lines: \(piece)")
        }
        let samples = String(buffer: text[0]).split(separator: "\n").filter { !$0.hasPrefix("#") }
        #expect(sharedBytes >= samples.reduce(0) { $0 + $1.utf8.count + 1 })
        // Runs between the differing headers, not a piece per segment.
        #expect(openMetrics.count <= 2 * ownPieces.count + 1)
    }

    @Test("An empty cache assembles to an empty body that still gunzips")
    func empty() throws {
        var segments = ExpositionSegments<String>()
        #expect(try fullBody(segments.assemble(), format: .text, tail: [], gzip: true) == [])
        #expect(try fullBody(segments.assemble(), format: .openMetrics, tail: [], gzip: false) == Array("# EOF\n".utf8))
    }
}

/// A realistic multi-workspace exposition for the external checkers.
enum SeveralWorkspaces {
    static func segments() -> ExpositionSegments<String> {
        var segments = ExpositionSegments<String>()
        segments.update(
            source: "",
            groups: [
                FamilyGroup(key: "constants", version: 0) {
                    [
                        MetricFamily(
                            name: "anthropic_batches_exporter_build", help: "Build information.", type: .info, samples: [Sample([Label("version", "1.0.0")], 1)]
                        )
                    ]
                }
            ])
        for workspace in ["default", "team \"b\"", "zeta\\ws"] {
            let label = Label("workspace", workspace)
            let health = [
                MetricFamily(
                    name: "anthropic_batches_exporter_poll_success", help: "1 if the last poll succeeded.", type: .gauge, samples: [Sample([label], 1)]),
                MetricFamily(
                    name: "anthropic_batches_exporter_api_requests", help: "API requests by code.", type: .counter,
                    samples: [Sample([label, Label("code", "200")], 12), Sample([label, Label("code", "429")], 1)]
                ),
                MetricFamily.histogram(
                    name: "anthropic_batches_exporter_poll_duration_seconds", help: "Poll duration.", unit: "seconds", bounds: [0.1, 1, 10],
                    series: [(labels: [label], bucketCounts: [3, 1, 0], sum: 1.75, count: 4)]
                ),
            ]
            let batches = [
                MetricFamily(
                    name: "anthropic_message_batches", help: "Batches by processing_status.", type: .gauge,
                    samples: ["in_progress", "canceling", "ended"].map { Sample([label, Label("processing_status", $0)], 3) }
                )
            ]
            let perBatch = [
                MetricFamily(
                    name: "anthropic_message_batch", help: "One series per batch.", type: .info,
                    samples: (0..<5).map { Sample([label, Label("batch_id", "msgbatch_\($0)"), Label("processing_status", "ended")], 1) }
                ),
                MetricFamily(
                    name: "anthropic_message_batch_created_timestamp_seconds", help: "created_at.", type: .gauge, unit: "seconds",
                    samples: (0..<5).map { Sample([label, Label("batch_id", "msgbatch_\($0)")], 1_724_179_044.5 + Double($0)) }
                ),
            ]
            segments.update(
                source: workspace,
                groups: [
                    FamilyGroup(key: "health", version: 1) { health },
                    FamilyGroup(key: "batches", version: 1) { batches },
                    FamilyGroup(key: "per_batch", version: 1) { perBatch },
                ])
        }
        return segments
    }

    static let tail = [
        MetricFamily(name: "process_open_fds", help: "Number of open file descriptors.", type: .gauge, samples: [Sample([], 12)]),
        MetricFamily(
            name: "anthropic_batches_exporter_snapshot_age_seconds", help: "Snapshot age.", type: .gauge, unit: "seconds",
            samples: [Sample([Label("workspace", "default")], 2.5)]
        ),
    ]
}

@Suite("ExpositionSegments against external parsers")
struct ExpositionSegmentsCheckerTests {
    @Test("promtool accepts an assembled text body of several workspaces, plain and gunzipped", .enabled(if: promtoolOnPath()))
    func promtool() throws {
        var segments = SeveralWorkspaces.segments()
        let exposition = segments.assemble()
        for gzip in [false, true] {
            let body = try fullBody(exposition, format: .text, tail: SeveralWorkspaces.tail, gzip: gzip)
            #expect(String(decoding: body, as: UTF8.self).contains(#"anthropic_message_batch_info{workspace="zeta\\ws""#))
            let result = try run(["promtool", "check", "metrics"], stdin: body)
            #expect(result.status == 0, "gzip \(gzip): \(String(decoding: result.stdout + result.stderr, as: UTF8.self))")
            #expect(String(decoding: result.stdout + result.stderr, as: UTF8.self) == "")
        }
    }

    @Test("prometheus_client's OpenMetrics parser accepts an assembled body of several workspaces, plain and gunzipped")
    func openMetricsParser() throws {
        let probe = try run(["python3", "-c", "import prometheus_client.openmetrics.parser"])
        try #require(probe.status == 0, "python3 cannot import prometheus_client; scripts/install-deps --test installs it")
        var segments = SeveralWorkspaces.segments()
        let exposition = segments.assemble()
        // Prints each family's name and sample count, so the check sees what was parsed.
        let parser = """
            import sys
            from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse
            for family in parse(sys.stdin.read()):
                print(family.name, family.type, len(family.samples))
            """
        for gzip in [false, true] {
            let body = try fullBody(exposition, format: .openMetrics, tail: SeveralWorkspaces.tail, gzip: gzip)
            let result = try run(["python3", "-c", parser], stdin: body)
            #expect(result.status == 0, "gzip \(gzip): \(String(decoding: result.stderr, as: UTF8.self))")
            let lines = String(decoding: result.stdout, as: UTF8.self).split(separator: "\n")
            #expect(lines.contains("anthropic_message_batch info 15"))
            #expect(lines.contains("anthropic_batches_exporter_api_requests counter 6"))
            #expect(lines.contains("anthropic_batches_exporter_poll_duration_seconds histogram 18"))
            #expect(lines.contains("anthropic_batches_exporter_build info 1"))
            #expect(lines.contains("process_open_fds gauge 1"))
        }
    }
}
