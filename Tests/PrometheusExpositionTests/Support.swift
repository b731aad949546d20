import CZlib
import Foundation
import Synchronization
import Testing

struct InflateError: Error, CustomStringConvertible {
    let description: String
}

/// Inflates exactly one complete gzip member with zlib (CRC-32 and length are checked by zlib),
/// and fails if anything follows the member.
func gunzip(_ bytes: [UInt8]) throws -> [UInt8] {
    var stream = z_stream()
    guard czlib_inflate_init2(&stream, 31) == Z_OK else { throw InflateError(description: "inflateInit2 failed") }
    defer { inflateEnd(&stream) }
    var input = bytes
    var output: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 64 * 1024)
    let status: Int32 = input.withUnsafeMutableBufferPointer { inputBuffer in
        stream.next_in = inputBuffer.baseAddress
        stream.avail_in = uInt(inputBuffer.count)
        while true {
            let (status, produced) = chunk.withUnsafeMutableBufferPointer { chunkBuffer -> (Int32, Int) in
                stream.next_out = chunkBuffer.baseAddress
                stream.avail_out = uInt(chunkBuffer.count)
                let status = inflate(&stream, Z_NO_FLUSH)
                return (status, chunkBuffer.count - Int(stream.avail_out))
            }
            output.append(contentsOf: chunk[0..<produced])
            if status != Z_OK { return status }
        }
    }
    guard status == Z_STREAM_END else { throw InflateError(description: "inflate returned \(status)") }
    guard stream.avail_in == 0 else { throw InflateError(description: "\(stream.avail_in) bytes after the gzip member") }
    return output
}

struct ProcessResult {
    var status: Int32
    var stdout: [UInt8]
    var stderr: [UInt8]
}

/// Runs a program found on PATH, feeding `stdin`, and collects its output.
func run(_ arguments: [String], stdin: [UInt8] = []) throws -> ProcessResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    let input = Pipe()
    let output = Pipe()
    let errors = Pipe()
    process.standardInput = input
    process.standardOutput = output
    process.standardError = errors
    try process.run()
    // Write stdin from another thread so a large input cannot deadlock against full output pipes.
    let writer = input.fileHandleForWriting
    let stdinData = Data(stdin)
    let writerDone = DispatchSemaphore(value: 0)
    DispatchQueue.global().async {
        writer.write(stdinData)
        try? writer.close()
        writerDone.signal()
    }
    let errorData = LockedData()
    let errorsDone = DispatchSemaphore(value: 0)
    let errorHandle = errors.fileHandleForReading
    DispatchQueue.global().async {
        errorData.set(errorHandle.readDataToEndOfFile())
        errorsDone.signal()
    }
    let outputData = output.fileHandleForReading.readDataToEndOfFile()
    errorsDone.wait()
    writerDone.wait()
    process.waitUntilExit()
    return ProcessResult(status: process.terminationStatus, stdout: Array(outputData), stderr: Array(errorData.get()))
}

/// Data handed from the stderr-reading thread back to the caller.
final class LockedData: Sendable {
    private let data = Mutex(Data())
    func set(_ newValue: Data) { data.withLock { $0 = newValue } }
    func get() -> Data { data.withLock { $0 } }
}

/// Deterministic text that compresses like a real exposition (repetitive but not trivially so).
func pseudoRandomText(bytes count: Int, seed: UInt64) -> [UInt8] {
    let words = ["anthropic", "batch", "request", "succeeded", "errored", "expired", "canceled", "workspace", "{", "}", "=", "\"", "\n", " ", "0.5", "1e+21"]
    var state = seed
    var output: [UInt8] = []
    output.reserveCapacity(count + 16)
    while output.count < count {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        let pick = Int(truncatingIfNeeded: state >> 33)
        output.append(contentsOf: words[pick % words.count].utf8)
        if pick & 0x30 == 0 { output.append(UInt8(truncatingIfNeeded: state >> 20) & 0x5f | 0x20) }
    }
    return Array(output.prefix(count))
}
