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

    /// Counts restored from a saved state. Returns `nil` when they cannot have come from
    /// ``observe(_:)``: bounds not sorted or not finite, a bucket list of another length, buckets
    /// adding up to more than `count`, or a sum that is not a number.
    public init?(bounds: [Double], bucketCounts: [UInt64], sum: Double, count: UInt64) {
        guard bounds.count == bucketCounts.count, bounds == bounds.sorted(), bounds.allSatisfy(\.isFinite), !sum.isNaN else {
            return nil
        }
        var total: UInt64 = 0
        for bucket in bucketCounts {
            let (added, overflow) = total.addingReportingOverflow(bucket)
            guard !overflow else { return nil }
            total = added
        }
        guard total <= count else { return nil }
        self.bounds = bounds
        self.bucketCounts = bucketCounts
        self.sum = sum
        self.count = count
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
