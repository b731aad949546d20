#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// The standard `process_*` families every Prometheus exporter offers, read from /proc on
/// each call (scrapes share a reading through ``ProcessMetricsSampler``). On a system without
/// /proc the families are simply absent.
public enum ProcessMetrics {
    public static func families() -> [MetricFamily] {
        var families: [MetricFamily] = []
        let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))
        let pageSize = Double(sysconf(Int32(_SC_PAGESIZE)))

        if let stat = readFile("/proc/self/stat"), let fields = statFields(stat), fields.count > 21,
            let userTicks = Double(fields[11]), let systemTicks = Double(fields[12]),
            let startTicks = Double(fields[19]), let virtualBytes = Double(fields[20]), let residentPages = Double(fields[21])
        {
            families.append(
                MetricFamily(
                    name: "process_cpu_seconds", help: "Total user and system CPU time spent in seconds.",
                    type: .counter, unit: "seconds", samples: [Sample([], (userTicks + systemTicks) / ticksPerSecond)]
                )
            )
            families.append(
                MetricFamily(
                    name: "process_virtual_memory_bytes", help: "Virtual memory size in bytes.",
                    type: .gauge, unit: "bytes", samples: [Sample([], virtualBytes)]
                )
            )
            families.append(
                MetricFamily(
                    name: "process_resident_memory_bytes", help: "Resident memory size in bytes.",
                    type: .gauge, unit: "bytes", samples: [Sample([], residentPages * pageSize)]
                )
            )
            if let bootTime = Self.bootTime {
                families.append(
                    MetricFamily(
                        name: "process_start_time_seconds", help: "Start time of the process since unix epoch in seconds.",
                        type: .gauge, unit: "seconds", samples: [Sample([], bootTime + startTicks / ticksPerSecond)]
                    )
                )
            }
        }
        if let openFileDescriptors = countOpenFileDescriptors() {
            families.append(
                MetricFamily(
                    name: "process_open_fds", help: "Number of open file descriptors.",
                    type: .gauge, samples: [Sample([], Double(openFileDescriptors))]
                )
            )
        }
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 {
            families.append(
                MetricFamily(
                    name: "process_max_fds", help: "Maximum number of open file descriptors.",
                    type: .gauge, samples: [Sample([], Double(limit.rlim_cur))]
                )
            )
        }
        return families
    }

    /// Fields of /proc/self/stat after the command name, which may itself hold spaces and
    /// parentheses: split after the *last* ')'. Index 0 is the state (field 3 in proc(5)).
    static func statFields(_ stat: String) -> [Substring]? {
        guard let close = stat.lastIndex(of: ")") else { return nil }
        return stat[stat.index(after: close)...].split(separator: " ")
    }

    /// Read once: it never changes while the system runs, and /proc/stat, which the kernel
    /// builds from every CPU's counters on each read, is not worth reading per scrape.
    private static let bootTime: Double? = readBootTime()

    private static func readBootTime() -> Double? {
        guard let stat = readFile("/proc/stat") else { return nil }
        for line in stat.split(separator: "\n") where line.hasPrefix("btime ") {
            return Double(line.dropFirst(6))
        }
        return nil
    }

    private static func countOpenFileDescriptors() -> Int? {
        guard let directory = opendir("/proc/self/fd") else { return nil }
        defer { closedir(directory) }
        var count = 0
        while let entry = readdir(directory) {
            let isDotEntry = withUnsafeBytes(of: entry.pointee.d_name) { name in
                name[0] == UInt8(ascii: ".")
            }
            if !isDotEntry { count += 1 }
        }
        // The directory stream itself holds one descriptor while we count.
        return count - 1
    }

    private static func readFile(_ path: String) -> String? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            guard count > 0 else { break }
            bytes.append(contentsOf: chunk[0..<count])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// ``ProcessMetrics`` read at most once per `maxAge`, the reading shared in between.
///
/// Reading them costs a scrape more than everything else it does: /proc/self/stat is formatted
/// by the kernel on each read and counting open descriptors walks /proc/self/fd, which grows
/// with every scraper's connection. Under many concurrent scrapers that made up most of a
/// scrape's CPU. A reading at most a second old differs from a fresh one by less than any
/// scrape interval can show, and one Prometheus scraping at its interval always gets a fresh one.
public final class ProcessMetricsSampler: Sendable {
    private let maxAge: Duration
    private let read: @Sendable () -> [MetricFamily]
    private let last = Mutex<(at: ContinuousClock.Instant, families: [MetricFamily])?>(nil)

    /// - Parameter read: the reading to share; ``ProcessMetrics/families()`` but in tests.
    public init(maxAge: Duration = .seconds(1), read: @escaping @Sendable () -> [MetricFamily] = { ProcessMetrics.families() }) {
        self.maxAge = maxAge
        self.read = read
    }

    /// The last reading if it was taken less than `maxAge` before `now` (or after it: another
    /// scraper's, which read its clock later), else a new one. Readers that find it stale
    /// together wait for the one who reads (microseconds).
    public func families(at now: ContinuousClock.Instant) -> [MetricFamily] {
        last.withLock { last in
            if let last, now - last.at < maxAge { return last.families }
            let families = read()
            last = (now, families)
            return families
        }
    }
}
