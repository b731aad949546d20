import Foundation

/// The simulator binary, started on an ephemeral loopback port, with its control endpoints.
final class SimulatorProcess {
    let process: ChildProcess
    let port: Int
    let apiKey: String
    /// Set when the simulator serves HTTPS: control calls then go through curl, trusting it.
    let caCertificate: String?

    init(
        batches: Int = 0,
        active: Int = 0,
        apiKey: String = "sk-ant-test-\(UInt32.random(in: 0...UInt32.max))",
        extraArguments: [String] = [],
        caCertificate: String? = nil
    ) async throws {
        self.apiKey = apiKey
        self.caCertificate = caCertificate
        process = try ChildProcess(
            Binaries.simulator,
            arguments: ["--batches", "\(batches)", "--active", "\(active)", "--time", "manual", "--no-dynamics"] + extraArguments,
            environment: ["SIMULATOR_API_KEY": apiKey],
            name: "batches-simulator"
        )
        let line = try await process.waitForLine(containing: "listening on ")
        guard let port = line.split(separator: ":").last.flatMap({ Int($0.trimmingCharacters(in: .whitespaces)) }) else {
            throw TestFailure("cannot read the simulator's port from \(line)")
        }
        self.port = port
    }

    var baseURL: String { "http://127.0.0.1:\(port)" }

    /// Calls a control endpoint and returns its decoded JSON.
    @discardableResult
    func control(_ method: String, _ path: String) throws -> Any {
        if let caCertificate {
            let result = try runTool(
                "curl", ["-s", "--fail", "--cacert", caCertificate, "-X", method, "https://127.0.0.1:\(port)\(path)"], input: []
            )
            guard result.status == 0 else { throw TestFailure("\(method) \(path) over HTTPS failed: \(result.output)") }
            return try JSONSerialization.jsonObject(with: Data(result.stdout), options: [.fragmentsAllowed])
        }
        let response = try RawHTTP.request(method, port: port, path: path)
        guard (200..<300).contains(response.status) else {
            throw TestFailure("\(method) \(path) answered \(response.status): \(response.text)")
        }
        return try JSONSerialization.jsonObject(with: Data(response.body), options: [.fragmentsAllowed])
    }

    /// The simulator's ground truth: batches by status and requests by result.
    func truth() throws -> (byStatus: [String: Int], requests: [String: Int], batches: Int) {
        guard let truth = try control("GET", "/_sim/truth") as? [String: Any],
            let byStatus = truth["by_status"] as? [String: Int],
            let requests = truth["requests"] as? [String: Int],
            let batches = truth["batches"] as? Int
        else { throw TestFailure("unexpected /_sim/truth shape") }
        return (byStatus, requests, batches)
    }

    /// The API requests the simulator received, oldest first.
    func requestLog() throws -> [[String: Any]] {
        let log = try control("GET", "/_sim/requests")
        if let entries = log as? [[String: Any]] { return entries }
        if let object = log as? [String: Any], let entries = object["requests"] as? [[String: Any]] { return entries }
        throw TestFailure("unexpected /_sim/requests shape: \(log)")
    }

    func enqueueFault(_ query: String) throws {
        try control("POST", "/_sim/faults?\(query)")
    }

    func terminate() { process.terminate() }
}

/// The exporter binary on an ephemeral loopback port.
final class ExporterProcess {
    let process: ChildProcess
    let port: Int

    init(arguments: [String], environment: [String: String]) async throws {
        process = try ChildProcess(
            Binaries.exporter,
            arguments: ["--web.listen-address", "127.0.0.1:0"] + arguments,
            environment: environment,
            name: "anthropic-batches-exporter"
        )
        let line = try await process.waitForLine(containing: "msg=Listening")
        guard let address = line.split(separator: " ").first(where: { $0.hasPrefix("address=") }),
            let port = address.split(separator: ":").last.flatMap({ Int($0) })
        else { throw TestFailure("cannot read the exporter's port from \(line)") }
        self.port = port
    }

    /// An exporter polling `simulator` with the simulator's key.
    convenience init(polling simulator: SimulatorProcess, key: String? = nil, arguments: [String] = []) async throws {
        try await self.init(
            // No request budget unless a test sets one: tests poll far faster than production.
            arguments: ["--api-base-url", simulator.baseURL, "--poll-interval", "300ms", "--log.level", "debug", "--api.max-requests-per-minute", "0"]
                + arguments,
            environment: ["ANTHROPIC_API_KEY": key ?? simulator.apiKey]
        )
    }

    func scrape(headers: [(String, String)] = []) throws -> Scrape {
        let response = try RawHTTP.request(port: port, path: "/metrics", headers: headers)
        guard response.status == 200 else { throw TestFailure("/metrics answered \(response.status)") }
        return Scrape(text: response.text)
    }

    /// Waits until the exporter has finished at least `count` more polls than now.
    func waitForPolls(_ count: Int = 1, timeout: Duration = .seconds(30)) async throws {
        let start = try pollCount()
        try await eventually(timeout: timeout, "\(count) more polls") { try pollCount() >= start + Double(count) }
    }

    func pollCount() throws -> Double {
        try scrape()[#"anthropic_batches_exporter_poll_duration_seconds_count{workspace="default"}"#] ?? 0
    }

    func stop() async -> Int32 { await process.stop() }
    func terminate() { process.terminate() }
}
