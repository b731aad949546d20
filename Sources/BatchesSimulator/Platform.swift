#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// The few libm and libc calls the simulator needs, in one file so that no other file has to
/// choose between Glibc, Musl and Darwin.
enum Math {
    static func log(_ value: Double) -> Double {
        naturalLogarithm(value)
    }

    static func exp(_ value: Double) -> Double {
        naturalExponential(value)
    }
}

private func naturalLogarithm(_ value: Double) -> Double {
    log(value)
}

private func naturalExponential(_ value: Double) -> Double {
    exp(value)
}

enum WallClock {
    /// Seconds since the Unix epoch, from the real-time clock: the default start of simulated
    /// time, so that a fresh simulator's batches look recent.
    static func now() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1_000_000_000
    }
}

extension Duration {
    var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
