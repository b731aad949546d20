import Basics
import PrometheusExposition
import ServiceLifecycle
import Synchronization

/// Combines what every workspace poller reports into one exposition and publishes it to the
/// store the listener reads. Each poller replaces its own groups of families whole, so a scrape
/// sees each workspace's last complete poll, never a half-updated one.
///
/// Rendering is incremental: each group is rendered (and compressed) only when its version
/// changes, and a render assembles the body from the cached pieces (``ExpositionSegments``).
/// A poll that changed only a workspace's small "health" group costs rendering that group and
/// copying the body, not re-rendering and re-compressing every workspace's series.
///
/// A render put off by `minimumRenderInterval` happens in ``run()``: run it as a service that
/// stops after the pollers that publish to it.
public final class ExpositionPublisher: Service, Sendable {
    /// Where a source's families go in the body: constants, then globals, then workspaces by
    /// name (the order the families of one name list their samples in).
    private enum SourceID: Hashable, Comparable, Sendable {
        case constants
        case global
        case workspace(String)
    }

    private struct PublishedSource: Sendable {
        /// Tells this incarnation of the workspace from one removed earlier under the same name.
        var generation: UInt64
        var groups: [FamilyGroup]
        var lastSuccessAt: Double?
    }

    /// What the pollers last published: tiny, held only to copy in or out. Publishes and
    /// scrapes (`perScrapeFamilies`) take only this lock, so neither waits on a render.
    private struct Published: Sendable {
        var workspaces: [String: PublishedSource] = [:]
        /// Families about the process rather than a workspace (the config's reload status).
        var global: FamilyGroup?
        var generations: UInt64 = 0
    }

    private let published = Mutex<Published>(Published())
    /// The rendered pieces. Held for a whole render, so renders run one at a time and each
    /// one publishes a state no older than the one before.
    private let segments = Mutex<ExpositionSegments<SourceID>>(ExpositionSegments())
    private let constantGroup: FamilyGroup
    private let versions = Atomic<UInt64>(0)
    private let store: ExpositionStore
    private let now: @Sendable () -> Double
    /// Times the render interval and the deferred render (the wall clock `now` is for ages).
    private let clock: MonotonicClock
    /// Renders at most once per `minimumRenderInterval`: with many workspaces polling, each
    /// poll would otherwise assemble (and copy) everyone's series, a cost that grows with the
    /// square of the number of workspaces. Changes arriving closer together are rendered
    /// together, at most this much later.
    private let minimumRenderInterval: Duration
    private let schedule = Mutex<RenderSchedule>(RenderSchedule())
    /// Wakes ``run()`` for a render put off to `RenderSchedule.deferredRenderDue`.
    private let deferredRenderRequested = WakeSignal()
    /// Whether what scrapes see now includes a successful poll; readiness follows the
    /// rendering, not the poll, so a ready exporter never serves an empty first scrape.
    private let renderedSuccess = Atomic<Bool>(false)
    /// The process metrics every scrape renders, read at most once a second.
    private let processMetrics = ProcessMetricsSampler()

    private struct RenderSchedule {
        var lastRender: ContinuousClock.Instant?
        /// When the render put off last is due; `nil` when none is waiting.
        var deferredRenderDue: ContinuousClock.Instant?
    }

    /// - Parameter constantFamilies: families fixed for the process's life (`build_info`).
    public init(
        store: ExpositionStore,
        constantFamilies: [MetricFamily],
        minimumRenderInterval: Duration = .seconds(1),
        now: @escaping @Sendable () -> Double,
        clock: MonotonicClock = .continuous
    ) {
        self.store = store
        self.clock = clock
        constantGroup = FamilyGroup(key: "constants", version: 0) { constantFamilies }
        self.minimumRenderInterval = minimumRenderInterval
        self.now = now
        renderCurrent()
    }

    /// A version never handed out before by this publisher, for ``FamilyGroup/version``.
    /// Using it (rather than a counter per poller) means a poller restarted for the same
    /// workspace cannot repeat a version the previous one used for different families.
    public func makeVersion() -> UInt64 {
        versions.wrappingAdd(1, ordering: .relaxed).newValue
    }

    /// Replaces one workspace's groups. A group whose version equals the one rendered last is
    /// not built again; a group missing from `groups` is dropped. Rendering happens here (once
    /// per poll, or once per second when polls come faster), and never on a scrape; the build
    /// closures run then, at most once per version.
    public func publish(workspace: String, groups: [FamilyGroup], lastSuccessAt: Double?) {
        published.withLock { published in
            let generation: UInt64
            if let existing = published.workspaces[workspace] {
                generation = existing.generation
            } else {
                published.generations += 1
                generation = published.generations
            }
            published.workspaces[workspace] = PublishedSource(generation: generation, groups: groups, lastSuccessAt: lastSuccessAt)
        }
        requestRender()
    }

    /// Replaces one workspace's families as a single group rendered on every call, as before
    /// there were groups.
    public func publish(workspace: String, families: [MetricFamily], lastSuccessAt: Double?) {
        publish(workspace: workspace, groups: [FamilyGroup(key: "families", version: makeVersion()) { families }], lastSuccessAt: lastSuccessAt)
    }

    /// Drops a workspace that is no longer configured: its series leave the exposition.
    public func remove(workspace: String) {
        _ = published.withLock { $0.workspaces.removeValue(forKey: workspace) }
        requestRender()
    }

    /// Replaces the process-wide families that are not tied to a workspace. They change
    /// rarely, so they are simply rendered again on every call.
    public func publishGlobal(_ families: [MetricFamily]) {
        let group = FamilyGroup(key: "global", version: makeVersion()) { families }
        published.withLock { $0.global = group }
        requestRender()
    }

    /// Renders now, or schedules one render for when the interval has passed; a render
    /// already scheduled will pick up this change, since it renders the state it finds.
    private func requestRender() {
        let interval = minimumRenderInterval
        let delay = schedule.withLock { schedule -> Duration? in
            guard schedule.deferredRenderDue == nil else { return nil }
            let now = clock.now
            if let last = schedule.lastRender, now - last < interval {
                schedule.deferredRenderDue = last + interval
                return interval - (now - last)
            }
            schedule.lastRender = now
            return .zero
        }
        guard let delay else { return }
        guard delay > .zero else {
            renderCurrent()
            return
        }
        deferredRenderRequested.signal()
    }

    /// Does the renders put off by the interval, each when it is due, until graceful shutdown
    /// or cancellation.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await self.deferredRenderRequested.wait()
                guard let due = self.schedule.withLock({ $0.deferredRenderDue }) else { continue }
                do {
                    try await self.clock.sleep(until: due)
                } catch {
                    return
                }
                self.schedule.withLock { schedule in
                    schedule.deferredRenderDue = nil
                    schedule.lastRender = self.clock.now
                }
                self.renderCurrent()
            }
        }
    }

    /// Brings the cached pieces up to date with what was published (building only groups
    /// whose version changed), assembles the body and publishes it.
    private func renderCurrent() {
        segments.withLock { segments in
            let current = published.withLock { $0 }
            segments.update(source: .constants, groups: [constantGroup])
            segments.update(source: .global, groups: current.global.map { [$0] } ?? [])
            var present: Set<SourceID> = [.constants, .global]
            for (name, source) in current.workspaces {
                segments.update(source: .workspace(name), generation: source.generation, groups: source.groups)
                present.insert(.workspace(name))
            }
            segments.retainSources(present)
            store.publish(segments.assemble())
            renderedSuccess.store(current.workspaces.values.contains { $0.lastSuccessAt != nil }, ordering: .releasing)
        }
    }

    /// Whether the exposition served now includes a successful poll of some workspace.
    public var hasSucceededOnce: Bool {
        renderedSuccess.load(ordering: .acquiring)
    }

    /// Families whose values change between polls by the mere passing of time, rendered on
    /// every scrape: the age of each workspace's snapshot, and the process metrics (read at
    /// most once a second, see ``ProcessMetricsSampler``).
    public func perScrapeFamilies() -> [MetricFamily] {
        let time = now()
        let ages = published.withLock { published in
            published.workspaces.keys.sorted().compactMap { name -> Sample? in
                guard let lastSuccess = published.workspaces[name]?.lastSuccessAt else { return nil }
                return Sample([Label("workspace", name)], max(0, time - lastSuccess))
            }
        }
        var families = processMetrics.families(at: clock.now)
        if !ages.isEmpty {
            families.append(
                MetricFamily(
                    name: "anthropic_batches_exporter_snapshot_age_seconds",
                    help: "Seconds since the snapshot currently served was taken. Grows while polls fail.",
                    type: .gauge, unit: "seconds", samples: ages
                )
            )
        }
        return families
    }
}
