/// The exposition formats this exporter speaks.
public enum ExpositionFormat: Sendable, CaseIterable {
    /// Prometheus text format 0.0.4.
    case text
    /// OpenMetrics 1.0.0 text.
    case openMetrics

    public var contentType: String {
        switch self {
        case .text: "text/plain; version=0.0.4; charset=utf-8"
        case .openMetrics: "application/openmetrics-text; version=1.0.0; charset=utf-8"
        }
    }
}

/// Renders families to bytes. Families come out sorted by name, series in the order given, so
/// the same input always gives the same bytes.
public enum ExpositionRenderer {
    public static func render(_ families: [MetricFamily], format: ExpositionFormat, into output: inout [UInt8]) {
        for family in families.sorted(by: { $0.name < $1.name }) {
            render(family, format: format, into: &output)
        }
    }

    public static func render(_ families: [MetricFamily], format: ExpositionFormat) -> [UInt8] {
        var output: [UInt8] = []
        render(families, format: format, into: &output)
        return output
    }

    static func render(_ family: MetricFamily, format: ExpositionFormat, into output: inout [UInt8]) {
        renderHeader(family, format: format, into: &output)
        renderSamples(family, into: &output)
    }

    /// Text 0.0.4 names counter and info families by their samples' name, OpenMetrics by the
    /// base name; 0.0.4 has no info type and shows it as a gauge.
    private static func sampleSuffix(_ type: MetricType) -> String {
        switch type {
        case .counter: "_total"
        case .info: "_info"
        case .gauge, .histogram: ""
        }
    }

    /// The `# HELP`, `# TYPE` and (OpenMetrics only) `# UNIT` lines of a family.
    static func renderHeader(_ family: MetricFamily, format: ExpositionFormat, into output: inout [UInt8]) {
        let familyName = format == .text ? family.name + sampleSuffix(family.type) : family.name
        let typeName = format == .text && family.type == .info ? "gauge" : family.type.rawValue
        output.append(contentsOf: "# HELP \(familyName) ".utf8)
        appendEscaped(family.help, escapeQuotes: format == .openMetrics, into: &output)
        output.append(contentsOf: "\n# TYPE \(familyName) \(typeName)\n".utf8)
        if format == .openMetrics, let unit = family.unit, family.name.hasSuffix("_" + unit) {
            output.append(contentsOf: "# UNIT \(familyName) \(unit)\n".utf8)
        }
    }

    /// A family's sample lines, without its header. They are the same bytes in text 0.0.4 and
    /// OpenMetrics (no timestamps, no exemplars, the same suffixes and number format), so they
    /// take no format: the segment cache renders and compresses them once for both.
    static func renderSamples(_ family: MetricFamily, into output: inout [UInt8]) {
        let sampleSuffix = sampleSuffix(family.type)
        for sample in family.samples {
            output.append(contentsOf: family.name.utf8)
            output.append(contentsOf: sample.suffix.isEmpty ? sampleSuffix.utf8 : sample.suffix.utf8)
            appendLabels(sample.labels, into: &output)
            output.append(UInt8(ascii: " "))
            output.append(contentsOf: formatValue(sample.value).utf8)
            output.append(UInt8(ascii: "\n"))
        }
    }

    /// `{a="x",b="y"}`, or nothing for no labels.
    public static func appendLabels(_ labels: [Label], into output: inout [UInt8]) {
        guard !labels.isEmpty else { return }
        output.append(UInt8(ascii: "{"))
        for (index, label) in labels.enumerated() {
            if index > 0 { output.append(UInt8(ascii: ",")) }
            output.append(contentsOf: label.name.utf8)
            output.append(contentsOf: "=\"".utf8)
            appendEscaped(label.value, escapeQuotes: true, into: &output)
            output.append(UInt8(ascii: "\""))
        }
        output.append(UInt8(ascii: "}"))
    }

    /// Label values escape `\`, `"` and newline; 0.0.4 HELP text escapes only `\` and newline.
    static func appendEscaped(_ text: String, escapeQuotes: Bool, into output: inout [UInt8]) {
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\\"): output.append(contentsOf: #"\\"#.utf8)
            case UInt8(ascii: "\n"): output.append(contentsOf: #"\n"#.utf8)
            case UInt8(ascii: "\"") where escapeQuotes: output.append(contentsOf: #"\""#.utf8)
            default: output.append(byte)
            }
        }
    }
}

/// Formats a sample value the way Prometheus parses it and OpenMetrics requires it: integers
/// without a decimal point, `NaN`, `+Inf`, `-Inf`, otherwise the shortest exact decimal.
public func formatValue(_ value: Double) -> String {
    if value.isNaN { return "NaN" }
    if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
    if value == value.rounded(), abs(value) < 9_007_199_254_740_992 {
        return String(Int64(value))
    }
    return String(value)
}
