import ConfigFiles
import Testing

@Suite("Shard selection")
struct ShardSelectionTests {
    @Test(
        "FNV-1a 64 gives the published test vectors, so the assignment is the documented one",
        arguments: [
            ("", 0xcbf2_9ce4_8422_2325 as UInt64),
            ("a", 0xaf63_dc4c_8601_ec8c),
            ("foobar", 0x8594_4171_f739_67e8),
        ])
    func fnvVectors(text: String, hash: UInt64) {
        #expect(ShardSelection.fnv1a64(text) == hash)
    }

    @Test(
        "Workspace names hash over their UTF-8 bytes to fixed shards",
        arguments: [
            ("prod", 3, 0), ("staging", 3, 2), ("research", 3, 1), ("prod-eu", 3, 0), ("evals", 3, 1),
            ("wörkspace", 3, 2), ("ws-1", 3, 1), ("ws-5", 3, 0), ("ws-8", 3, 2),
        ])
    func knownAssignments(name: String, count: Int, shard: Int) {
        #expect(ShardSelection.shard(of: name, count: count) == shard)
    }

    @Test("Every name belongs to exactly one of the shards, whatever the count")
    func partition() throws {
        let names = (0..<500).map { "workspace-\($0)" }
        for count in 1...7 {
            let shards = try (0..<count).map { try ShardSelection(index: $0, count: count) }
            for name in names {
                #expect(shards.filter { $0.selects(name) }.count == 1, "\(name) with \(count) shards")
            }
            // No shard is left empty by 500 names: the hash spreads them.
            #expect(shards.allSatisfy { shard in names.contains(where: shard.selects) })
        }
    }

    @Test("One shard of one selects everything")
    func single() {
        #expect(["", "a", "prod", "ünïcode"].allSatisfy(ShardSelection.all.selects))
        #expect(ShardSelection.all.index == 0 && ShardSelection.all.count == 1)
    }

    @Test(
        "An index outside 0..<count or a count below 1 is refused with the flag's name",
        arguments: [
            (0, 0, "--shard.count must be at least 1"),
            (3, 3, "--shard.index must be between 0 and --shard.count - 1 = 2 (got 3)"),
            (-1, 2, "--shard.index must be between 0 and --shard.count - 1 = 1 (got -1)"),
        ])
    func invalid(index: Int, count: Int, message: String) {
        #expect(throws: ShardSelection.InvalidShard.self) { try ShardSelection(index: index, count: count) }
        do {
            _ = try ShardSelection(index: index, count: count)
        } catch {
            #expect(error.description.contains(message), "\(error)")
        }
    }

    @Test(
        "A StatefulSet pod's ordinal is the number after its last dash",
        arguments: [
            ("anthropic-batches-exporter-0", 0 as Int?), ("exporter-12", 12), ("a-b-c-7", 7),
            ("exporter", nil), ("exporter-", nil), ("exporter-1a", nil), ("exporter-x", nil), ("exporter-١", nil),
            ("exporter-99999999999999999999", nil),
        ])
    func ordinals(name: String, ordinal: Int?) {
        #expect(ShardSelection.ordinal(fromPodName: name) == ordinal)
    }
}
