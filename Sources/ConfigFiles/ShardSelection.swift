/// Which workspaces of one `--config.file` this process polls when several exporters share it
/// (`--shard.index N --shard.count M`), as kube-state-metrics' `--shard`/`--total-shards` do.
///
/// A workspace belongs to shard `fnv1a64(utf8(name)) % count`: FNV-1a, 64 bits (offset basis
/// 0xcbf29ce484222325, prime 0x100000001b3) over the UTF-8 bytes of the workspace's `name`.
/// The hash is fixed by this definition, not by the Swift runtime (whose `Hasher` is seeded per
/// process), so every replica and every release computes the same assignment, and a workspace
/// moves only when its name or the shard count changes.
public struct ShardSelection: Sendable, Equatable {
    public let index: Int
    public let count: Int

    /// The whole configuration: shard 0 of 1.
    public static let all = ShardSelection(uncheckedIndex: 0, count: 1)

    public struct InvalidShard: Error, Equatable, CustomStringConvertible {
        public let description: String
    }

    public init(index: Int, count: Int) throws(InvalidShard) {
        guard count >= 1 else {
            throw InvalidShard(description: "--shard.count must be at least 1 (got \(count))")
        }
        guard (0..<count).contains(index) else {
            throw InvalidShard(description: "--shard.index must be between 0 and --shard.count - 1 = \(count - 1) (got \(index))")
        }
        self.init(uncheckedIndex: index, count: count)
    }

    private init(uncheckedIndex index: Int, count: Int) {
        self.index = index
        self.count = count
    }

    /// Whether this shard polls the workspace called `name`.
    public func selects(_ name: String) -> Bool {
        Self.shard(of: name, count: count) == index
    }

    /// The shard (0..<count) that polls the workspace called `name`.
    public static func shard(of name: String, count: Int) -> Int {
        precondition(count >= 1, "a shard count is at least 1")
        return Int(fnv1a64(name) % UInt64(count))
    }

    /// FNV-1a, 64 bits, over the UTF-8 bytes of `text`.
    public static func fnv1a64(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        return hash
    }

    /// The ordinal of a StatefulSet pod from its name (`<statefulset>-<N>`): the digits after
    /// the last `-`. `nil` when the name does not end that way.
    public static func ordinal(fromPodName name: String) -> Int? {
        guard let dash = name.lastIndex(of: "-") else { return nil }
        let digits = name[name.index(after: dash)...]
        guard !digits.isEmpty, digits.count <= 9, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return Int(digits)
    }
}
