import HTTPServing
import MetricsServer
import NIOCore
import PrometheusExposition
import Synchronization
import Testing

/// A flag the routes read through their `isReady` closure.
final class ReadyFlag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .relaxed) }
    func set() { value.store(true, ordering: .relaxed) }
}

@Suite("MetricsRoutes")
struct MetricsRoutesTests {
    static let families = [
        MetricFamily(name: "anthropic_batches", help: "Batches by status.", type: .gauge, samples: [Sample([Label("status", "ended")], 3)]),
        MetricFamily(name: "anthropic_polls", help: "Polls.", type: .counter, samples: [Sample([], 7)]),
    ]
    static let tail = [
        MetricFamily(name: "anthropic_snapshot_age_seconds", help: "Age.", type: .gauge, unit: "seconds", samples: [Sample([], 1.5)])
    ]

    static let renderedText = """
        # HELP anthropic_batches Batches by status.
        # TYPE anthropic_batches gauge
        anthropic_batches{status="ended"} 3
        # HELP anthropic_polls_total Polls.
        # TYPE anthropic_polls_total counter
        anthropic_polls_total 7

        """
    static let renderedTail = """
        # HELP anthropic_snapshot_age_seconds Age.
        # TYPE anthropic_snapshot_age_seconds gauge
        anthropic_snapshot_age_seconds 1.5

        """

    func makeRoutes(
        store: ExpositionStore = ExpositionStore(),
        ready: ReadyFlag = ReadyFlag(),
        version: String = "1.2.3-test"
    ) -> MetricsRoutes {
        MetricsRoutes(
            telemetryPath: "/metrics",
            version: version,
            store: store,
            perScrapeFamilies: { Self.tail },
            isReady: { ready.isSet }
        )
    }

    func publishedStore() -> ExpositionStore {
        let store = ExpositionStore()
        store.publish(RenderedExposition(families: Self.families))
        return store
    }

    func header(_ name: String, in response: ServerResponse) -> String? {
        response.headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    func fullBody(_ response: ServerResponse) -> [UInt8] {
        Array(response.body.readableBytesView) + response.bodyTail.flatMap(\.readableBytesView)
    }

    @Test("Methods other than GET and HEAD get 405 with an Allow header", arguments: ["POST", "PUT", "DELETE", "OPTIONS"])
    func methodNotAllowed(method: String) {
        let response = makeRoutes(store: publishedStore()).respond(to: ServerRequest(method: method, path: "/metrics"))
        #expect(response.status == 405)
        #expect(header("Allow", in: response) == "GET, HEAD")
    }

    @Test("Unknown paths get 404 naming the telemetry path", arguments: ["/nope", "/metrics/", "/Metrics", "/-/health"])
    func notFound(path: String) {
        let response = makeRoutes().respond(to: ServerRequest(method: "GET", path: path))
        #expect(response.status == 404)
        #expect(String(buffer: response.body) == "not found; metrics are at /metrics\n")
    }

    @Test("/-/healthy answers 200")
    func healthy() {
        let response = makeRoutes().respond(to: ServerRequest(method: "GET", path: "/-/healthy"))
        #expect(response.status == 200)
        #expect(String(buffer: response.body) == "Healthy\n")
    }

    @Test("/-/ready answers 503 until isReady turns true, then 200")
    func readiness() {
        let ready = ReadyFlag()
        let routes = makeRoutes(ready: ready)
        let before = routes.respond(to: ServerRequest(method: "GET", path: "/-/ready"))
        #expect(before.status == 503)
        ready.set()
        let after = routes.respond(to: ServerRequest(method: "GET", path: "/-/ready"))
        #expect(after.status == 200)
        #expect(String(buffer: after.body) == "Ready\n")
    }

    @Test("The landing page is HTML showing the version and linking to the telemetry path")
    func landingPage() {
        let response = makeRoutes().respond(to: ServerRequest(method: "GET", path: "/"))
        #expect(response.status == 200)
        #expect(header("Content-Type", in: response) == "text/html; charset=utf-8")
        let html = String(buffer: response.body)
        #expect(html.hasPrefix("<!DOCTYPE html>"))
        #expect(html.contains("Version 1.2.3-test"))
        #expect(html.contains(#"<a href="/metrics">"#))
    }

    @Test("The landing page HTML-escapes the version")
    func landingPageEscapes() {
        let html = String(buffer: makeRoutes(version: #"<b>"x"&'y'</b>"#).respond(to: ServerRequest(method: "GET", path: "/")).body)
        #expect(html.contains("Version &lt;b&gt;&quot;x&quot;&amp;&#39;y&#39;&lt;/b&gt;"))
        #expect(!html.contains("<b>"))
    }

    @Test("The telemetry path answers 503 before the first rendering is published")
    func metricsBeforePublish() {
        let response = makeRoutes().respond(to: ServerRequest(method: "GET", path: "/metrics"))
        #expect(response.status == 503)
    }

    @Test("The telemetry path returns the published rendering followed by the per-scrape tail, as text 0.0.4", arguments: ["GET", "HEAD"])
    func metricsText(method: String) {
        let response = makeRoutes(store: publishedStore()).respond(to: ServerRequest(method: method, path: "/metrics"))
        #expect(response.status == 200)
        #expect(header("Content-Type", in: response) == "text/plain; version=0.0.4; charset=utf-8")
        #expect(header("Content-Encoding", in: response) == nil)
        #expect(header("Vary", in: response) == "Accept, Accept-Encoding")
        #expect(String(buffer: response.body) == Self.renderedText)
        #expect(response.bodyTail.map { String(buffer: $0) } == [Self.renderedTail])
    }

    @Test("An OpenMetrics Accept header gets OpenMetrics, ending with # EOF")
    func metricsOpenMetrics() {
        let request = ServerRequest(
            method: "GET",
            path: "/metrics",
            headers: [("Accept", "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.2")]
        )
        let response = makeRoutes(store: publishedStore()).respond(to: request)
        #expect(header("Content-Type", in: response) == "application/openmetrics-text; version=1.0.0; charset=utf-8")
        let body = String(decoding: fullBody(response), as: UTF8.self)
        #expect(body.hasPrefix("# HELP anthropic_batches Batches by status.\n"))
        #expect(body.contains("# TYPE anthropic_polls counter\nanthropic_polls_total 7\n"))
        #expect(body.hasSuffix("anthropic_snapshot_age_seconds 1.5\n# EOF\n"))
    }

    @Test("Content-Encoding: gzip is set only when the request accepts gzip, and the body is the gzip rendering")
    func metricsGzip() throws {
        let store = publishedStore()
        let request = ServerRequest(method: "GET", path: "/metrics", headers: [("accept-encoding", "gzip, deflate")])
        let response = makeRoutes(store: store).respond(to: request)
        #expect(header("Content-Encoding", in: response) == "gzip")
        #expect(header("Content-Type", in: response) == "text/plain; version=0.0.4; charset=utf-8")
        let body = fullBody(response)
        #expect(Array(body.prefix(3)) == [0x1f, 0x8b, 0x08])
        let exposition = try #require(store.latest)
        let expected = exposition.response(format: .text, tail: Self.tail, gzip: true)
        #expect(expected.isGzip)
        #expect(body == expected.shared.flatMap(\.readableBytesView) + Array(expected.perScrape.readableBytesView))

        let refused = makeRoutes(store: store).respond(
            to: ServerRequest(method: "GET", path: "/metrics", headers: [("Accept-Encoding", "gzip;q=0")])
        )
        #expect(header("Content-Encoding", in: refused) == nil)
        #expect(String(decoding: fullBody(refused), as: UTF8.self) == Self.renderedText + Self.renderedTail)
    }
}
