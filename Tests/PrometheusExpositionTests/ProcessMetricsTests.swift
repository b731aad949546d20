import Foundation
@testable import PrometheusExposition
import Synchronization
import Testing

@Suite("ProcessMetrics")
struct ProcessMetricsTests {
    static func family(_ name: String, in families: [MetricFamily]) throws -> MetricFamily {
        try #require(families.first { $0.name == name }, "missing \(name)")
    }

    static func value(_ family: MetricFamily) throws -> Double {
        try #require(family.samples.count == 1)
        #expect(family.samples[0].labels.isEmpty)
        #expect(family.samples[0].suffix == "")
        return family.samples[0].value
    }

    #if os(Linux)
    @Test("On Linux, the standard process_* families are present with plausible values")
    func linuxFamilies() throws {
        let families = ProcessMetrics.families()
        #expect(
            Set(families.map(\.name)) == [
                "process_cpu_seconds", "process_virtual_memory_bytes", "process_resident_memory_bytes",
                "process_start_time_seconds", "process_open_fds", "process_max_fds",
            ])

        let cpu = try Self.family("process_cpu_seconds", in: families)
        #expect(cpu.type == .counter)
        #expect(cpu.unit == "seconds")
        #expect(try Self.value(cpu) >= 0)

        let resident = try Self.family("process_resident_memory_bytes", in: families)
        #expect(resident.type == .gauge)
        #expect(try Self.value(resident) > 1_000_000)
        #expect(try Self.value(Self.family("process_virtual_memory_bytes", in: families)) >= Self.value(resident))

        let openFDs = try Self.value(Self.family("process_open_fds", in: families))
        #expect(openFDs >= 3)  // at least stdin, stdout, stderr
        let maxFDs = try Self.value(Self.family("process_max_fds", in: families))
        #expect(maxFDs >= openFDs)

        let start = try Self.value(Self.family("process_start_time_seconds", in: families))
        let now = Date().timeIntervalSince1970
        #expect(start <= now + 2)
        #expect(start > now - 86_400)
    }

    @Test("process_open_fds counts a descriptor the moment it is opened")
    func openFDsTrackDescriptors() throws {
        func openFDs() throws -> Double {
            try Self.value(Self.family("process_open_fds", in: ProcessMetrics.families()))
        }
        // Other tests run in parallel and open descriptors too, so retry a few times for a quiet moment.
        var observed: [Double] = []
        for _ in 0..<20 {
            let before = try openFDs()
            let handles = try (0..<8).map { _ in try FileHandle(forReadingFrom: URL(fileURLWithPath: "/proc/self/stat")) }
            let during = try openFDs()
            for handle in handles { try handle.close() }
            observed.append(during - before)
            if during - before == 8 { break }
        }
        #expect(observed.contains(8), "differences seen: \(observed)")
    }

    @Test("In OpenMetrics, process_cpu_seconds is a counter with a unit and _total samples")
    func cpuOpenMetrics() throws {
        let cpu = try Self.family("process_cpu_seconds", in: ProcessMetrics.families())
        let text = String(decoding: ExpositionRenderer.render([cpu], format: .openMetrics), as: UTF8.self)
        let lines = text.split(separator: "\n")
        #expect(lines.count == 4)
        #expect(lines[1] == "# TYPE process_cpu_seconds counter")
        #expect(lines[2] == "# UNIT process_cpu_seconds seconds")
        #expect(lines[3].hasPrefix("process_cpu_seconds_total "))
    }
    #endif

    @Test("statFields splits after the last ')', so a command name with spaces and ')' is skipped whole")
    func statFieldsCommandName() throws {
        let fields = try #require(ProcessMetrics.statFields("1234 (a b) c) S 1 2 3 4\n"))
        #expect(fields == ["S", "1", "2", "3", "4\n"])
    }

    @Test("statFields indexes fields from the state, as proc(5) numbers them minus 3")
    func statFieldsIndexes() throws {
        // Fields 1...24 of proc(5): pid, comm, state, ppid, ..., utime(14), stime(15), ..., starttime(22), vsize(23), rss(24).
        let numbers = (4...24).map(String.init).joined(separator: " ")
        let fields = try #require(ProcessMetrics.statFields("1 (my (weird) name) R " + numbers))
        #expect(fields.count == 22)
        #expect(fields[0] == "R")
        #expect(fields[11] == "14")  // utime
        #expect(fields[12] == "15")  // stime
        #expect(fields[19] == "22")  // starttime
        #expect(fields[20] == "23")  // vsize
        #expect(fields[21] == "24")  // rss
    }

    @Test("statFields gives nil when there is no command name")
    func statFieldsWithoutParenthesis() {
        #expect(ProcessMetrics.statFields("1234 S 1 2") == nil)
        #expect(ProcessMetrics.statFields("") == nil)
    }
}

@Suite("ProcessMetricsSampler")
struct ProcessMetricsSamplerTests {
    /// Counts readings and tells them apart by value.
    final class Reader: Sendable {
        let count = Mutex(0)
        func read() -> [MetricFamily] {
            let reading = count.withLock { count in
                count += 1
                return count
            }
            return [MetricFamily(name: "process_open_fds", help: "h", type: .gauge, samples: [Sample([], Double(reading))])]
        }
    }

    static func value(_ families: [MetricFamily]) -> Double? { families.first?.samples.first?.value }

    @Test("Scrapes within the reuse window share one reading; the first after it reads again")
    func sharesAReadingWithinTheWindow() {
        let reader = Reader()
        let sampler = ProcessMetricsSampler(maxAge: .seconds(1), read: { reader.read() })
        let start = ContinuousClock.now
        #expect(Self.value(sampler.families(at: start)) == 1)
        #expect(Self.value(sampler.families(at: start + .milliseconds(999))) == 1)
        #expect(reader.count.withLock { $0 } == 1)
        #expect(Self.value(sampler.families(at: start + .seconds(1))) == 2, "a reading a whole second old is not reused")
        #expect(Self.value(sampler.families(at: start + .milliseconds(1500))) == 2)
        #expect(Self.value(sampler.families(at: start + .seconds(3))) == 3)
        #expect(reader.count.withLock { $0 } == 3)
    }

    @Test("A scraper whose clock was read just before another's reading shares that reading")
    func earlierInstantShares() {
        let reader = Reader()
        let sampler = ProcessMetricsSampler(maxAge: .seconds(1), read: { reader.read() })
        let start = ContinuousClock.now
        _ = sampler.families(at: start)
        #expect(Self.value(sampler.families(at: start - .milliseconds(10))) == 1)
        #expect(reader.count.withLock { $0 } == 1)
    }

    @Test("The default reading is the process's own")
    func defaultReadsProcessMetrics() {
        let families = ProcessMetricsSampler().families(at: .now)
        #if os(Linux)
        #expect(families.contains { $0.name == "process_open_fds" })
        #endif
    }
}
