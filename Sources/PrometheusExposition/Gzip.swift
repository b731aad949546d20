import CZlib
import NIOCore

/// gzip in two parts, so a large body is compressed once per snapshot while a small tail that
/// changes on every scrape (process metrics, snapshot age) is compressed per scrape.
///
/// The prefix is a gzip header plus deflate blocks ended by a full flush: byte-aligned, not
/// final, with no back-references beyond it. The tail follows as stored (uncompressed) deflate
/// blocks, the last one final, in the same gzip member; the trailer's CRC-32 is combined from
/// both parts' CRCs. The result is one ordinary gzip member that any decoder reads.
public struct GzipPrefix: Sendable {
    public let compressed: [UInt8]
    let crc: UInt
    let length: Int

    /// Compresses `bytes` as the start of a gzip member.
    public init(compressing bytes: [UInt8], level: Int32 = 6) {
        // windowBits 16 + 15: a gzip wrapper around a 32 KiB-window deflate stream.
        compressed = Self.deflate(bytes, windowBits: 31, level: level, flush: Z_FULL_FLUSH)
        crc = crc32(of: bytes)
        length = bytes.count
    }

    /// What follows ``compressed`` to make the complete gzip member for prefix + `tail`: the
    /// tail's deflate blocks and the gzip trailer.
    public func completion(for tail: [UInt8]) -> [UInt8] {
        Self.completion(prefixCRC: crc, prefixLength: length, tail: tail)
    }

    /// The completion for any prefix whose uncompressed bytes have CRC-32 `prefixCRC` and
    /// length `prefixLength`, however the prefix was built.
    static func completion(prefixCRC: UInt, prefixLength: Int, tail: [UInt8]) -> [UInt8] {
        var output: [UInt8] = []
        // Stored blocks, not a deflate stream of its own: the tail is a few KB of process
        // metrics that change on every scrape, and setting up a zlib stream for them (hundreds
        // of KB of state allocated and cleared) cost more per scrape than sending them plain.
        let blockLimit = Int(UInt16.max)
        output.reserveCapacity(tail.count + (tail.count / blockLimit + 1) * 5 + 8)
        var start = 0
        repeat {
            let length = min(blockLimit, tail.count - start)
            let isLast = start + length == tail.count
            // BFINAL on the last block, BTYPE 00 (stored); then LEN and its complement, little-endian.
            output.append(isLast ? 0x01 : 0x00)
            output.append(UInt8(truncatingIfNeeded: length))
            output.append(UInt8(truncatingIfNeeded: length >> 8))
            output.append(~UInt8(truncatingIfNeeded: length))
            output.append(~UInt8(truncatingIfNeeded: length >> 8))
            output.append(contentsOf: tail[start..<(start + length)])
            start += length
        } while start < tail.count
        let tailCRC = tail.withUnsafeBufferPointer { CZlib.crc32(0, $0.baseAddress, uInt($0.count)) }
        let combined = UInt32(truncatingIfNeeded: CZlib.crc32_combine(prefixCRC, tailCRC, off_t(tail.count)))
        let totalLength = UInt32(truncatingIfNeeded: prefixLength + tail.count)  // ISIZE is the length mod 2^32
        for shift in stride(from: 0, to: 32, by: 8) { output.append(UInt8(truncatingIfNeeded: combined >> shift)) }
        for shift in stride(from: 0, to: 32, by: 8) { output.append(UInt8(truncatingIfNeeded: totalLength >> shift)) }
        return output
    }

    /// A gzip member header as zlib writes it: deflate, no name or time, OS "Unix". The
    /// segment path writes it itself, then appends independently compressed raw segments.
    static let header: [UInt8] = [0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0x03]

    private static func deflate(_ input: [UInt8], windowBits: Int32, level: Int32, flush: Int32) -> [UInt8] {
        var stream = z_stream()
        guard czlib_deflate_init2(&stream, level, windowBits, 8) == Z_OK else {
            // Only a memory failure gets here; an empty result makes the server fall back to
            // an uncompressed response rather than sending a broken stream.
            return []
        }
        defer { CZlib.deflateEnd(&stream) }
        var output = [UInt8](repeating: 0, count: Int(deflateBound(&stream, uLong(input.count))) + 64)
        var input = input
        let produced = input.withUnsafeMutableBufferPointer { inputBuffer in
            output.withUnsafeMutableBufferPointer { outputBuffer -> Int in
                stream.next_in = inputBuffer.baseAddress
                stream.avail_in = uInt(inputBuffer.count)
                stream.next_out = outputBuffer.baseAddress
                stream.avail_out = uInt(outputBuffer.count)
                let status = CZlib.deflate(&stream, flush)
                guard status == Z_OK || status == Z_STREAM_END, stream.avail_in == 0 else { return -1 }
                return outputBuffer.count - Int(stream.avail_out)
            }
        }
        guard produced >= 0 else { return [] }
        output.removeSubrange(produced...)
        return output
    }
}

/// Compresses many small pieces one after the other with one zlib stream, reset between them,
/// so each piece is a self-contained run of raw deflate blocks: byte-aligned (ended by a sync
/// flush), not final, with no back-reference to anything before it. Any such pieces can later
/// be concatenated, in any order, into one valid deflate stream.
///
/// `~Copyable` because it owns the zlib state, which points back at the `z_stream` (so the
/// stream lives at a fixed heap address, never in a Swift variable that may move).
struct SegmentDeflater: ~Copyable {
    private let stream: UnsafeMutablePointer<z_stream>
    private let level: Int32
    /// nil until the first non-empty input: zlib's state is a few hundred KiB, worth setting
    /// up only when there is something to compress.
    private var isReady: Bool?

    init(level: Int32) {
        self.level = level
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
    }

    deinit {
        if isReady == true { CZlib.deflateEnd(stream) }
        stream.deinitialize(count: 1)
        stream.deallocate()
    }

    /// The raw deflate blocks for `bytes`, or nil if zlib failed (only on memory exhaustion);
    /// empty input gives empty output, since it adds nothing to the stream.
    mutating func compress(_ bytes: [UInt8]) -> ByteBuffer? {
        guard !bytes.isEmpty else { return ByteBuffer() }
        let stream = self.stream
        if isReady == nil { isReady = czlib_deflate_init2(stream, level, -15, 8) == Z_OK }
        guard isReady == true, CZlib.deflateReset(stream) == Z_OK else { return nil }
        // The bound is for one Z_FINISH call; a sync flush adds at most an empty stored block.
        let bound = Int(CZlib.deflateBound(stream, uLong(bytes.count))) + 64
        var output = ByteBuffer()
        var failed = false
        _ = bytes.withUnsafeBufferPointer { input in
            output.writeWithUnsafeMutableBytes(minimumWritableBytes: bound) { buffer in
                stream.pointee.next_in = UnsafeMutablePointer(mutating: input.baseAddress)
                stream.pointee.avail_in = uInt(input.count)
                stream.pointee.next_out = buffer.baseAddress?.assumingMemoryBound(to: Bytef.self)
                stream.pointee.avail_out = uInt(buffer.count)
                let status = CZlib.deflate(stream, Z_SYNC_FLUSH)
                // A flush is complete only if zlib had room left over; the bound guarantees it.
                guard status == Z_OK, stream.pointee.avail_in == 0, stream.pointee.avail_out > 0 else {
                    failed = true
                    return 0
                }
                return buffer.count - Int(stream.pointee.avail_out)
            }
        }
        stream.pointee.next_in = nil
        stream.pointee.next_out = nil
        return failed ? nil : output
    }
}

/// The CRC-32 of `bytes`, as zlib and the gzip trailer compute it.
func crc32(of bytes: [UInt8]) -> UInt {
    bytes.withUnsafeBufferPointer { CZlib.crc32(0, $0.baseAddress, uInt($0.count)) }
}
