/// The one conversion of `Duration` to the numbers that logs, metrics, libcurl and the
/// wall-clock arithmetic need, so rounding is decided in one place.
extension Duration {
    /// Seconds as a `Double`, for metrics and arithmetic with wall-clock times.
    public var inSeconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }

    /// Whole milliseconds, truncated toward zero: for log fields such as `delay_ms`.
    public var inWholeMilliseconds: Int64 {
        components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    }

    /// Milliseconds as a `Double`, for printed timings.
    public var inMilliseconds: Double {
        inSeconds * 1000
    }

    /// Whole milliseconds rounded up and at least 1: for timeouts, where 0 would mean "none"
    /// to libcurl and a fraction must not shorten the wait.
    public var timeoutMilliseconds: Int {
        let whole = inWholeMilliseconds
        let rest = components.attoseconds % 1_000_000_000_000_000
        return max(1, Int(whole) + (rest > 0 ? 1 : 0))
    }

    /// Whole seconds rounded up and at least 1: for APIs that only take seconds.
    public var timeoutSeconds: Int {
        max(1, Int(components.seconds) + (components.attoseconds > 0 ? 1 : 0))
    }
}
