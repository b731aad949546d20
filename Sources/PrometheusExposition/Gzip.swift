import CZlib

/// gzip in two parts, so a large body is compressed once per snapshot while a small tail that
/// changes on every scrape (process metrics, snapshot age) is compressed per scrape.
///
/// The prefix is a gzip header plus deflate blocks ended by a full flush: byte-aligned, not
/// final, with no back-references beyond it. A separate raw deflate stream for the tail, ended
/// with a final block, then continues the same gzip member; the trailer's CRC-32 is combined
/// from both parts' CRCs. The result is one ordinary gzip member that any decoder reads.
public struct GzipPrefix: Sendable {
    public let compressed: [UInt8]
    let crc: UInt
    let length: Int

    /// Compresses `bytes` as the start of a gzip member.
    public init(compressing bytes: [UInt8], level: Int32 = 6) {
        // windowBits 16 + 15: a gzip wrapper around a 32 KiB-window deflate stream.
        compressed = Self.deflate(bytes, windowBits: 31, level: level, flush: Z_FULL_FLUSH)
        crc = bytes.withUnsafeBufferPointer { buffer in
            CZlib.crc32(0, buffer.baseAddress, uInt(buffer.count))
        }
        length = bytes.count
    }

    /// What follows ``compressed`` to make the complete gzip member for prefix + `tail`: the
    /// tail's deflate blocks and the gzip trailer.
    public func completion(for tail: [UInt8]) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(tail.count / 2 + 64)
        // A raw stream (negative windowBits): no second header, the prefix's header stands.
        output.append(contentsOf: Self.deflate(tail, windowBits: -15, level: 1, flush: Z_FINISH))
        let tailCRC = tail.withUnsafeBufferPointer { CZlib.crc32(0, $0.baseAddress, uInt($0.count)) }
        let combined = UInt32(truncatingIfNeeded: CZlib.crc32_combine(crc, tailCRC, off_t(tail.count)))
        let totalLength = UInt32(truncatingIfNeeded: length + tail.count)  // ISIZE is the length mod 2^32
        for shift in stride(from: 0, to: 32, by: 8) { output.append(UInt8(truncatingIfNeeded: combined >> shift)) }
        for shift in stride(from: 0, to: 32, by: 8) { output.append(UInt8(truncatingIfNeeded: totalLength >> shift)) }
        return output
    }

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
