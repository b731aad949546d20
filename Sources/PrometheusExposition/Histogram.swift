/// Observations counted into fixed buckets, as a value: the exporter keeps one per workspace
/// and copies it into each snapshot.
public struct HistogramCounts: Sendable, Equatable {
    public let bounds: [Double]
    /// Non-cumulative counts per bound; observations above the last bound are only in `count`.
    public private(set) var bucketCounts: [UInt64]
    public private(set) var sum: Double = 0
    public private(set) var count: UInt64 = 0

    public init(bounds: [Double]) {
        self.bounds = bounds.sorted()
        bucketCounts = Array(repeating: 0, count: bounds.count)
    }

    public mutating func observe(_ value: Double) {
        guard !value.isNaN else { return }
        if let index = bounds.firstIndex(where: { value <= $0 }) {
            bucketCounts[index] += 1
        }
        sum += value
        count += 1
    }
}
