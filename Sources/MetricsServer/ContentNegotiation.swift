import Basics
import PrometheusExposition

/// `Accept` and `Accept-Encoding` handling, with q-values, as Prometheus sends them.
public enum ContentNegotiation {
    /// The format the scraper prefers among those we speak. Prometheus 3 sends e.g.
    /// `application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.2,*/*;q=0.1`.
    /// Ties, wildcards and absent or unparseable headers give text 0.0.4, the format every
    /// scraper reads.
    public static func format(forAccept accept: String?) -> ExpositionFormat {
        guard let accept else { return .text }
        var best: (format: ExpositionFormat, quality: Double) = (.text, 0)
        for range in accept.split(separator: ",") {
            let parameters = range.split(separator: ";").map { $0.trimmingWhitespace }
            guard let mediaType = parameters.first?.lowercased() else { continue }
            var quality = 1.0
            var version: String?
            for parameter in parameters.dropFirst() {
                let pair = parameter.split(separator: "=", maxSplits: 1).map { $0.trimmingWhitespace }
                guard pair.count == 2 else { continue }
                switch pair[0].lowercased() {
                case "q": quality = Double(pair[1]) ?? 0
                case "version": version = pair[1]
                default: break
                }
            }
            let format: ExpositionFormat?
            switch mediaType {
            case "application/openmetrics-text" where version == nil || version == "1.0.0":
                format = .openMetrics
            case "text/plain" where version == nil || version == "0.0.4":
                format = .text
            case "*/*", "text/*":
                format = .text
            default:
                format = nil
            }
            guard let format, quality > 0 else { continue }
            if quality > best.quality || (quality == best.quality && format == .text) {
                best = (format, quality)
            }
        }
        return best.format
    }

    /// Whether `gzip` is acceptable: listed with q > 0, or covered by `*` with q > 0 when not
    /// listed itself (RFC 9110, 12.5.3: an explicit entry wins over the wildcard).
    public static func acceptsGzip(_ acceptEncoding: String?) -> Bool {
        guard let acceptEncoding else { return false }
        var gzipQuality: Double?
        var wildcardQuality: Double?
        for coding in acceptEncoding.split(separator: ",") {
            let parameters = coding.split(separator: ";").map { $0.trimmingWhitespace }
            guard let name = parameters.first?.lowercased() else { continue }
            let quality =
                parameters.dropFirst().compactMap { parameter -> Double? in
                    let pair = parameter.split(separator: "=", maxSplits: 1).map { $0.trimmingWhitespace }
                    return pair.count == 2 && pair[0].lowercased() == "q" ? Double(pair[1]) : nil
                }.first ?? 1
            switch name {
            case "gzip", "x-gzip": gzipQuality = quality
            case "*": wildcardQuality = quality
            default: break
            }
        }
        return (gzipQuality ?? wildcardQuality ?? 0) > 0
    }
}
