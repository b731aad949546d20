// swift-tools-version: 6.2
import PackageDescription

/// One list of settings for every target of ours: Swift 6 mode and zero warnings are enforced
/// by the manifest itself, not by whoever remembers a flag.
let strictSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .treatAllWarnings(as: .error),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("ExistentialAny"),
]

let nioCore: Target.Dependency = .product(name: "NIOCore", package: "swift-nio")
let nioPosix: Target.Dependency = .product(name: "NIOPosix", package: "swift-nio")
let nioHTTP1: Target.Dependency = .product(name: "NIOHTTP1", package: "swift-nio")
let nioEmbedded: Target.Dependency = .product(name: "NIOEmbedded", package: "swift-nio")
let logging: Target.Dependency = .product(name: "Logging", package: "swift-log")
let serviceLifecycle: Target.Dependency = .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")
let unixSignals: Target.Dependency = .product(name: "UnixSignals", package: "swift-service-lifecycle")
let nioSSL: Target.Dependency = .product(name: "NIOSSL", package: "swift-nio-ssl")
let yams: Target.Dependency = .product(name: "Yams", package: "Yams")
let argumentParser: Target.Dependency = .product(name: "ArgumentParser", package: "swift-argument-parser")

let package = Package(
    name: "anthropic-batches-exporter",
    // Linux is the only platform this package is built and tested on (CI, the container image).
    // SwiftPM has no entry for Linux; this line only keeps a macOS build from trying below
    // the release that has `Synchronization.Mutex`, and is not a claim that macOS is supported.
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "anthropic-batches-exporter", targets: ["anthropic-batches-exporter"]),
        .executable(name: "batches-simulator", targets: ["batches-simulator"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        // TLS for the listener (--web.config.file); it compiles BoringSSL, so it is here only
        // because serving /metrics over TLS needs it.
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
    ],
    targets: [
        // C surfaces, each behind its own target.
        .systemLibrary(
            name: "CCurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),
        .systemLibrary(
            name: "CCrypt",
            pkgConfig: "libxcrypt",
            providers: [.apt(["libcrypt-dev"])]
        ),
        .systemLibrary(
            name: "CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),

        // What several modules need exactly once: the wall clock, Duration conversions and
        // Go-style durations, the whitespace trim. No dependencies.
        .target(name: "Basics", swiftSettings: strictSettings),
        // RFC 3339 timestamps to and from epoch seconds; shared by the API models and the simulator.
        .target(name: "RFC3339", swiftSettings: strictSettings),

        // HTTP GETs and streamed downloads over libcurl's multi interface, on one engine thread.
        .target(name: "CurlHTTP", dependencies: ["Basics", "CCurl"], swiftSettings: strictSettings),
        // The list endpoint: models, pagination, retry decisions, API errors. Knows no Prometheus.
        .target(name: "BatchesAPI", dependencies: ["Basics", "CurlHTTP", "RFC3339", logging], swiftSettings: strictSettings),
        // Prometheus exposition: families, text 0.0.4 / OpenMetrics rendering to bytes, gzip, the
        // store of the current rendering, process_* metrics. Knows no HTTP and no API.
        .target(name: "PrometheusExposition", dependencies: ["CZlib", nioCore], swiftSettings: strictSettings),
        // A small hardened HTTP/1.1 listener over SwiftNIO, generic over a responder.
        .target(name: "HTTPServing", dependencies: [nioCore, nioPosix, nioHTTP1, nioSSL, logging], swiftSettings: strictSettings),
        // The exporter's routes: /metrics with negotiation, landing page, health. Knows no API.
        .target(
            name: "MetricsServer", dependencies: ["Basics", "HTTPServing", "PrometheusExposition", "CCrypt", nioCore, nioPosix, logging],
            swiftSettings: strictSettings),
        // The in-repo stand-in for the Message Batches API (tests, benchmarks and --demo).
        .target(name: "BatchesSimulator", dependencies: ["Basics", "HTTPServing", "RFC3339", nioCore, nioHTTP1, logging], swiftSettings: strictSettings),
        // The YAML files: --web.config.file (exporter-toolkit's format) and --config.file
        // (workspaces); plain values out, with file:line in every error.
        .target(name: "ConfigFiles", dependencies: [yams], swiftSettings: strictSettings),
        // logfmt and JSON log handlers for swift-log.
        .target(name: "LogFormats", dependencies: ["Basics", "RFC3339", logging], swiftSettings: strictSettings),
        // The poll loop as a Service: poller, its state machine (clock injected), configuration.
        .target(
            name: "BatchesExporter",
            dependencies: ["Basics", "BatchesAPI", "PrometheusExposition", logging, serviceLifecycle, yams],
            swiftSettings: strictSettings
        ),
        // The exporter as a library: its flags, one validator for flags and --config.file,
        // loading and reloading the configuration, and the services wired into one ServiceGroup.
        .target(
            name: "ExporterApp",
            dependencies: [
                "Basics", "BatchesExporter", "MetricsServer", "BatchesSimulator", "LogFormats", "HTTPServing", "ConfigFiles", nioSSL,
                argumentParser, logging, serviceLifecycle, unixSignals,
            ],
            swiftSettings: strictSettings
        ),
        // @main: flags -> ExporterRuntime -> run; nothing else.
        .executableTarget(name: "anthropic-batches-exporter", dependencies: ["ExporterApp", argumentParser], swiftSettings: strictSettings),
        // Times the CPU-bound steps of a poll in-process (decode, snapshot, render, gzip).
        .executableTarget(
            name: "exporter-microbench",
            dependencies: ["Basics", "BatchesAPI", "BatchesExporter", "BatchesSimulator", "HTTPServing", "PrometheusExposition", nioCore],
            swiftSettings: strictSettings
        ),
        // Results scanning throughput (MB/s on one core) and RSS while streaming >= 1 GB.
        .executableTarget(name: "results-bench", dependencies: ["Basics", "BatchesAPI"], swiftSettings: strictSettings),
        // The simulator as its own process, for integration tests and benchmarks.
        .executableTarget(
            name: "batches-simulator",
            dependencies: ["BatchesSimulator", "HTTPServing", "LogFormats", logging],
            swiftSettings: strictSettings
        ),

        // Test support: a clock that moves only when the test advances it (Basics' MonotonicClock takes it).
        .target(name: "ManualClock", path: "Tests/ManualClock", swiftSettings: strictSettings),

        .testTarget(
            name: "CurlHTTPTests", dependencies: ["CurlHTTP", "HTTPServing", "BatchesSimulator", nioCore, nioPosix, logging], swiftSettings: strictSettings),
        .testTarget(
            name: "BatchesAPITests", dependencies: ["BatchesAPI", "ManualClock", "CurlHTTP", logging], resources: [.copy("Fixtures")],
            swiftSettings: strictSettings),
        .testTarget(
            name: "PrometheusExpositionTests", dependencies: ["PrometheusExposition", "CZlib", nioCore], resources: [.copy("Fixtures")],
            swiftSettings: strictSettings),
        .testTarget(name: "HTTPServingTests", dependencies: ["HTTPServing", nioCore, nioPosix, nioHTTP1, nioEmbedded, logging], swiftSettings: strictSettings),
        .testTarget(
            name: "BatchesSimulatorTests", dependencies: ["Basics", "BatchesSimulator", "HTTPServing", "RFC3339", nioCore, nioHTTP1, nioEmbedded, logging],
            swiftSettings: strictSettings),
        .testTarget(
            name: "BatchesExporterTests",
            dependencies: [
                "Basics", "BatchesExporter", "ManualClock", "BatchesAPI", "CurlHTTP", "PrometheusExposition", "LogFormats", "BatchesSimulator", "HTTPServing",
                nioCore, logging,
            ], swiftSettings: strictSettings),
        .testTarget(name: "BasicsTests", dependencies: ["Basics"], swiftSettings: strictSettings),
        .testTarget(name: "RFC3339Tests", dependencies: ["RFC3339"], swiftSettings: strictSettings),
        .testTarget(
            name: "MetricsServerTests", dependencies: ["MetricsServer", "PrometheusExposition", "HTTPServing", nioCore, nioPosix], swiftSettings: strictSettings
        ),
        .testTarget(name: "LogFormatsTests", dependencies: ["LogFormats", logging], swiftSettings: strictSettings),
        .testTarget(name: "DeployTests", dependencies: [], swiftSettings: strictSettings),
        .testTarget(name: "ConfigFilesTests", dependencies: ["ConfigFiles"], swiftSettings: strictSettings),
        .testTarget(
            name: "ExporterAppTests",
            dependencies: ["Basics", "ExporterApp", "ManualClock", "BatchesAPI", "BatchesExporter", "ConfigFiles", "HTTPServing", argumentParser],
            swiftSettings: strictSettings),
        .testTarget(name: "IntegrationTests", dependencies: [], exclude: ["Fixtures"], swiftSettings: strictSettings),
    ]
)
