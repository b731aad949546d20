import Basics
import BatchesExporter
import Foundation
import ManualClock
import NIOCore
import PrometheusExposition
import Synchronization
import Testing

@Suite("Publishing the exposition")
struct ExpositionPublisherTests {
    static func text(_ store: ExpositionStore) -> String {
        guard let body = store.latest?.response(format: .text, tail: [], gzip: false) else { return "" }
        return String(decoding: body.shared.flatMap(\.readableBytesView), as: UTF8.self)
    }

    static func family(_ value: Double) -> [MetricFamily] {
        [MetricFamily(name: "test_value", help: "A value.", type: .gauge, samples: [Sample([Label("workspace", "w")], value)])]
    }

    /// Waits until the publisher's own task has done a render the test made due: the clock
    /// has resumed it, and only the scheduling of that task is left, so this counts turns,
    /// not time.
    static func rendered(_ store: ExpositionStore, _ line: String) async -> Bool {
        for _ in 0..<1_000_000 {
            if text(store).contains(line) { return true }
            await Task.yield()
        }
        return text(store).contains(line)
    }

    @Test("Changes closer together than the render interval are rendered together, when the interval has passed", .timeLimit(.minutes(1)))
    func coalescing() async throws {
        let store = ExpositionStore()
        let clock = ManualClock()
        let publisher = ExpositionPublisher(
            store: store, constantFamilies: [], minimumRenderInterval: .seconds(5), now: { 0 }, clock: MonotonicClock(clock)
        )
        publisher.publish(workspace: "w", families: Self.family(1), lastSuccessAt: 0)
        #expect(Self.text(store).contains(#"test_value{workspace="w"} 1"#), "the first change renders at once")
        clock.advance(by: .seconds(2))
        publisher.publish(workspace: "w", families: Self.family(2), lastSuccessAt: 0)
        publisher.publish(workspace: "w", families: Self.family(3), lastSuccessAt: 0)
        #expect(Self.text(store).contains(#"test_value{workspace="w"} 1"#), "later ones wait for the interval")
        // The put-off render is the publisher's own service's work: structured, it ends with it.
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await publisher.run() }
            await clock.waitForSleepers()
            clock.advance(by: .milliseconds(2999))
            #expect(clock.sleeperCount == 1, "due 5 s after the last render, not 5 s after the change")
            #expect(Self.text(store).contains(#"test_value{workspace="w"} 1"#))
            clock.advance(by: .milliseconds(1))
            #expect(await Self.rendered(store, #"test_value{workspace="w"} 3"#), "the latest state is rendered")
            // That render starts a new interval: a change right after it waits again.
            publisher.publish(workspace: "w", families: Self.family(4), lastSuccessAt: 0)
            await clock.waitForSleepers()
            #expect(Self.text(store).contains(#"test_value{workspace="w"} 3"#))
            clock.advance(by: .seconds(5))
            #expect(await Self.rendered(store, #"test_value{workspace="w"} 4"#))
            group.cancelAll()
        }
    }

    @Test("Families of several workspaces are merged under one header each")
    func merging() {
        let store = ExpositionStore()
        let publisher = ExpositionPublisher(store: store, constantFamilies: [], minimumRenderInterval: .zero, now: { 0 })
        publisher.publish(workspace: "a", families: Self.family(1), lastSuccessAt: nil)
        publisher.publish(
            workspace: "b",
            families: [MetricFamily(name: "test_value", help: "A value.", type: .gauge, samples: [Sample([Label("workspace", "b")], 2)])],
            lastSuccessAt: nil
        )
        let text = Self.text(store)
        #expect(text.components(separatedBy: "# TYPE test_value gauge").count == 2)
        #expect(text.contains(#"test_value{workspace="b"} 2"#))
        publisher.remove(workspace: "b")
        #expect(!Self.text(store).contains(#"workspace="b""#))
    }
}

final class StartedFlag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .acquiring) }
    func set() { value.store(true, ordering: .releasing) }
}

/// Counts build calls per group key, from any thread.
final class GroupBuilds: Sendable {
    private let counts = Mutex<[String: Int]>([:])

    func group(_ key: String, version: UInt64, _ families: [MetricFamily]) -> FamilyGroup {
        FamilyGroup(key: key, version: version) { [self] in
            counts.withLock { $0[key, default: 0] += 1 }
            return families
        }
    }

    func take() -> [String: Int] {
        counts.withLock { counts in
            defer { counts = [:] }
            return counts
        }
    }
}

extension ExpositionPublisherTests {
    @Suite("Publishing groups of families")
    struct Groups {
        static func gauge(_ name: String, _ workspace: String, _ value: Double) -> MetricFamily {
            MetricFamily(name: name, help: "\(name) help.", type: .gauge, samples: [Sample([Label("workspace", workspace)], value)])
        }

        static func body(_ store: ExpositionStore, _ format: ExpositionFormat) -> String {
            guard let body = store.latest?.response(format: format, tail: [], gzip: false) else { return "" }
            return String(decoding: body.shared.flatMap(\.readableBytesView), as: UTF8.self) + String(buffer: body.perScrape)
        }

        /// The old publisher's output: constants, globals, then workspaces by name, merged by
        /// family name under the first header, rendered whole.
        static func reference(_ lists: [[MetricFamily]], _ format: ExpositionFormat) -> String {
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
            var bytes = ExpositionRenderer.render(order.compactMap { merged[$0] }, format: format)
            if format == .openMetrics { bytes += Array("# EOF\n".utf8) }
            return String(decoding: bytes, as: UTF8.self)
        }

        @Test("After one group's version changes only that group is built; an unchanged publish builds nothing")
        func onlyChangedGroupsAreBuilt() {
            let store = ExpositionStore()
            let publisher = ExpositionPublisher(store: store, constantFamilies: [], minimumRenderInterval: .zero, now: { 0 })
            let builds = GroupBuilds()
            func groups(health: UInt64, batches: UInt64, healthValue: Double = 1) -> [FamilyGroup] {
                [
                    builds.group("health", version: health, [Self.gauge("h", "w", healthValue)]),
                    builds.group("batches", version: batches, [Self.gauge("b", "w", 2)]),
                    builds.group("per_batch", version: 1, [Self.gauge("p", "w", 3)]),
                ]
            }
            publisher.publish(workspace: "w", groups: groups(health: 1, batches: 1), lastSuccessAt: 0)
            #expect(builds.take() == ["health": 1, "batches": 1, "per_batch": 1])

            publisher.publish(workspace: "w", groups: groups(health: 2, batches: 1, healthValue: 9), lastSuccessAt: 0)
            #expect(builds.take() == ["health": 1])
            #expect(Self.body(store, .text).contains(#"h{workspace="w"} 9"#))

            publisher.publish(workspace: "w", groups: groups(health: 2, batches: 1), lastSuccessAt: 0)
            #expect(builds.take().isEmpty)
            // Another workspace publishing does not rebuild this one's groups either.
            publisher.publish(workspace: "v", groups: [builds.group("health", version: 1, [Self.gauge("h", "v", 5)])], lastSuccessAt: 0)
            #expect(builds.take() == ["health": 1])
            #expect(Self.body(store, .text).contains(#"h{workspace="v"} 5"#))
            #expect(Self.body(store, .text).contains(#"h{workspace="w"} 9"#))
        }

        @Test("Constants, globals and several workspaces' groups give byte for byte the old merged render", arguments: ExpositionFormat.allCases)
        func matchesOldRender(format: ExpositionFormat) {
            let store = ExpositionStore()
            let constants = [MetricFamily(name: "build", help: "Build.", type: .info, samples: [Sample([Label("version", "1")], 1)])]
            let publisher = ExpositionPublisher(store: store, constantFamilies: constants, minimumRenderInterval: .zero, now: { 0 })
            let global = [Self.gauge("config_ok", "-", 1)]
            publisher.publishGlobal(global)
            var published: [String: [[MetricFamily]]] = [:]
            for (index, workspace) in ["zulu", "alpha", "mike"].enumerated() {
                let groups = [
                    [Self.gauge("h", workspace, Double(index)), Self.gauge("b", workspace, 1)],
                    [MetricFamily(name: "requests", help: "Requests.", type: .counter, samples: [Sample([Label("workspace", workspace)], 4)])],
                    [Self.gauge("b", workspace, 2)],
                ]
                published[workspace] = groups
                publisher.publish(
                    workspace: workspace,
                    groups: groups.enumerated().map { key, families in FamilyGroup(key: "g\(key)", version: 1) { families } },
                    lastSuccessAt: nil
                )
            }
            // The old wrapper still works next to groups.
            let wrapped = [Self.gauge("h", "bravo", 7)]
            publisher.publish(workspace: "bravo", families: wrapped, lastSuccessAt: nil)
            published["bravo"] = [wrapped]

            let expected = Self.reference([constants, global] + published.keys.sorted().flatMap { published[$0] ?? [] }, format)
            #expect(Self.body(store, format) == expected)
            #expect(expected.components(separatedBy: "# TYPE b gauge").count == 2)
        }

        @Test("A group missing from a later publish is dropped")
        func droppedGroup() {
            let store = ExpositionStore()
            let publisher = ExpositionPublisher(store: store, constantFamilies: [], minimumRenderInterval: .zero, now: { 0 })
            publisher.publish(
                workspace: "w",
                groups: [FamilyGroup(key: "a", version: 1) { [Self.gauge("a", "w", 1)] }, FamilyGroup(key: "b", version: 1) { [Self.gauge("b", "w", 1)] }],
                lastSuccessAt: nil
            )
            #expect(Self.body(store, .text).contains("# TYPE a gauge"))
            publisher.publish(workspace: "w", groups: [FamilyGroup(key: "b", version: 1) { [] }], lastSuccessAt: nil)
            #expect(!Self.body(store, .text).contains("# TYPE a gauge"))
            #expect(Self.body(store, .text).contains(#"b{workspace="w"} 1"#))
        }

        @Test("A workspace removed and published again is rebuilt, even with the versions it had before")
        func removedThenAddedAgain() {
            let store = ExpositionStore()
            let publisher = ExpositionPublisher(store: store, constantFamilies: [], minimumRenderInterval: .zero, now: { 0 })
            publisher.publish(workspace: "w", groups: [FamilyGroup(key: "g", version: 1) { [Self.gauge("x", "w", 1)] }], lastSuccessAt: nil)
            publisher.remove(workspace: "w")
            #expect(!Self.body(store, .text).contains("x{"))
            publisher.publish(workspace: "w", groups: [FamilyGroup(key: "g", version: 1) { [Self.gauge("x", "w", 2)] }], lastSuccessAt: nil)
            #expect(Self.body(store, .text).contains(#"x{workspace="w"} 2"#))
        }

        @Test("makeVersion never repeats")
        func versionsAreUnique() {
            let publisher = ExpositionPublisher(store: ExpositionStore(), constantFamilies: [], minimumRenderInterval: .zero, now: { 0 })
            let versions = (0..<1000).map { _ in publisher.makeVersion() }
            #expect(Set(versions).count == versions.count)
        }

        @Test("Readiness follows the rendering: ready once a rendered workspace has a successful poll")
        func readiness() {
            let publisher = ExpositionPublisher(store: ExpositionStore(), constantFamilies: [], minimumRenderInterval: .zero, now: { 10 })
            #expect(!publisher.hasSucceededOnce)
            publisher.publish(workspace: "w", groups: [], lastSuccessAt: nil)
            #expect(!publisher.hasSucceededOnce)
            publisher.publish(workspace: "w", groups: [], lastSuccessAt: 4)
            #expect(publisher.hasSucceededOnce)
            let age = publisher.perScrapeFamilies().first { $0.name == "anthropic_batches_exporter_snapshot_age_seconds" }
            #expect(age?.samples.map(\.value) == [6])
        }

        @Test("A scrape does not wait for a render in progress")
        func scrapesDoNotWaitOnRenders() async throws {
            let store = ExpositionStore()
            let publisher = ExpositionPublisher(store: store, constantFamilies: [], minimumRenderInterval: .zero, now: { 0 })
            publisher.publish(workspace: "w", families: [Self.gauge("x", "w", 1)], lastSuccessAt: 0)
            let buildStarted = StartedFlag()
            let release = DispatchSemaphore(value: 0)
            // A render blocked inside a build closure, on a thread of its own.
            let renderer = Thread {
                publisher.publish(
                    workspace: "w",
                    groups: [
                        FamilyGroup(key: "slow", version: 1) {
                            buildStarted.set()
                            release.wait()
                            return [Self.gauge("x", "w", 2)]
                        }
                    ],
                    lastSuccessAt: 0
                )
            }
            renderer.start()
            defer { release.signal() }
            let deadline = ContinuousClock.now + .seconds(60)
            while !buildStarted.isSet, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(5))
            }
            let started = buildStarted.isSet
            try #require(started)
            // Scrape from another thread, so a wrong implementation fails the test instead of hanging it.
            let scraped = DispatchSemaphore(value: 0)
            let scraper = Thread {
                _ = publisher.perScrapeFamilies()
                _ = store.latest?.response(format: .text, tail: [], gzip: true)
                scraped.signal()
            }
            scraper.start()
            #expect(scraped.wait(timeout: .now() + 60) == .success, "the scrape waited for the render")
            #expect(Self.body(store, .text).contains(#"x{workspace="w"} 1"#), "the render in progress is not visible yet")
        }
    }
}
