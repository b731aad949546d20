/// The kinds of metric this exporter exposes.
public enum MetricType: String, Sendable {
    case counter, gauge, histogram
    /// Labels describing a thing, value always 1. OpenMetrics has a type for it; text 0.0.4
    /// shows it as a gauge named `<name>_info`.
    case info
}

/// One metric family: its name, help text, type, and every series it has right now.
public struct MetricFamily: Sendable {
    /// The family name. For counters this is the name *without* `_total`, for info families
    /// the name without `_info`: the renderer adds the suffix to every sample, and to the
    /// family name too in text 0.0.4, as each format requires.
    public var name: String
    public var help: String
    public var type: MetricType
    /// OpenMetrics `# UNIT`; only rendered when the name ends in `_<unit>`, as the spec demands.
    public var unit: String?
    public var samples: [Sample]

    public init(name: String, help: String, type: MetricType, unit: String? = nil, samples: [Sample] = []) {
        self.name = name
        self.help = help
        self.type = type
        self.unit = unit
        self.samples = samples
    }
}

/// One line of a family: a suffix (`_bucket`, `_sum`, `_count`, or none), labels and a value.
public struct Sample: Sendable {
    public var suffix: String
    public var labels: [Label]
    public var value: Double

    public init(_ labels: [Label], _ value: Double, suffix: String = "") {
        self.suffix = suffix
        self.labels = labels
        self.value = value
    }
}

/// A label pair. Names are ours and fixed; values come from outside and are escaped on output.
public struct Label: Sendable, Equatable {
    public var name: String
    public var value: String

    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

extension MetricFamily {
    /// A histogram family from cumulative-ready bucket counts.
    /// - Parameter series: per label set, the observation counts per upper bound (not yet
    ///   cumulative), the sum and the count.
    public static func histogram(
        name: String,
        help: String,
        unit: String? = nil,
        bounds: [Double],
        series: [(labels: [Label], bucketCounts: [UInt64], sum: Double, count: UInt64)]
    ) -> MetricFamily {
        var samples: [Sample] = []
        for entry in series {
            var cumulative: UInt64 = 0
            for (bound, count) in zip(bounds, entry.bucketCounts) {
                cumulative += count
                samples.append(Sample(entry.labels + [Label("le", formatValue(bound))], Double(cumulative), suffix: "_bucket"))
            }
            samples.append(Sample(entry.labels + [Label("le", "+Inf")], Double(entry.count), suffix: "_bucket"))
            samples.append(Sample(entry.labels, entry.sum, suffix: "_sum"))
            samples.append(Sample(entry.labels, Double(entry.count), suffix: "_count"))
        }
        return MetricFamily(name: name, help: help, type: .histogram, unit: unit, samples: samples)
    }
}
