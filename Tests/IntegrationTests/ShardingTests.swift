import Foundation
import Testing

/// Several exporters sharing one --config.file, each polling its shard of it.
@Suite("Sharding", .serialized)
struct ShardingTests {
    /// FNV-1a 64 mod count, written out again here so the test checks the binary against the
    /// documented assignment rather than against itself.
    static func documentedShard(of name: String, count: Int) -> Int {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in name.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return Int(hash % UInt64(count))
    }

    static func workspaces(_ scrape: Scrape) -> Set<String> {
        Set(
            scrape.family("anthropic_batches_exporter_snapshot_batches").keys.compactMap { series in
                series.firstRange(of: #"workspace=""#).map { String(series[$0.upperBound...].prefix { $0 != "\"" }) }
            }
        )
    }

    @Test("Three exporters with --shard.count 3 over one config of nine workspaces export each workspace exactly once; reload keeps the shard")
    func threeShards() async throws {
        let simulator = try await SimulatorProcess(batches: 6, active: 2)
        defer { simulator.terminate() }
        let directory = try MultiWorkspaceTests.ConfigDirectory()
        func configuration(_ names: [String]) -> String {
            "workspaces:\n" + names.map { "  - name: \($0)\n    api_key_env: SHARED_KEY\n" }.joined()
        }
        let nine = (1...9).map { "ws-\($0)" }
        let config = try directory.write("exporter.yml", configuration(nine))
        let common = [
            "--config.file", config, "--api-base-url", simulator.baseURL, "--poll-interval", "300ms",
            "--api.max-requests-per-minute", "0", "--shard.count", "3",
        ]
        var exporters: [ExporterProcess] = []
        defer { exporters.forEach { $0.terminate() } }
        for index in 0..<2 {
            exporters.append(
                try await ExporterProcess(arguments: common + ["--shard.index", "\(index)"], environment: ["SHARED_KEY": simulator.apiKey])
            )
        }
        // The third takes its index from the pod name, as in the StatefulSet.
        exporters.append(
            try await ExporterProcess(
                arguments: common + ["--shard.from-pod-name"],
                environment: ["SHARED_KEY": simulator.apiKey, "POD_NAME": "anthropic-batches-exporter-2"]
            )
        )

        var exported: [Set<String>] = []
        for (index, exporter) in exporters.enumerated() {
            let expected = Set(nine.filter { Self.documentedShard(of: $0, count: 3) == index })
            try await eventually("shard \(index) to export its workspaces") {
                let scrape = try exporter.scrape()
                return Self.workspaces(scrape) == expected
                    && expected.allSatisfy { scrape[#"anthropic_batches_exporter_snapshot_batches{workspace="\#($0)"}"#] == 6 }
            }
            let scrape = try exporter.scrape()
            exported.append(Self.workspaces(scrape))
            #expect(scrape[#"anthropic_batches_exporter_shard_info{count="3",index="\#(index)"}"#] == 1)
            #expect(scrape.family("anthropic_batches_exporter_shard_info").count == 1)
            #expect(scrape["anthropic_batches_exporter_config_workspaces"] == 9)
            #expect(scrape["anthropic_batches_exporter_shard_workspaces"] == Double(expected.count))
            // Series of workspaces from other shards never appear, not even as errors.
            let others = Set(nine).subtracting(expected)
            #expect(others.allSatisfy { !scrape.text.contains(#"workspace="\#($0)""#) })
        }
        #expect(exported.reduce(Set<String>()) { $0.union($1) } == Set(nine), "every workspace is exported")
        #expect(exported.map(\.count).reduce(0, +) == 9, "no workspace is exported twice")
        #expect(exported.allSatisfy { !$0.isEmpty }, "these nine names spread over all three shards")

        // A reload keeps each exporter's shard: a tenth workspace joins only the shard it hashes to.
        _ = try directory.write("exporter.yml", configuration(nine + ["ws-10"]))
        let tenthShard = Self.documentedShard(of: "ws-10", count: 3)
        for (index, exporter) in exporters.enumerated() {
            let response = try RawHTTP.request("POST", port: exporter.port, path: "/-/reload")
            #expect(response.status == 200, "\(response.text)")
            #expect(response.text.contains("added: ws-10;") == (index == tenthShard), "shard \(index): \(response.text)")
            #expect(response.text.contains("removed: ;"), "\(response.text)")
            try await eventually("shard \(index) to count the new configuration") {
                try exporter.scrape()["anthropic_batches_exporter_config_workspaces"] == 10
            }
        }
        try await eventually("the tenth workspace's data on its shard") {
            try exporters[tenthShard].scrape()[#"anthropic_batches_exporter_snapshot_batches{workspace="ws-10"}"#] == 6
        }
        for (index, exporter) in exporters.enumerated() where index != tenthShard {
            #expect(try !exporter.scrape().text.contains(#"workspace="ws-10""#))
        }
    }

    @Test(
        "Bad shard flags stop the start with exit 2 and one line",
        arguments: [
            (["--shard.count", "0"], [:], "--shard.count must be at least 1"),
            (["--shard.index", "3", "--shard.count", "3"], [:], "--shard.index must be between 0 and --shard.count - 1 = 2 (got 3)"),
            (["--shard.from-pod-name", "--shard.index", "1", "--shard.count", "3"], [:], "cannot be combined"),
            (["--shard.from-pod-name", "--shard.count", "3"], ["POD_NAME": "exporter"], "POD_NAME \"exporter\" does not end in -<ordinal>"),
            (["--shard.from-pod-name", "--shard.count", "3"], ["POD_NAME": "exporter-5"], "(got 5) (the ordinal from --shard.from-pod-name)"),
        ] as [([String], [String: String], String)])
    func badFlags(arguments: [String], environment: [String: String], message: String) async throws {
        let directory = try MultiWorkspaceTests.ConfigDirectory()
        let config = try directory.write("exporter.yml", "workspaces:\n  - name: a\n    api_key_env: K\n")
        let process = try ChildProcess(
            Binaries.exporter, arguments: ["--config.file", config] + arguments, environment: environment.merging(["K": "sk-ant-x"]) { $1 }
        )
        #expect(try await process.waitForExit() == 2)
        // The pipe's last bytes may be read a moment after the exit.
        try await eventually("the error line") { process.stderr.hasSuffix("\n") }
        #expect(process.stderr.split(separator: "\n").count == 1, "\(process.stderr)")
        #expect(process.stderr.contains(message), "\(process.stderr)")
    }

    @Test("--shard.count above 1 without --config.file is refused: there is nothing to split")
    func shardsNeedAConfig() async throws {
        let process = try ChildProcess(Binaries.exporter, arguments: ["--shard.count", "2"], environment: ["ANTHROPIC_API_KEY": "sk-ant-x"])
        #expect(try await process.waitForExit() == 2)
        try await eventually("the error line") { process.stderr.contains("--shard.count 2 needs --config.file") }
    }

    @Test("A shard that no workspace hashes to serves its own metrics and is ready")
    func emptyShard() async throws {
        let directory = try MultiWorkspaceTests.ConfigDirectory()
        // ws-5 is in shard 0 of 3: shard 1 has nothing to poll.
        let config = try directory.write("exporter.yml", "workspaces:\n  - name: ws-5\n    api_key_env: K\n")
        let exporter = try await ExporterProcess(
            arguments: ["--config.file", config, "--shard.count", "3", "--shard.index", "1", "--api-base-url", "http://127.0.0.1:9"],
            environment: ["K": "sk-ant-x"]
        )
        defer { exporter.terminate() }
        let scrape = try exporter.scrape()
        #expect(scrape["anthropic_batches_exporter_shard_workspaces"] == 0)
        #expect(scrape["anthropic_batches_exporter_config_workspaces"] == 1)
        #expect(try RawHTTP.request(port: exporter.port, path: "/-/ready").status == 200)
        #expect(exporter.process.stderr.contains("No workspace of the configuration falls in this shard"))
    }
}
