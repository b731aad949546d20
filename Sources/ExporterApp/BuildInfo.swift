import PrometheusExposition

/// What this binary is, for `--version`, the User-Agent and `build_info`.
public enum BuildInfo {
    public static let version = "0.1.0"
    /// SwiftPM offers no hook to stamp the git commit into a build without a plugin; release
    /// builds (deploy/docker) pass none either, so this says plainly that it is not known.
    static let revision = "unknown"
    static let swiftVersion: String = {
        #if compiler(>=6.4)
        "6.4+"
        #elseif compiler(>=6.3)
        "6.3"
        #elseif compiler(>=6.2)
        "6.2"
        #else
        "6.1-"
        #endif
    }()

    static var userAgent: String { "anthropic-batches-exporter/\(version)" }

    static var family: MetricFamily {
        MetricFamily(
            name: "anthropic_batches_exporter_build",
            help: "Build information of the running exporter; the value is always 1.",
            type: .info,
            samples: [Sample([Label("revision", revision), Label("swift_version", swiftVersion), Label("version", version)], 1)]
        )
    }
}
