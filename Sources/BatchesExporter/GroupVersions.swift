/// Turns a poller's own change counters into ``FamilyGroup`` versions that never repeat across
/// pollers of the same workspace.
///
/// A poller knows when a group changed by counters of its own (the ledger's version, the
/// lifecycle counter) that start again at zero in a new poller. When a reload replaces a
/// workspace's poller, the publisher keeps that workspace's rendered segments, so a new
/// poller whose counter came back to a value the old one used would have its different families
/// mistaken for the cached ones and never rendered. Each change of a counter therefore takes a
/// fresh version from the publisher (``ExpositionPublisher/makeVersion()``), unique for the
/// process's life.
struct GroupVersions: Sendable {
    private struct Published: Sendable {
        var local: UInt64
        var version: UInt64
    }

    private var published: [String: Published] = [:]

    /// The version to publish group `key` under while its own counter reads `local`: the same
    /// as last time if `local` did not move, else a new one from `makeVersion`.
    mutating func version(of key: String, local: UInt64, makeVersion: () -> UInt64) -> UInt64 {
        if let last = published[key], last.local == local { return last.version }
        let version = makeVersion()
        published[key] = Published(local: local, version: version)
        return version
    }
}
