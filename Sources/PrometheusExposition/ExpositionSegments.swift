import CZlib
import NIOCore

/// A named group of one source's families, re-rendered only when `version` changes.
public struct FamilyGroup: Sendable {
    /// Unique within the source, e.g. "health", "batches", "per_batch".
    public var key: String
    /// The caller bumps it whenever the group's families change. It must never repeat for
    /// different families of the same source and key, including across a restarted poller:
    /// take it from `ExpositionPublisher.makeVersion()` rather than a counter per poller.
    public var version: UInt64
    /// Called only when the version differs from the cached one, at render time (possibly on
    /// another thread, under the render lock): it must not call back into the publisher.
    public var build: @Sendable () -> [MetricFamily]

    public init(key: String, version: UInt64, build: @escaping @Sendable () -> [MetricFamily]) {
        self.key = key
        self.version = version
        self.build = build
    }
}

/// Every source's families kept rendered and compressed in pieces, so that a change re-renders
/// only the groups whose version moved, and assembling the whole body is copying and CRC
/// combining.
///
/// The pieces ("segments"): per (source, group, family name) the family's sample lines, the
/// same bytes in both formats; per family name and format its `# HELP`/`# TYPE`/`# UNIT`
/// lines. Each segment is also kept as raw deflate blocks compressed on its own and ended by a
/// sync flush, with its CRC-32. The body in each format is, for each family name in sorted
/// order, its header, then the samples of every source (in `Source` order; groups in the order
/// published, families in the order built) that has that family: byte for byte what
/// ``ExpositionRenderer`` gives for the families merged in that order. The gzip body is a gzip
/// header and the same segments' deflate blocks, in the same order; the per-scrape tail ends
/// the stream and its trailer's CRC is combined from the segments' CRCs.
///
/// After assembly every segment is re-pointed at its bytes inside the assembled text body, so
/// the cache and the served exposition share one copy instead of keeping two.
///
/// A family name should have one help text, type and unit across sources: the first source
/// (in order) that has the family gives the header, and each source's sample names follow its
/// own family's type.
public struct ExpositionSegments<Source: Hashable & Comparable & Sendable>: Sendable {
    private var sources: [Source: CachedSource] = [:]
    private var headers: [String: CachedHeader] = [:]
    private let compressionLevel: Int32

    /// - Parameter compressionLevel: zlib level for the segments. 1 costs a third of the CPU
    ///   of level 6 for a somewhat larger transfer; segments are compressed whenever their
    ///   group changes, which for per-batch series is every poll.
    public init(compressionLevel: Int32 = 1) {
        self.compressionLevel = compressionLevel
    }

    /// Brings one source up to date: groups whose version differs from the cached one (or are
    /// new) are built and rendered, the others are kept as they are, and groups not in
    /// `groups` are dropped.
    ///
    /// - Parameter generation: identifies this incarnation of the source. A different value
    ///   drops everything cached for it first, so a source removed and added again cannot be
    ///   served an old rendering because its new versions happen to restart at the same value.
    /// - Returns: the keys of the groups that were built.
    @discardableResult
    public mutating func update(source: Source, generation: UInt64 = 0, groups: [FamilyGroup]) -> [String] {
        var cached = sources.removeValue(forKey: source) ?? CachedSource(generation: generation)
        if cached.generation != generation { cached = CachedSource(generation: generation) }
        var built: [String] = []
        var deflater = SegmentDeflater(level: compressionLevel)
        var order: [String] = []
        var kept: [String: RenderedGroup] = [:]
        kept.reserveCapacity(groups.count)
        for group in groups {
            // Keys should be unique; a repeated one still gets a slot of its own rather than
            // silently replacing the first.
            var key = group.key
            var repeatCount = 1
            while kept[key] != nil {
                key = "\(group.key)\u{0}\(repeatCount)"
                repeatCount += 1
            }
            if let existing = cached.groups[key], existing.version == group.version {
                kept[key] = existing
            } else {
                kept[key] = RenderedGroup(version: group.version, families: group.build(), deflater: &deflater)
                built.append(group.key)
            }
            order.append(key)
        }
        cached.groups = kept
        cached.order = order
        sources[source] = cached
        return built
    }

    /// Drops a source and everything cached for it.
    public mutating func remove(source: Source) {
        sources.removeValue(forKey: source)
    }

    /// Drops every source not in `keep`.
    public mutating func retainSources(_ keep: Set<Source>) {
        sources = sources.filter { keep.contains($0.key) }
    }

    /// The sources cached now, in output order.
    public var sourceKeys: [Source] {
        sources.keys.sorted()
    }

    /// The whole exposition from the cached segments: no rendering and no compression except
    /// for headers of families whose help, type or unit is new.
    public mutating func assemble() -> RenderedExposition {
        // Which sources' segments each family name gathers, in output order.
        var families: [String: FamilyParts<Source>] = [:]
        for source in sources.keys.sorted() {
            guard let cached = sources[source] else { continue }
            for groupKey in cached.order {
                guard let group = cached.groups[groupKey] else { continue }
                for (index, family) in group.families.enumerated() {
                    let location = SegmentLocation<Source>(source: source, group: groupKey, family: index)
                    families[family.header.name, default: FamilyParts(header: family.header)].samples.append(
                        (family.samples, location)
                    )
                }
            }
        }
        let names = families.keys.sorted()

        // Headers: cached per name, re-rendered only when the family's description changed.
        headers = headers.filter { families[$0.key] != nil }
        var deflater = SegmentDeflater(level: compressionLevel)
        for name in names {
            guard let parts = families[name], headers[name]?.header != parts.header else { continue }
            headers[name] = CachedHeader(header: parts.header, deflater: &deflater)
        }

        // The text body: every header and sample segment copied once into one buffer.
        var plainBytes = 0
        var deflatedBytes = 0
        for name in names {
            guard let parts = families[name], let header = headers[name] else { continue }
            for segment in [header.text] + parts.samples.compactMap({ $0.0 }) {
                plainBytes += segment.count
                deflatedBytes += segment.deflated?.readableBytes ?? 0
            }
        }
        var writer = BodyWriter(plainCapacity: plainBytes, deflatedCapacity: deflatedBytes)
        // The OpenMetrics body is laid out at the same time as runs of the text body's bytes:
        // sample lines are the same in both formats, and so are most headers (a gauge without
        // a unit, say); only the headers that differ are pieces of their own.
        var openMetrics = SharedBodyLayout()
        var headerOffsets: [(String, BodyWriter.Offsets)] = []
        var sampleOffsets: [(SegmentLocation<Source>, BodyWriter.Offsets)] = []
        for name in names {
            guard let parts = families[name], let header = headers[name] else { continue }
            let offsets = writer.append(header.text)
            headerOffsets.append((name, offsets))
            if let own = header.openMetrics {
                openMetrics.insert(own)
            } else {
                openMetrics.share(header.text, at: offsets)
            }
            for case (let segment?, let location) in parts.samples {
                let offsets = writer.append(segment)
                sampleOffsets.append((location, offsets))
                openMetrics.share(segment, at: offsets)
            }
        }
        let bodies = [writer.body(), openMetrics.body(over: writer)]

        // Point every segment at its bytes inside the text body (only now: a slice taken while
        // the writer was still appending would make its next write copy the whole buffer).
        // Segments then share the served body's storage instead of holding a copy of their own.
        for (name, offsets) in headerOffsets {
            headers[name]?.point(at: writer, offsets: offsets)
        }
        for (location, offsets) in sampleOffsets {
            sources[location.source]?.groups[location.group]?.families[location.family].samples?.point(at: writer, offsets: offsets)
        }
        return RenderedExposition(bodies: bodies)
    }
}

// MARK: - Pieces

/// One piece of a body: its bytes, the same bytes compressed on their own as raw deflate
/// ended by a sync flush (nil if zlib failed), and what the gzip trailer needs to know.
struct Segment: Sendable {
    var plain: ByteBuffer
    var deflated: ByteBuffer?
    let crc: UInt
    /// `crc32_combine_gen(count)`: combining this segment's CRC into a running one with it is
    /// one GF(2) multiplication instead of a walk over the bits of the length.
    let combineOperator: UInt

    var count: Int { plain.readableBytes }

    init(_ bytes: [UInt8], deflater: inout SegmentDeflater) {
        plain = ByteBuffer(bytes: bytes)
        deflated = deflater.compress(bytes)
        crc = crc32(of: bytes)
        combineOperator = CZlib.crc32_combine_gen(off_t(bytes.count))
    }

    /// Replaces the segment's own buffers with slices of the assembled body's, where the same
    /// bytes now are, so the segment no longer holds a copy of its own.
    mutating func point(at writer: BodyWriter, offsets: BodyWriter.Offsets) {
        if let slice = writer.plain.getSlice(at: offsets.plain, length: count) { plain = slice }
        if let deflatedCount = deflated?.readableBytes, writer.isGzipValid,
            let slice = writer.gzip.getSlice(at: offsets.deflated, length: deflatedCount)
        {
            deflated = slice
        }
    }
}

/// What identifies a family's header lines.
struct FamilyHeader: Hashable, Sendable {
    let name: String
    let help: String
    let type: MetricType
    let unit: String?
}

/// One family as one group of one source contributes it: its header description and its
/// sample lines (nil for a family without samples, which still gets its header).
struct FamilyContribution: Sendable {
    let header: FamilyHeader
    var samples: Segment?
}

/// A group's families as rendered for the version it was built at.
struct RenderedGroup: Sendable {
    let version: UInt64
    var families: [FamilyContribution]

    /// Renders the families' sample lines; families of one name within the group are joined,
    /// samples in order, the first one's description standing, as the old merge did.
    init(version: UInt64, families built: [MetricFamily], deflater: inout SegmentDeflater) {
        self.version = version
        var merged: [MetricFamily] = []
        var indexByName: [String: Int] = [:]
        for family in built {
            if let index = indexByName[family.name] {
                merged[index].samples += family.samples
            } else {
                indexByName[family.name] = merged.count
                merged.append(family)
            }
        }
        var bytes: [UInt8] = []
        var families: [FamilyContribution] = []
        families.reserveCapacity(merged.count)
        for family in merged {
            let header = FamilyHeader(name: family.name, help: family.help, type: family.type, unit: family.unit)
            guard !family.samples.isEmpty else {
                families.append(FamilyContribution(header: header, samples: nil))
                continue
            }
            bytes.removeAll(keepingCapacity: true)
            ExpositionRenderer.renderSamples(family, into: &bytes)
            families.append(FamilyContribution(header: header, samples: Segment(bytes, deflater: &deflater)))
        }
        self.families = families
    }
}

struct CachedSource: Sendable {
    let generation: UInt64
    var groups: [String: RenderedGroup] = [:]
    var order: [String] = []

    init(generation: UInt64) {
        self.generation = generation
    }
}

/// A family name's header lines in each format.
struct CachedHeader: Sendable {
    let header: FamilyHeader
    private(set) var text: Segment
    /// The OpenMetrics lines where they differ from the text ones (a counter's name without
    /// `_total`, a `# UNIT` line, escaped quotes in the help); `nil` where they are the same
    /// bytes, which the OpenMetrics body then takes from the text body.
    let openMetrics: Segment?

    init(header: FamilyHeader, deflater: inout SegmentDeflater) {
        self.header = header
        let family = MetricFamily(name: header.name, help: header.help, type: header.type, unit: header.unit)
        var textBytes: [UInt8] = []
        ExpositionRenderer.renderHeader(family, format: .text, into: &textBytes)
        text = Segment(textBytes, deflater: &deflater)
        var openMetricsBytes: [UInt8] = []
        ExpositionRenderer.renderHeader(family, format: .openMetrics, into: &openMetricsBytes)
        openMetrics = openMetricsBytes == textBytes ? nil : Segment(openMetricsBytes, deflater: &deflater)
    }

    /// Only the text header is re-pointed; an OpenMetrics one of its own is not in that body.
    mutating func point(at writer: BodyWriter, offsets: BodyWriter.Offsets) {
        text.point(at: writer, offsets: offsets)
    }
}

struct SegmentLocation<Source: Hashable & Sendable>: Sendable {
    let source: Source
    let group: String
    let family: Int
}

/// One family name's pieces for an assembly: the header description that stands (the first
/// source's) and every source's samples, in order.
struct FamilyParts<Source: Hashable & Sendable> {
    let header: FamilyHeader
    var samples: [(Segment?, SegmentLocation<Source>)] = []

    init(header: FamilyHeader) {
        self.header = header
    }

    var sampleBytes: Int {
        samples.reduce(0) { $0 + ($1.0?.count ?? 0) }
    }
}

/// Concatenates segments into one body: plain bytes, the gzip prefix, and the running CRC.
struct BodyWriter {
    typealias Offsets = (plain: Int, deflated: Int)

    private(set) var plain: ByteBuffer
    private(set) var gzip: ByteBuffer
    private var crc: UInt = 0
    /// False once a segment lacks its compressed form: the body is then served uncompressed.
    private(set) var isGzipValid = true

    /// Capacities exact, so neither buffer is ever reallocated while appending.
    init(plainCapacity: Int, deflatedCapacity: Int) {
        plain = ByteBuffer()
        plain.reserveCapacity(plainCapacity)
        gzip = ByteBuffer()
        gzip.reserveCapacity(GzipPrefix.header.count + deflatedCapacity)
        gzip.writeBytes(GzipPrefix.header)
    }

    /// Appends a segment, returning where its bytes start in the plain and gzip buffers.
    mutating func append(_ segment: Segment) -> Offsets {
        let offsets = (plain: plain.writerIndex, deflated: gzip.writerIndex)
        plain.writeImmutableBuffer(segment.plain)
        if isGzipValid, let deflated = segment.deflated {
            gzip.writeImmutableBuffer(deflated)
            crc = CZlib.crc32_combine_op(crc, segment.crc, segment.combineOperator)
        } else {
            isGzipValid = false
        }
        return offsets
    }

    func body() -> RenderedExposition.Body {
        RenderedExposition.Body(plain: [plain], gzipPrefix: isGzipValid ? [gzip] : [], crc: crc, length: plain.readableBytes)
    }
}

/// A body made of runs of another body's bytes (the text body a ``BodyWriter`` holds) and
/// segments of its own, in order: the OpenMetrics body, which differs from the text body only
/// in some header lines. Ranges are recorded while the writer is still appending and turned
/// into slices of its buffers only at the end, when slicing no longer makes a write copy.
struct SharedBodyLayout {
    private enum Piece {
        /// Bytes of the writer's buffers: plain and deflated ranges.
        case shared(plain: Range<Int>, deflated: Range<Int>)
        case own(Segment)
    }

    /// Starts with the writer's gzip header, shared like everything else.
    private var pieces: [Piece] = [.shared(plain: 0..<0, deflated: 0..<GzipPrefix.header.count)]
    private var crc: UInt = 0
    private var length = 0
    /// False once a segment lacks its compressed form, as in ``BodyWriter``.
    private var isGzipValid = true

    /// Takes `segment` from the writer's buffers, where it was appended at `offsets`.
    mutating func share(_ segment: Segment, at offsets: BodyWriter.Offsets) {
        let deflatedCount = segment.deflated?.readableBytes ?? 0
        let plain = offsets.plain..<(offsets.plain + segment.count)
        let deflated = offsets.deflated..<(offsets.deflated + deflatedCount)
        if case .shared(let lastPlain, let lastDeflated)? = pieces.last, lastPlain.upperBound == plain.lowerBound,
            lastDeflated.upperBound == deflated.lowerBound
        {
            pieces[pieces.count - 1] = .shared(plain: lastPlain.lowerBound..<plain.upperBound, deflated: lastDeflated.lowerBound..<deflated.upperBound)
        } else {
            pieces.append(.shared(plain: plain, deflated: deflated))
        }
        account(for: segment)
    }

    /// Adds a segment the writer does not hold.
    mutating func insert(_ segment: Segment) {
        pieces.append(.own(segment))
        account(for: segment)
    }

    private mutating func account(for segment: Segment) {
        length += segment.count
        if segment.deflated == nil { isGzipValid = false }
        crc = CZlib.crc32_combine_op(crc, segment.crc, segment.combineOperator)
    }

    /// The body, as slices of `writer`'s finished buffers and the own segments' bytes.
    func body(over writer: BodyWriter) -> RenderedExposition.Body {
        var plain: [ByteBuffer] = []
        var gzip: [ByteBuffer] = []
        let gzipValid = isGzipValid && writer.isGzipValid
        for piece in pieces {
            switch piece {
            case .shared(let plainRange, let deflatedRange):
                if !plainRange.isEmpty, let slice = writer.plain.getSlice(at: plainRange.lowerBound, length: plainRange.count) {
                    plain.append(slice)
                }
                if gzipValid, !deflatedRange.isEmpty,
                    let slice = writer.gzip.getSlice(at: deflatedRange.lowerBound, length: deflatedRange.count)
                {
                    gzip.append(slice)
                }
            case .own(let segment):
                plain.append(segment.plain)
                if gzipValid, let deflated = segment.deflated { gzip.append(deflated) }
            }
        }
        return RenderedExposition.Body(plain: plain, gzipPrefix: gzipValid ? gzip : [], crc: crc, length: length)
    }
}
