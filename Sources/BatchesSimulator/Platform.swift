#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The few libm and libc calls the simulator needs, in one file so that no other file has to
/// choose between Glibc and Darwin.
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
