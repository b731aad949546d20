import BatchesAPI
import BatchesExporter
import FoundationEssentials
import Logging
import PrometheusExposition
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

private let identity = WorkspaceIdentity(name: "prod", baseURL: "https://api.anthropic.com", workspaceID: "wrkspc_1")

/// A state with every part filled: ended and active batches, an unknown status, a record kept
/// for an ended batch within retention, lifecycle counters with durations, corrections, results.
private func sampleState() -> SavedWorkspaceState {
    let context = LedgerContext(countEndedAfter: 1_500, now: 5_000, endedRetention: 86_400)
    var builder = LedgerBuilder()
    var ledger = BatchLedger()
    let batches = [
        batch("b5", .other("paused"), counts: RequestCounts(processing: 3), created: 4_000),
        batch("b4", .inProgress, counts: RequestCounts(processing: 7), created: 3_000),
        batch("b3", .canceling, counts: RequestCounts(processing: 2), created: 2_500, cancelInitiated: 2_600),
        batch("b2", .ended, counts: RequestCounts(succeeded: 5, errored: 1, expired: 2), created: 2_000, ended: 2_500),
        batch("b1", .ended, counts: RequestCounts(succeeded: 3, canceled: 4), created: 1_000, ended: 1_100),
    ]
    builder.add(batches, comparingWith: ledger, context: context)
    let adopted = ledger.adopt(builder, context: context)
    var lifecycle = BatchLifecycle()
    lifecycle.count(adopted.newlyEnded)
    return SavedWorkspaceState(
        ledger: ledger, lifecycle: lifecycle, corrections: [.deleted: 2, .drift: 1], countEndedAfter: 1_500,
        lastFullReadAt: 4_990, results: Data("{\"queue\":[1,2]}".utf8)
    )
}

private func temporaryDirectory() -> String {
    var template = Array("/tmp/statefile-tests-XXXXXX".utf8CString)
    return template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
}

private func removeDirectory(_ path: String) {
    if let directory = opendir(path) {
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if name != ".", name != ".." { unlink("\(path)/\(name)") }
        }
        closedir(directory)
    }
    rmdir(path)
}

@Suite("State files: round trip, refusal of bad files, atomic writes, save cadence")
struct StateFileTests {
    @Test("A saved state decodes to the same ledger, counters, corrections and results")
    func roundTrip() throws {
        let state = sampleState()
        let bytes = try StateFile.encode(state, identity: identity)
        let restored = try StateFile.decode(bytes, identity: identity)
        #expect(restored.ledger.entries == state.ledger.entries)
        #expect(restored.ledger.records == state.ledger.records)
        #expect(restored.ledger.totals == state.ledger.totals)
        #expect(restored.ledger.refreshedAt == state.ledger.refreshedAt)
        #expect(restored.ledger.walkFloor == state.ledger.walkFloor)
        #expect(restored.lifecycle == state.lifecycle)
        #expect(restored.lifecycle.endedBatches == 1)  // b2 ended after 1_500; b1 before
        #expect(restored.lifecycle.processingDurations.count == 1)
        #expect(restored.corrections == [.deleted: 2, .drift: 1])
        #expect(restored.countEndedAfter == 1_500)
        #expect(restored.lastFullReadAt == 4_990)
        #expect(restored.results == state.results)
        #expect(restored.ledger.records[batchKey("b5")]?.processingStatus == .other("paused"))
        // Equal states give equal files.
        #expect(try StateFile.encode(restored, identity: identity) == bytes)
    }

    @Test("The entries take 32 bytes each in the file")
    func entrySize() throws {
        var state = sampleState()
        let small = try StateFile.encode(state, identity: identity).count
        var builder = LedgerBuilder()
        let context = LedgerContext(countEndedAfter: 0, now: 10_000, endedRetention: nil)
        builder.add(
            (0..<1000).map { batch("e\($0)", .ended, counts: RequestCounts(succeeded: 1), ended: 2_000) }, comparingWith: BatchLedger(),
            context: context
        )
        var ledger = BatchLedger()
        _ = ledger.adopt(builder, context: context)
        state.ledger = ledger
        let large = try StateFile.encode(state, identity: identity)
        #expect(try StateFile.decode(large, identity: identity).ledger.count == 1000)
        // No records at all (all ended, no retention): JSON shrinks, entries grow by 1000 x 32.
        #expect(large.count < small + 1000 * 32)
        #expect(large.count > 1000 * 32)
    }

    @Test("A fresh state (no read yet, infinite refreshedAt) survives the round trip")
    func emptyState() throws {
        let state = SavedWorkspaceState(
            ledger: BatchLedger(), lifecycle: BatchLifecycle(), corrections: [:], countEndedAfter: 1_000, lastFullReadAt: nil
        )
        let restored = try StateFile.decode(try StateFile.encode(state, identity: identity), identity: identity)
        #expect(restored.ledger.count == 0)
        #expect(restored.ledger.refreshedAt == -.infinity)
        #expect(restored.lastFullReadAt == nil)
        #expect(restored.results == nil)
    }

    @Test("A file saved for another base URL, workspace id or name is refused")
    func otherIdentity() throws {
        let bytes = try StateFile.encode(sampleState(), identity: identity)
        for other in [
            WorkspaceIdentity(name: "prod", baseURL: "https://other.example", workspaceID: "wrkspc_1"),
            WorkspaceIdentity(name: "prod", baseURL: "https://api.anthropic.com", workspaceID: nil),
            WorkspaceIdentity(name: "staging", baseURL: "https://api.anthropic.com", workspaceID: "wrkspc_1"),
        ] {
            #expect(throws: StateFileError.self) { try StateFile.decode(bytes, identity: other) }
        }
        // The parts cannot shift into one another.
        #expect(
            WorkspaceIdentity(name: "b", baseURL: "a", workspaceID: nil).fingerprint
                != WorkspaceIdentity(name: "", baseURL: "a", workspaceID: "b").fingerprint
        )
    }

    @Test("Another format version is refused, naming the version")
    func otherVersion() throws {
        var bytes = try StateFile.encode(sampleState(), identity: identity)
        bytes[8] = 2
        let error = #expect(throws: StateFileError.self) { try StateFile.decode(bytes, identity: identity) }
        #expect(error?.description.contains("version 2") == true)
    }

    @Test("Every truncation of a valid file is refused")
    func truncations() throws {
        let bytes = try StateFile.encode(sampleState(), identity: identity)
        for length in 0..<bytes.count {
            #expect(throws: StateFileError.self) { try StateFile.decode(Array(bytes[..<length]), identity: identity) }
        }
        #expect(throws: StateFileError.self) { try StateFile.decode(bytes + [0], identity: identity) }
    }

    @Test("Flipped bytes anywhere in the file are refused, never trap")
    func byteFlips() throws {
        let bytes = try StateFile.encode(sampleState(), identity: identity)
        var generator = SystemRandomNumberGenerator()
        for position in 0..<bytes.count {
            var corrupt = bytes
            corrupt[position] ^= UInt8.random(in: 1...255, using: &generator)
            #expect(throws: StateFileError.self) { try StateFile.decode(corrupt, identity: identity) }
        }
        // Random garbage of assorted sizes, some with the right header.
        for size in [0, 7, 8, 12, 24, 40, 100, 4096] {
            var garbage = (0..<size).map { _ in UInt8.random(in: 0...255, using: &generator) }
            #expect(throws: StateFileError.self) { try StateFile.decode(garbage, identity: identity) }
            if size >= 12 {
                garbage.replaceSubrange(0..<12, with: Array("ABXSTATE".utf8) + [1, 0, 0, 0])
                #expect(throws: StateFileError.self) { try StateFile.decode(garbage, identity: identity) }
            }
        }
    }

    @Test("A well-formed file whose parts contradict each other is refused")
    func inconsistentParts() throws {
        // Two entries with one key: the checksum is right, the ledger is not.
        var state = sampleState()
        let twice = try StateFile.encode(state, identity: identity)
        let entryCountOffset = twice.count - 8 - state.ledger.count * 32 - 8
        var tampered = Array(twice[..<(twice.count - 8)])
        let first = entryCountOffset + 8
        tampered.replaceSubrange((first + 32)..<(first + 40), with: tampered[first..<(first + 8)])
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in tampered {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        withUnsafeBytes(of: hash.littleEndian) { tampered += $0 }
        let error = #expect(throws: StateFileError.self) { try StateFile.decode(tampered, identity: identity) }
        #expect(error?.description.contains("inconsistent") == true || error?.description.contains("disagrees") == true)
        state.corrections = [:]
        #expect(throws: Never.self) { try StateFile.decode(try StateFile.encode(state, identity: identity), identity: identity) }
    }

    @Test("File names are safe, distinct per workspace, and keep a readable prefix")
    func fileNames() {
        #expect(StateFile.path(directory: "/var/lib/x/", workspace: "prod").hasPrefix("/var/lib/x/prod-"))
        #expect(StateFile.path(directory: "/d", workspace: "prod").hasSuffix(".state"))
        let slash = StateFile.path(directory: "/d", workspace: "../a/b")
        #expect(!slash.dropFirst(3).contains("/"))
        #expect(slash.hasPrefix("/d/_._a_b-"))
        #expect(StateFile.path(directory: "/d", workspace: "a/b") != StateFile.path(directory: "/d", workspace: "a_b"))
        #expect(StateFile.path(directory: "/d", workspace: String(repeating: "x", count: 500)).count < 100)
    }

    @Test("An atomic write replaces the file and leaves no temporary behind; a load restores it")
    func atomicWriteAndLoad() throws {
        let directory = temporaryDirectory()
        defer { removeDirectory(directory) }
        try StateFileIO.prepareDirectory(directory + "/nested/deeper")
        let store = StateFileStore(directory: directory + "/nested/deeper", identity: identity, logger: Logger(label: "test"))
        guard case .missing = store.load() else {
            Issue.record("a missing file must load as missing")
            return
        }
        #expect(!store.restored)
        #expect(store.save(sampleState(), now: 100))
        #expect(store.save(sampleState(), now: 200))
        guard case .restored(let state) = store.load() else {
            Issue.record("a saved file must load")
            return
        }
        #expect(state.lifecycle == sampleState().lifecycle)
        #expect(store.restored)
        var status = stat()
        #expect(stat(directory + "/nested/deeper", &status) == 0)
        #expect(status.st_mode & 0o777 == 0o700)
        // Only the state file: the temporary went with the rename.
        var names: [String] = []
        if let handle = opendir(directory + "/nested/deeper") {
            while let entry = readdir(handle) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
                if name != ".", name != ".." { names.append(name) }
            }
            closedir(handle)
        }
        #expect(names == [String(store.path.split(separator: "/").last!)])
        removeDirectory(directory + "/nested/deeper")
        removeDirectory(directory + "/nested")
    }

    @Test("A truncated file on disk is refused with a reason; the store starts fresh")
    func truncatedOnDisk() throws {
        let directory = temporaryDirectory()
        defer { removeDirectory(directory) }
        let store = StateFileStore(directory: directory, identity: identity, logger: Logger(label: "test"))
        #expect(store.save(sampleState(), now: 0))
        let bytes = try #require(try StateFileIO.read(store.path))
        try StateFileIO.writeAtomically(Array(bytes.prefix(bytes.count / 2)), to: store.path)
        guard case .refused(let error) = store.load() else {
            Issue.record("a truncated file must be refused")
            return
        }
        #expect(error.description.contains("truncated"))
        #expect(!store.restored)
    }

    @Test("A failed save is counted, and the state is retried after the interval")
    func failedSave() {
        let store = StateFileStore(directory: "/nonexistent-dir-for-state-tests", identity: identity, logger: Logger(label: "test"))
        #expect(store.isDue(changed: true, now: 0))
        #expect(!store.save(sampleState(), now: 0))
        #expect(!store.save(sampleState(), now: 40))
        #expect(store.saveErrors == 2)
        #expect(!store.isDue(changed: false, now: 50))
        #expect(store.isDue(changed: false, now: 71))
        let families = store.families(workspace: "prod")
        #expect(families.map(\.name) == ["anthropic_batches_exporter_state_restored", "anthropic_batches_exporter_state_save_errors"])
        #expect(families.map { $0.samples.map(\.value) } == [[0], [2]])
    }

    @Test("An unwritable or non-directory storage path is refused at start")
    func unusableDirectory() {
        #expect(throws: StateFileError.self) { try StateFileIO.prepareDirectory("/proc/self/storage") }
        #expect(throws: StateFileError.self) { try StateFileIO.prepareDirectory("/etc/hostname") }
        #expect(throws: StateFileError.self) { try StateFileIO.prepareDirectory("") }
    }
}

/// `shouldSave` mutates, which `#expect` cannot call directly.
private func due(_ cadence: inout SaveCadence, _ changed: Bool, _ now: Double) -> Bool {
    cadence.shouldSave(changed: changed, now: now)
}

@Suite("Save cadence")
struct SaveCadenceTests {
    @Test("The first change after a quiet spell saves at once; later ones are coalesced")
    func coalesces() {
        var cadence = SaveCadence(minimumInterval: 30)
        #expect(!due(&cadence, false, 0))
        #expect(due(&cadence, true, 1))
        cadence.saved(at: 1, succeeded: true)
        #expect(!due(&cadence, true, 10))
        #expect(!due(&cadence, false, 20))
        // The change at 10 is still pending, so the first poll past the interval saves it.
        #expect(due(&cadence, false, 31))
        cadence.saved(at: 31, succeeded: true)
        #expect(!due(&cadence, false, 100))
        #expect(due(&cadence, true, 100))
    }

    @Test("A clock that jumps backwards does not stop saving")
    func backwardsClock() {
        var cadence = SaveCadence(minimumInterval: 30)
        cadence.saved(at: 1_000, succeeded: true)
        #expect(due(&cadence, true, 10))
    }
}

@Suite("Histogram restoring")
struct HistogramRestoringTests {
    @Test("Restored counts continue as if never interrupted")
    func continues() throws {
        var original = HistogramCounts(bounds: [1, 10])
        original.observe(0.5)
        original.observe(20)
        var restored = try #require(HistogramCounts(bounds: original.bounds, bucketCounts: original.bucketCounts, sum: original.sum, count: original.count))
        restored.observe(5)
        original.observe(5)
        #expect(restored == original)
    }

    @Test("Counts that cannot have come from observations are refused")
    func refuses() {
        #expect(HistogramCounts(bounds: [1, 10], bucketCounts: [1], sum: 0, count: 1) == nil)
        #expect(HistogramCounts(bounds: [10, 1], bucketCounts: [0, 0], sum: 0, count: 0) == nil)
        #expect(HistogramCounts(bounds: [1, 10], bucketCounts: [2, 0], sum: 0, count: 1) == nil)
        #expect(HistogramCounts(bounds: [1, 10], bucketCounts: [UInt64.max, 1], sum: 0, count: UInt64.max) == nil)
        #expect(HistogramCounts(bounds: [1, 10], bucketCounts: [0, 0], sum: .nan, count: 0) == nil)
    }
}
