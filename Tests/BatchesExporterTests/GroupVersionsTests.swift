import Synchronization
import Testing

@testable import BatchesExporter

@Suite("Group versions")
struct GroupVersionsTests {
    /// One process-wide source, as the publisher's `makeVersion()` is.
    final class VersionSource: Sendable {
        private let next = Atomic<UInt64>(0)
        func make() -> UInt64 { next.wrappingAdd(1, ordering: .relaxed).newValue }
    }

    @Test("A group keeps its version while its counter stands still, and gets a new one when it moves")
    func followsTheCounter() {
        let source = VersionSource()
        var versions = GroupVersions()
        let first = versions.version(of: "lifecycle", local: 0, makeVersion: source.make)
        #expect(versions.version(of: "lifecycle", local: 0, makeVersion: source.make) == first)
        let second = versions.version(of: "lifecycle", local: 1, makeVersion: source.make)
        #expect(second != first)
        #expect(versions.version(of: "lifecycle", local: 1, makeVersion: source.make) == second)
        // Another key is tracked on its own.
        let other = versions.version(of: "derived", local: 1, makeVersion: source.make)
        #expect(other != second)
        #expect(versions.version(of: "lifecycle", local: 1, makeVersion: source.make) == second)
    }

    @Test("A replacing poller whose counters start again never repeats a version of the one it replaced")
    func replacedPollerNeverRepeats() {
        let source = VersionSource()
        var old = GroupVersions()
        var oldVersions: Set<UInt64> = []
        for local in 0...5 as ClosedRange<UInt64> { oldVersions.insert(old.version(of: "lifecycle", local: local, makeVersion: source.make)) }
        // The new poller's lifecycle counter walks through the same values with other content.
        var new = GroupVersions()
        for local in 0...5 as ClosedRange<UInt64> {
            let version = new.version(of: "lifecycle", local: local, makeVersion: source.make)
            #expect(!oldVersions.contains(version), "counter \(local) reused a version the cache holds other families for")
        }
    }
}
