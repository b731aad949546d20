import HTTPServing
import NIOCore
import PrometheusExposition

/// The exporter's HTTP surface: the telemetry path, a landing page and the health endpoints.
/// Answers from values prepared elsewhere; nothing here waits on a poll.
public struct MetricsRoutes: HTTPResponder {
    private let telemetryPath: String
    private let store: ExpositionStore
    private let perScrapeFamilies: @Sendable () -> [MetricFamily]
    private let isReady: @Sendable () -> Bool
    private let landingPage: ByteBuffer
    private let reload: (@Sendable () async -> (ok: Bool, message: String))?

    /// - Parameters:
    ///   - perScrapeFamilies: the few families that change with time alone, rendered per scrape.
    ///   - isReady: whether `/-/ready` answers 200 (a first poll succeeded).
    public init(
        telemetryPath: String,
        version: String,
        store: ExpositionStore,
        perScrapeFamilies: @escaping @Sendable () -> [MetricFamily],
        isReady: @escaping @Sendable () -> Bool,
        reload: (@Sendable () async -> (ok: Bool, message: String))? = nil
    ) {
        self.reload = reload
        self.telemetryPath = telemetryPath
        self.store = store
        self.perScrapeFamilies = perScrapeFamilies
        self.isReady = isReady
        landingPage = ByteBuffer(string: Self.landingPage(telemetryPath: telemetryPath, version: version))
    }

    /// `POST /-/reload` (or `PUT`, as Prometheus accepts) answers when the reload is done.
    public func respond(to request: ServerRequest, on eventLoop: any EventLoop) -> EventLoopFuture<ServerResponse> {
        guard request.path == "/-/reload", request.method == "POST" || request.method == "PUT" else {
            return eventLoop.makeSucceededFuture(respond(to: request))
        }
        guard let reload else {
            return eventLoop.makeSucceededFuture(.text(404, "not found; metrics are at \(telemetryPath)\n"))
        }
        return eventLoop.makeFutureWithTask {
            let outcome = await reload()
            return .text(outcome.ok ? 200 : 500, outcome.message + "\n")
        }
    }

    public func respond(to request: ServerRequest) -> ServerResponse {
        if request.path == "/-/reload", reload != nil {
            return .text(405, "use POST to reload the configuration\n", headers: [("Allow", "POST, PUT")])
        }
        guard request.method == "GET" || request.method == "HEAD" else {
            return .text(405, "method not allowed\n", headers: [("Allow", "GET, HEAD")])
        }
        switch request.path {
        case telemetryPath:
            return metrics(request)
        case "/":
            return ServerResponse(status: 200, headers: [("Content-Type", "text/html; charset=utf-8")], body: landingPage)
        case "/-/healthy":
            return .text(200, "Healthy\n")
        case "/-/ready":
            return isReady() ? .text(200, "Ready\n") : .text(503, "Not ready: no successful poll of the API yet\n")
        default:
            return .text(404, "not found; metrics are at \(telemetryPath)\n")
        }
    }

    private func metrics(_ request: ServerRequest) -> ServerResponse {
        guard let exposition = store.latest else {
            return .text(503, "no metrics rendered yet\n")
        }
        let format = ContentNegotiation.format(forAccept: request.header("accept"))
        let gzip = ContentNegotiation.acceptsGzip(request.header("accept-encoding"))
        let body = exposition.response(format: format, tail: perScrapeFamilies(), gzip: gzip)
        var headers: [(name: String, value: String)] = [
            ("Content-Type", format.contentType),
            ("Vary", "Accept, Accept-Encoding"),
            ("Cache-Control", "no-store"),
        ]
        if body.isGzip { headers.append(("Content-Encoding", "gzip")) }
        return ServerResponse(
            status: 200,
            headers: headers,
            body: body.shared.first ?? ByteBuffer(),
            bodyTail: body.shared.dropFirst() + [body.perScrape]
        )
    }

    static func landingPage(telemetryPath: String, version: String) -> String {
        let path = htmlEscaped(telemetryPath)
        return """
            <!DOCTYPE html>
            <html lang="en">
            <head><meta charset="utf-8"><title>Anthropic Message Batches Exporter</title></head>
            <body>
            <h1>Anthropic Message Batches Exporter</h1>
            <p>Version \(htmlEscaped(version))</p>
            <ul>
            <li><a href="\(path)">Metrics</a></li>
            <li><a href="/-/healthy">Health</a></li>
            <li><a href="/-/ready">Readiness</a></li>
            </ul>
            </body>
            </html>

            """
    }

    static func htmlEscaped(_ text: String) -> String {
        var output = ""
        for character in text {
            switch character {
            case "&": output += "&amp;"
            case "<": output += "&lt;"
            case ">": output += "&gt;"
            case "\"": output += "&quot;"
            case "'": output += "&#39;"
            default: output.append(character)
            }
        }
        return output
    }
}
