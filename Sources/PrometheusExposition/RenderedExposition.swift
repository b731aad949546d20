import NIOCore
import Synchronization

/// A snapshot's families rendered once, in every format, plain and gzip-ready. Scrapes share
/// these bytes; only the small per-scrape tail is rendered on each request.
public struct RenderedExposition: Sendable {
    struct Body: Sendable {
        /// The plain bytes, in pieces sent one after the other: one piece for a body copied
        /// whole, or (OpenMetrics from segments) runs of the text body's bytes with the header
        /// lines that differ between the formats in between, so the two formats share one copy.
        let plain: [ByteBuffer]
        /// A gzip header and deflate blocks ended by a flush: byte-aligned, not final, in
        /// pieces as `plain`. Empty when compression failed, so scrapes fall back to the plain
        /// body.
        let gzipPrefix: [ByteBuffer]
        /// The CRC-32 and length of the uncompressed bytes `gzipPrefix` holds (`plain`'s).
        let crc: UInt
        let length: Int
    }

    private let bodies: [Body]

    /// Renders `families` in every format. This is the expensive step: call it once per poll.
    /// (``ExpositionSegments`` assembles the same bytes from cached per-family pieces.)
    public init(families: [MetricFamily]) {
        bodies = ExpositionFormat.allCases.map { format in
            let bytes = ExpositionRenderer.render(families, format: format)
            // Level 1: a third of level 6's CPU for a body that is rendered on every poll, at
            // the cost of a somewhat larger transfer.
            let gzip = GzipPrefix(compressing: bytes, level: 1)
            return Body(
                plain: [ByteBuffer(bytes: bytes)],
                gzipPrefix: gzip.compressed.isEmpty ? [] : [ByteBuffer(bytes: gzip.compressed)],
                crc: gzip.crc,
                length: gzip.length
            )
        }
    }

    /// Bodies already assembled, one per format in `ExpositionFormat.allCases` order.
    init(bodies: [Body]) {
        precondition(bodies.count == ExpositionFormat.allCases.count, "one body per format")
        self.bodies = bodies
    }

    private func body(for format: ExpositionFormat) -> Body {
        bodies[format == .text ? 0 : 1]
    }

    /// The response body in two parts: the cached, shared pieces and a small part rendered
    /// for this scrape from `tail`, ending with the OpenMetrics terminator where the format
    /// needs one. Sent one after the other they form the whole body (gzip-encoded when `gzip`).
    public func response(
        format: ExpositionFormat,
        tail: [MetricFamily],
        gzip: Bool
    ) -> (shared: [ByteBuffer], perScrape: ByteBuffer, isGzip: Bool) {
        let body = body(for: format)
        var tailBytes = ExpositionRenderer.render(tail, format: format)
        if format == .openMetrics { tailBytes.append(contentsOf: "# EOF\n".utf8) }
        guard gzip, !body.gzipPrefix.isEmpty else {
            return (body.plain, ByteBuffer(bytes: tailBytes), false)
        }
        let completion = GzipPrefix.completion(prefixCRC: body.crc, prefixLength: body.length, tail: tailBytes)
        return (body.gzipPrefix, ByteBuffer(bytes: completion), true)
    }
}

/// The one piece of state shared between the poller and the listener: the current rendering.
/// Readers copy out an immutable value, so a scrape never waits on a poll in progress.
public final class ExpositionStore: Sendable {
    private let current = Mutex<RenderedExposition?>(nil)

    public init() {}

    public func publish(_ exposition: RenderedExposition) {
        current.withLock { $0 = exposition }
    }

    public var latest: RenderedExposition? {
        current.withLock { $0 }
    }
}
