import Basics
import BatchesAPI

#if canImport(Glibc)
import Glibc
#endif

// Measures the results scanner (ResultsLineScanner + ResultsTally) on one core:
//   results-bench throughput [MB]   scan MB of realistic JSON Lines held in memory, print MiB/s
//   results-bench stream [GB]       stream GB generated on the fly, print RSS before/after
// With no arguments, both (64 MB, then 1 GB).

/// A deterministic generator, so runs compare.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

let words = [
    "the", "batch", "model", "returned", "a", "summary", "of", "quarterly", "results", "with", "tables", "and",
    "notes", "\\n", "\\\"quoted\\\"", "caf\\u00e9", "数据", "🙂", "{json}", "[1,2]",
]

func text(_ length: Int, _ random: inout SplitMix) -> String {
    var out = ""
    out.reserveCapacity(length + 16)
    while out.utf8.count < length {
        out += words[Int(random.next() % UInt64(words.count))]
        out += " "
    }
    return out
}

/// One results line: mostly succeeded messages of 1-3 KB, some errored/canceled/expired,
/// and now and then a very long one (a 128k-token answer is ~500 KB of text).
func line(_ index: Int, _ random: inout SplitMix) -> String {
    let roll = random.next() % 100
    if roll < 5 {
        return
            #"{"custom_id":"req-\#(index)","result":{"type":"errored","error":{"type":"error","error":{"type":"invalid_request_error","message":"\#(text(80, &random))"},"request_id":"req_011CSHoEeqs5C35K2UUqR7Fy"}}}"#
    }
    if roll < 7 { return #"{"custom_id":"req-\#(index)","result":{"type":"canceled"}}"# }
    if roll < 9 { return #"{"custom_id":"req-\#(index)","result":{"type":"expired"}}"# }
    let long = random.next() % 1000 == 0
    let body = text(long ? 600_000 : Int(700 + random.next() % 2000), &random)
    let model = ["claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001", "claude-opus-4-1-20250805"][Int(random.next() % 3)]
    let stop = ["end_turn", "end_turn", "end_turn", "max_tokens", "tool_use"][Int(random.next() % 5)]
    return
        #"{"custom_id":"req-\#(index)","result":{"type":"succeeded","message":{"id":"msg_01\#(index)","type":"message","role":"assistant","model":"\#(model)","content":[{"type":"thinking","thinking":"\#(text(120, &random))","signature":"EqQBCkYIBxgCKkBAxw"},{"type":"text","text":"\#(body)"}],"stop_reason":"\#(stop)","stop_sequence":null,"usage":{"input_tokens":\#(random.next() % 5000),"cache_creation_input_tokens":\#(random.next() % 300),"cache_read_input_tokens":\#(random.next() % 2000),"cache_creation":{"ephemeral_5m_input_tokens":\#(random.next() % 200),"ephemeral_1h_input_tokens":\#(random.next() % 100)},"output_tokens":\#(random.next() % 4000),"server_tool_use":{"web_search_requests":\#(random.next() % 3),"web_fetch_requests":0},"service_tier":"batch"}}}}"#
}

func block(bytes target: Int, seed: UInt64) -> (bytes: [UInt8], lines: Int) {
    var random = SplitMix(state: seed)
    var out: [UInt8] = []
    out.reserveCapacity(target + 1_000_000)
    var count = 0
    while out.count < target {
        out.append(contentsOf: line(count, &random).utf8)
        out.append(0x0A)
        count += 1
    }
    return (out, count)
}

/// Feeds `bytes` in 64 KiB chunks, as a transfer would deliver them.
func scan(_ bytes: [UInt8], into stream: inout ResultsStreamTally) {
    bytes.withUnsafeBytes { all in
        var offset = 0
        while offset < all.count {
            let end = min(all.count, offset + 65_536)
            stream.feed(UnsafeRawBufferPointer(rebasing: all[offset..<end]))
            offset = end
        }
    }
}

func status(_ field: String) -> String {
    guard let file = fopen("/proc/self/status", "r") else { return "?" }
    defer { fclose(file) }
    var buffer = [CChar](repeating: 0, count: 512)
    while fgets(&buffer, Int32(buffer.count), file) != nil {
        let line = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if line.hasPrefix(field + ":") {
            return String(line.dropFirst(field.count + 1).drop { $0 == " " || $0 == "\t" }.filter { $0 != "\n" })
        }
    }
    return "?"
}

func kilobytes(_ field: String) -> Int {
    Int(field.split(separator: " ").first ?? "") ?? 0
}

func throughput(megabytes: Int) {
    let data = block(bytes: megabytes << 20, seed: 1)
    let mb = Double(data.bytes.count) / 1_048_576
    print("throughput: \(data.lines) lines, \(String(format2: mb)) MB in memory, 64 KiB chunks, one core")
    var best = 0.0
    for run in 1...5 {
        var stream = ResultsStreamTally()
        let start = ContinuousClock.now
        scan(data.bytes, into: &stream)
        let tally = stream.finish()
        let elapsed = (ContinuousClock.now - start).inSeconds
        precondition(tally.lines == data.lines && tally.malformedLines == 0, "scanner disagrees with the generator")
        let rate = mb / elapsed
        best = max(best, rate)
        print("  run \(run): \(String(format2: elapsed * 1000)) ms, \(String(format2: rate)) MiB/s (\(tally.totalTokens) tokens counted)")
    }
    print("throughput best: \(String(format2: best)) MiB/s = \(String(format2: best * 1.048576)) MB/s (target >= 200 MB/s)")
}

func stream(gigabytes: Double) {
    // Eight distinct 8 MiB blocks, cycled: generated once, so the figure is the scanner's.
    let blocks = (0..<8).map { block(bytes: 8 << 20, seed: UInt64($0) + 10) }
    let target = UInt64(gigabytes * 1_073_741_824)
    print("stream: VmRSS before \(status("VmRSS")), VmHWM before \(status("VmHWM"))")
    let rssBefore = kilobytes(status("VmRSS"))
    let hwmBefore = kilobytes(status("VmHWM"))
    var stream = ResultsStreamTally()
    var total: UInt64 = 0
    var lines = 0
    var index = 0
    let start = ContinuousClock.now
    while total < target {
        let block = blocks[index % blocks.count]
        scan(block.bytes, into: &stream)
        total += UInt64(block.bytes.count)
        lines += block.lines
        index += 1
    }
    let tally = stream.finish()
    let elapsed = (ContinuousClock.now - start).inSeconds
    precondition(tally.lines == lines && tally.malformedLines == 0, "scanner disagrees with the generator")
    print(
        "stream: \(String(format2: Double(total) / 1_073_741_824)) GiB, \(lines) lines in \(String(format2: elapsed)) s (\(String(format2: Double(total) / 1_048_576 / elapsed)) MiB/s)"
    )
    // The blocks stay alive until here, so the difference is the scanner's and the tally's.
    withExtendedLifetime(blocks) {
        let rss = status("VmRSS")
        let hwm = status("VmHWM")
        print("stream: VmRSS after \(rss), VmHWM after \(hwm)")
        print("stream: RSS growth \(kilobytes(rss) - rssBefore) kB, peak (VmHWM) growth \(kilobytes(hwm) - hwmBefore) kB (target <= 10240 kB)")
    }
}

extension String {
    init(format2 value: Double) {
        let scaled = (value * 100).rounded()
        let whole = Int(scaled / 100)
        let cents = Int(abs(scaled).truncatingRemainder(dividingBy: 100))
        self = "\(whole).\(cents < 10 ? "0" : "")\(cents)"
    }
}

let arguments = Array(CommandLine.arguments.dropFirst())
switch arguments.first {
case "throughput": throughput(megabytes: arguments.dropFirst().first.flatMap(Int.init) ?? 64)
case "stream": stream(gigabytes: arguments.dropFirst().first.flatMap(Double.init) ?? 1)
case nil:
    throughput(megabytes: 64)
    stream(gigabytes: 1)
default:
    print("usage: results-bench [throughput [MB] | stream [GB]]")
}
