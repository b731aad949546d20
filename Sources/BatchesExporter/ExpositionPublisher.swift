import PrometheusExposition
import Synchronization

/// Combines what every workspace poller reports into one exposition and publishes it to the
/// store the listener reads. Each poller replaces its own families whole, so a scrape sees
/// each workspace's last complete poll, never a half-updated one.
public final class ExpositionPublisher: Sendable {
    private struct Source: Sendable {
        var families: [MetricFamily]
        var lastSuccessAt: Double?
    }

    private let sources = Mutex<[String: Source]>([:])
    /// Families about the process rather than a workspace (the config's reload status).
    private let globalFamilies = Mutex<[MetricFamily]>([])
    private let constantFamilies: [MetricFamily]
    private let store: ExpositionStore
    private let now: @Sendable () -> Double

    /// - Parameter constantFamilies: families fixed for the process's life (`build_info`).
    public init(store: ExpositionStore, constantFamilies: [MetricFamily], now: @escaping @Sendable () -> Double) {
        self.store = store
        self.constantFamilies = constantFamilies
        self.now = now
        store.publish(RenderedExposition(families: constantFamilies))
    }

    /// Replaces one workspace's families and re-renders. Rendering happens here, once per
    /// poll, and never on a scrape.
    public func publish(workspace: String, families: [MetricFamily], lastSuccessAt: Double?) {
        sources.withLock { sources in
            sources[workspace] = Source(families: families, lastSuccessAt: lastSuccessAt)
            render(sources)
        }
    }

    /// Drops a workspace that is no longer configured: its series leave the exposition.
    public func remove(workspace: String) {
        sources.withLock { sources in
            sources.removeValue(forKey: workspace)
            render(sources)
        }
    }

    /// Replaces the process-wide families that are not tied to a workspace.
    public func publishGlobal(_ families: [MetricFamily]) {
        globalFamilies.withLock { $0 = families }
        sources.withLock { render($0) }
    }

    /// Renders under the sources lock, so two workspaces finishing together cannot publish out
    /// of order; a render takes milliseconds and polls are seconds apart.
    private func render(_ sources: [String: Source]) {
        let global = globalFamilies.withLock { $0 }
        let merged = Self.merge([constantFamilies, global] + sources.keys.sorted().compactMap { sources[$0]?.families })
        store.publish(RenderedExposition(families: merged))
    }

    /// Whether any workspace has completed a successful poll.
    public var hasSucceededOnce: Bool {
        sources.withLock { $0.values.contains { $0.lastSuccessAt != nil } }
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
