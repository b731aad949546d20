import PrometheusExposition
import Synchronization

/// A named group of one source's families, re-rendered only when `version` changes.
public struct FamilyGroup: Sendable {
    /// Unique within the source, e.g. `health`, `batches`, `per_batch`.
    public var key: String
    /// The caller changes it whenever the group's families change.
    public var version: UInt64
    /// Called only when `version` differs from the one last published for `key`.
    public var build: @Sendable () -> [MetricFamily]

    public init(key: String, version: UInt64, build: @escaping @Sendable () -> [MetricFamily]) {
        self.key = key
        self.version = version
        self.build = build
    }
}

/// Combines what every workspace poller reports into one exposition and publishes it to the
/// store the listener reads. Each poller replaces its own families whole, so a scrape sees
/// each workspace's last complete poll, never a half-updated one.
public final class ExpositionPublisher: Sendable {
    private struct Source: Sendable {
        var groups: [(key: String, version: UInt64, families: [MetricFamily])] = []
        var lastSuccessAt: Double?

        var families: [MetricFamily] { groups.flatMap(\.families) }
    }

    private let sources = Mutex<[String: Source]>([:])
    /// Families about the process rather than a workspace (the config's reload status).
    private let globalFamilies = Mutex<[MetricFamily]>([])
    private let constantFamilies: [MetricFamily]
    private let store: ExpositionStore
    private let now: @Sendable () -> Double
    /// Renders at most once per `minimumRenderInterval`: with many workspaces polling, each
    /// poll would otherwise re-render (and gzip) everyone's series, a cost that grows with the
    /// square of the number of workspaces. Changes arriving closer together are rendered
    /// together, at most this much later.
    private let minimumRenderInterval: Duration
    private let schedule = Mutex<RenderSchedule>(RenderSchedule())
    /// Whether what scrapes see now includes a successful poll; readiness follows the
    /// rendering, not the poll, so a ready exporter never serves an empty first scrape.
    private let renderedSuccess = Atomic<Bool>(false)

    private struct RenderSchedule {
        var lastRender: ContinuousClock.Instant?
        var deferredRenderPending = false
    }

    /// - Parameter constantFamilies: families fixed for the process's life (`build_info`).
    public init(
        store: ExpositionStore,
        constantFamilies: [MetricFamily],
        minimumRenderInterval: Duration = .seconds(1),
        now: @escaping @Sendable () -> Double
    ) {
        self.store = store
        self.constantFamilies = constantFamilies
        self.minimumRenderInterval = minimumRenderInterval
        self.now = now
        store.publish(RenderedExposition(families: constantFamilies))
    }

    /// Replaces one workspace's families and re-renders. Rendering happens here (once per
    /// poll, or once per second when polls come faster), and never on a scrape.
    public func publish(workspace: String, families: [MetricFamily], lastSuccessAt: Double?) {
        let version = UInt64.random(in: 0...UInt64.max)
        publish(workspace: workspace, groups: [FamilyGroup(key: "all", version: version) { families }], lastSuccessAt: lastSuccessAt)
    }

    /// Replaces one workspace's groups; a group whose version is unchanged keeps its families
    /// without calling `build`, and a group left out is dropped.
    public func publish(workspace: String, groups: [FamilyGroup], lastSuccessAt: Double?) {
        sources.withLock { sources in
            let old = sources[workspace]?.groups ?? []
            var source = Source(lastSuccessAt: lastSuccessAt)
            for group in groups {
                if let cached = old.first(where: { $0.key == group.key && $0.version == group.version }) {
                    source.groups.append(cached)
                } else {
                    source.groups.append((group.key, group.version, group.build()))
                }
            }
            sources[workspace] = source
        }
        requestRender()
    }

    /// Drops a workspace that is no longer configured: its series leave the exposition.
    public func remove(workspace: String) {
        _ = sources.withLock { $0.removeValue(forKey: workspace) }
        requestRender()
    }

    /// Replaces the process-wide families that are not tied to a workspace.
    public func publishGlobal(_ families: [MetricFamily]) {
        globalFamilies.withLock { $0 = families }
        requestRender()
    }

    /// Renders now, or schedules one render for when the interval has passed; a render
    /// already scheduled will pick up this change, since it renders the state it finds.
    private func requestRender() {
        let interval = minimumRenderInterval
        let delay = schedule.withLock { schedule -> Duration? in
            guard !schedule.deferredRenderPending else { return nil }
            let now = ContinuousClock.now
            if let last = schedule.lastRender, now - last < interval {
                schedule.deferredRenderPending = true
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
        Task { [self] in
            try? await Task.sleep(for: delay)
            schedule.withLock { schedule in
                schedule.deferredRenderPending = false
                schedule.lastRender = ContinuousClock.now
            }
            renderCurrent()
        }
    }

    private func renderCurrent() {
        sources.withLock { render($0) }
    }

    /// Renders under the sources lock, so two workspaces finishing together cannot publish out
    /// of order; a render takes milliseconds and polls are seconds apart.
    private func render(_ sources: [String: Source]) {
        let global = globalFamilies.withLock { $0 }
        let merged = Self.merge([constantFamilies, global] + sources.keys.sorted().compactMap { sources[$0]?.families })
        store.publish(RenderedExposition(families: merged))
        renderedSuccess.store(sources.values.contains { $0.lastSuccessAt != nil }, ordering: .releasing)
    }

    /// Whether the exposition served now includes a successful poll of some workspace.
    public var hasSucceededOnce: Bool {
        renderedSuccess.load(ordering: .acquiring)
    }

    /// Families whose values change between polls by the mere passing of time, rendered on
    /// every scrape: the age of each workspace's snapshot, and the process metrics.
    public func perScrapeFamilies() -> [MetricFamily] {
        let time = now()
        let ages = sources.withLock { sources in
            sources.keys.sorted().compactMap { name -> Sample? in
                guard let lastSuccess = sources[name]?.lastSuccessAt else { return nil }
                return Sample([Label("workspace", name)], max(0, time - lastSuccess))
            }
        }
        var families = ProcessMetrics.families()
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

    /// Families with the same name, from several sources, joined so each name appears once
    /// with all its samples together, as the exposition formats require.
    static func merge(_ lists: [[MetricFamily]]) -> [MetricFamily] {
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
}
