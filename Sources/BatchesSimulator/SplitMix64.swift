/// Steele, Lea and Flood's SplitMix64: tiny, fast and fully determined by its seed, so a seeded
/// simulator produces the same ids and the same lifecycles on every machine and every run.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) {
        state = seed
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension SplitMix64 {
    /// Uniform in `[0, 1)` with 53 bits, the full precision of a `Double`.
    mutating func unit() -> Double {
        Double(next() >> 11) * 0x1p-53
    }

    mutating func uniform(_ range: ClosedRange<Double>) -> Double {
        range.lowerBound + unit() * (range.upperBound - range.lowerBound)
    }

    /// Log-uniform: as many values between 10 and 100 as between 100 and 1000, which is how
    /// batch sizes and durations spread in practice.
    mutating func logUniform(_ range: ClosedRange<Double>) -> Double {
        Math.exp(uniform(Math.log(range.lowerBound)...Math.log(range.upperBound)))
    }

    /// Waiting time of a Poisson process with this mean.
    mutating func exponential(mean: Double) -> Double {
        -mean * Math.log(1 - unit())
    }

    mutating func chance(_ probability: Double) -> Bool {
        unit() < probability
    }

    private static let base62 = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".utf8)

    /// `prefix` followed by `count` base62 characters, the shape of the API's ids.
    mutating func identifier(prefix: String, count: Int = 24) -> String {
        var bytes = Array(prefix.utf8)
        bytes.reserveCapacity(bytes.count + count)
        for _ in 0..<count {
            bytes.append(Self.base62[Int(UInt64.random(in: 0..<62, using: &self))])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
