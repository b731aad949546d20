import RFC3339

/// A single-pass decoder for list pages, straight from the UTF-8 bytes into ``BatchListPage``.
///
/// JSONDecoder spends most of a full poll's CPU building intermediate values for 100,000
/// batches; this reads only the keys the exporter uses and skips the rest without allocating.
/// It accepts exactly what the general decoder would and otherwise gives up (`nil`): the caller
/// then runs the general decoder, which either succeeds or says precisely what is wrong. Tests
/// hold the two to the same answer on real pages and on mutated ones.
struct FastPageDecoder {
    private let bytes: UnsafeBufferPointer<UInt8>
    private var index = 0
    private var depth = 0

    private struct GiveUp: Error {}

    static func decode(_ bytes: [UInt8]) -> BatchListPage? {
        bytes.withUnsafeBufferPointer { buffer in
            var decoder = FastPageDecoder(bytes: buffer)
            return try? decoder.page()
        }
    }

    private init(bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    // MARK: The page's shape

    private mutating func page() throws(GiveUp) -> BatchListPage {
        var data: [MessageBatch]?
        var hasMore: Bool?
        var firstID: String?
        var lastID: String?
        try object { decoder, key throws(GiveUp) in
            switch key {
            case "data":
                var batches: [MessageBatch] = []
                try decoder.array { decoder throws(GiveUp) in batches.append(try decoder.batch()) }
                data = batches
            case "has_more": hasMore = try decoder.bool()
            case "first_id": firstID = try decoder.optionalString()
            case "last_id": lastID = try decoder.optionalString()
            default: try decoder.skipValue()
            }
        }
        skipWhitespace()
        guard index == bytes.count, let data, let hasMore else { throw GiveUp() }
        return BatchListPage(data: data, hasMore: hasMore, firstID: firstID, lastID: lastID)
    }

    private mutating func batch() throws(GiveUp) -> MessageBatch {
        var id: String?
        var status: String?
        var counts: RequestCounts?
        var created, expires, ended, cancelInitiated, archived: Double?
        var resultsURL: String?
        try object { decoder, key throws(GiveUp) in
            switch key {
            case "id": id = try decoder.string()
            case "processing_status": status = try decoder.string()
            case "request_counts": counts = try decoder.requestCounts()
            case "created_at": created = try decoder.timestamp()
            case "expires_at": expires = try decoder.timestamp()
            case "ended_at": ended = try decoder.timestamp()
            case "cancel_initiated_at": cancelInitiated = try decoder.timestamp()
            case "archived_at": archived = try decoder.timestamp()
            case "results_url": resultsURL = try decoder.optionalString()
            default: try decoder.skipValue()
            }
        }
        guard let id, let status, let counts else { throw GiveUp() }
        return MessageBatch(
            id: id,
            processingStatus: ProcessingStatus(rawValue: status),
            requestCounts: counts,
            createdAt: created,
            expiresAt: expires,
            endedAt: ended,
            cancelInitiatedAt: cancelInitiated,
            archivedAt: archived,
            resultsURL: resultsURL
        )
    }

    private mutating func requestCounts() throws(GiveUp) -> RequestCounts {
        var counts = RequestCounts()
        try object { decoder, key throws(GiveUp) in
            switch key {
            case "processing": counts.processing = try decoder.optionalInteger() ?? 0
            case "succeeded": counts.succeeded = try decoder.optionalInteger() ?? 0
            case "errored": counts.errored = try decoder.optionalInteger() ?? 0
            case "canceled": counts.canceled = try decoder.optionalInteger() ?? 0
            case "expired": counts.expired = try decoder.optionalInteger() ?? 0
            default: try decoder.skipValue()
            }
        }
        return counts
    }

    /// A timestamp string, null, or absent; a string that is not RFC 3339 reads as nil, as the
    /// general decoder treats it.
    private mutating func timestamp() throws(GiveUp) -> Double? {
        skipWhitespace()
        if try literal("null") { return nil }
        let (start, end, escaped) = try stringBounds()
        if escaped { return try RFC3339.parse(decodeString(start, end)) }
        return RFC3339.parse(utf8: UnsafeBufferPointer(rebasing: bytes[start..<end]))
    }

    /// An object key, compared by bytes with the names the decoder knows.
    struct Key {
        let bytes: UnsafeBufferPointer<UInt8>

        static func ~= (name: StaticString, key: Key) -> Bool {
            name.withUTF8Buffer { $0.elementsEqual(key.bytes) }
        }
    }

    // MARK: JSON grammar

    /// Calls `member` for each key, as raw bytes: keys are compared, never turned into Strings.
    /// A key with escapes is left to the general decoder.
    private mutating func object(_ member: (inout FastPageDecoder, Key) throws(GiveUp) -> Void) throws(GiveUp) {
        try enter()
        defer { depth -= 1 }
        skipWhitespace()
        try expect(UInt8(ascii: "{"))
        skipWhitespace()
        if peek() == UInt8(ascii: "}") {
            index += 1
            return
        }
        while true {
            skipWhitespace()
            let (start, end, escaped) = try stringBounds()
            guard !escaped else { throw GiveUp() }
            let key = Key(bytes: UnsafeBufferPointer(rebasing: bytes[start..<end]))
            skipWhitespace()
            try expect(UInt8(ascii: ":"))
            try member(&self, key)
            skipWhitespace()
            if peek() == UInt8(ascii: ",") {
                index += 1
                continue
            }
            try expect(UInt8(ascii: "}"))
            return
        }
    }

    private mutating func array(_ element: (inout FastPageDecoder) throws(GiveUp) -> Void) throws(GiveUp) {
        try enter()
        defer { depth -= 1 }
        skipWhitespace()
        try expect(UInt8(ascii: "["))
        skipWhitespace()
        if peek() == UInt8(ascii: "]") {
            index += 1
            return
        }
        while true {
            skipWhitespace()
            try element(&self)
            skipWhitespace()
            if peek() == UInt8(ascii: ",") {
                index += 1
                continue
            }
            try expect(UInt8(ascii: "]"))
            return
        }
    }

    private mutating func skipValue() throws(GiveUp) {
        skipWhitespace()
        switch peek() {
        case UInt8(ascii: "{"): try object { decoder, _ throws(GiveUp) in try decoder.skipValue() }
        case UInt8(ascii: "["): try array { decoder throws(GiveUp) in try decoder.skipValue() }
        case UInt8(ascii: "\""): _ = try stringBounds()
        case UInt8(ascii: "t"): guard try literal("true") else { throw GiveUp() }
        case UInt8(ascii: "f"): guard try literal("false") else { throw GiveUp() }
        case UInt8(ascii: "n"): guard try literal("null") else { throw GiveUp() }
        default: try skipNumber()
        }
    }

    private mutating func string() throws(GiveUp) -> String {
        skipWhitespace()
        let (start, end, escaped) = try stringBounds()
        return escaped ? try decodeString(start, end) : String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self)
    }

    private mutating func optionalString() throws(GiveUp) -> String? {
        skipWhitespace()
        return try literal("null") ? nil : try string()
    }

    private mutating func bool() throws(GiveUp) -> Bool {
        skipWhitespace()
        if try literal("true") { return true }
        if try literal("false") { return false }
        throw GiveUp()
    }

    /// A plain integer (`-?[0-9]+`) or null. Fractions and exponents are left to the general
    /// decoder, whose rules for them this does not repeat.
    private mutating func optionalInteger() throws(GiveUp) -> Int? {
        skipWhitespace()
        if try literal("null") { return nil }
        var negative = false
        if peek() == UInt8(ascii: "-") {
            negative = true
            index += 1
        }
        let start = index
        var value = 0
        while let byte = peek(), byte >= 48, byte <= 57 {
            let (times, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times.addingReportingOverflow(Int(byte - 48))
            guard !overflow1, !overflow2 else { throw GiveUp() }
            value = sum
            index += 1
        }
        let digits = index - start
        guard digits > 0, !(digits > 1 && bytes[start] == 48) else { throw GiveUp() }
        if let next = peek(), next == UInt8(ascii: ".") || next == UInt8(ascii: "e") || next == UInt8(ascii: "E") { throw GiveUp() }
        return negative ? -value : value
    }

    private mutating func skipNumber() throws(GiveUp) {
        let start = index
        while let byte = peek(),
            (byte >= 48 && byte <= 57) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "+")
                || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E")
        {
            index += 1
        }
        guard index > start, Double(String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)) != nil
        else { throw GiveUp() }
        // Double() accepts spellings JSON does not ("1.", ".5", "+1", "01"): leave those to the
        // general decoder rather than guess.
        let first = bytes[start]
        let last = bytes[index - 1]
        guard first != UInt8(ascii: "+"), first != UInt8(ascii: "."), last >= 48, last <= 57 else { throw GiveUp() }
        let digitsStart = first == UInt8(ascii: "-") ? start + 1 : start
        guard digitsStart < index, bytes[digitsStart] >= 48, bytes[digitsStart] <= 57 else { throw GiveUp() }
        if bytes[digitsStart] == 48, digitsStart + 1 < index, bytes[digitsStart + 1] >= 48, bytes[digitsStart + 1] <= 57 { throw GiveUp() }
        var previous: UInt8 = 0
        for position in start..<index {
            let byte = bytes[position]
            if byte == UInt8(ascii: ".") && !(previous >= 48 && previous <= 57) { throw GiveUp() }
            previous = byte
        }
    }

    /// The content bounds of the string at `index` (which must be its opening quote), and
    /// whether it holds escapes. Control characters inside a string are not JSON.
    private mutating func stringBounds() throws(GiveUp) -> (Int, Int, Bool) {
        try expect(UInt8(ascii: "\""))
        let start = index
        var escaped = false
        var nonASCII = false
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                index += 1
                // JSON text is UTF-8; the general decoder refuses malformed sequences, so must this.
                if nonASCII, String(validating: UnsafeBufferPointer(rebasing: bytes[start..<index - 1]), as: UTF8.self) == nil {
                    throw GiveUp()
                }
                // Escapes are rare: check them fully (even in skipped values), as the general
                // decoder would.
                if escaped { _ = try decodeString(start, index - 1) }
                return (start, index - 1, escaped)
            }
            if byte >= 0x80 { nonASCII = true }
            if byte < 0x20 { throw GiveUp() }
            if byte == UInt8(ascii: "\\") {
                escaped = true
                index += 2
                continue
            }
            index += 1
        }
        throw GiveUp()
    }

    /// Decodes a string with escapes.
    private func decodeString(_ start: Int, _ end: Int) throws(GiveUp) -> String {
        var scalars = String.UnicodeScalarView()
        var utf8: [UInt8] = []
        var position = start
        func flush() {
            scalars.append(contentsOf: String(decoding: utf8, as: UTF8.self).unicodeScalars)
            utf8.removeAll(keepingCapacity: true)
        }
        func hex4(_ at: Int) throws(GiveUp) -> UInt32 {
            guard at + 4 <= end else { throw GiveUp() }
            var value: UInt32 = 0
            for offset in 0..<4 {
                let byte = bytes[at + offset]
                let digit: UInt32
                switch byte {
                case 48...57: digit = UInt32(byte - 48)
                case 65...70: digit = UInt32(byte - 55)
                case 97...102: digit = UInt32(byte - 87)
                default: throw GiveUp()
                }
                value = value << 4 | digit
            }
            return value
        }
        while position < end {
            let byte = bytes[position]
            guard byte == UInt8(ascii: "\\") else {
                utf8.append(byte)
                position += 1
                continue
            }
            guard position + 1 < end else { throw GiveUp() }
            let escape = bytes[position + 1]
            position += 2
            switch escape {
            case UInt8(ascii: "\""): utf8.append(0x22)
            case UInt8(ascii: "\\"): utf8.append(0x5C)
            case UInt8(ascii: "/"): utf8.append(0x2F)
            case UInt8(ascii: "b"): utf8.append(0x08)
            case UInt8(ascii: "f"): utf8.append(0x0C)
            case UInt8(ascii: "n"): utf8.append(0x0A)
            case UInt8(ascii: "r"): utf8.append(0x0D)
            case UInt8(ascii: "t"): utf8.append(0x09)
            case UInt8(ascii: "u"):
                var code = try hex4(position)
                position += 4
                if (0xD800...0xDBFF).contains(code) {
                    // A high surrogate must be followed by an escaped low one.
                    guard position + 6 <= end, bytes[position] == UInt8(ascii: "\\"), bytes[position + 1] == UInt8(ascii: "u") else { throw GiveUp() }
                    let low = try hex4(position + 2)
                    guard (0xDC00...0xDFFF).contains(low) else { throw GiveUp() }
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    position += 6
                }
                guard let scalar = Unicode.Scalar(code) else { throw GiveUp() }
                flush()
                scalars.append(scalar)
            default:
                throw GiveUp()
            }
        }
        flush()
        return String(scalars)
    }

    private mutating func literal(_ word: StaticString) throws(GiveUp) -> Bool {
        let count = word.utf8CodeUnitCount
        guard index + count <= bytes.count else { return false }
        let matches = word.withUTF8Buffer { expected in
            (0..<count).allSatisfy { bytes[index + $0] == expected[$0] }
        }
        guard matches else { return false }
        index += count
        // "nullx" or "true1" are not literals.
        if let next = peek(), (next >= 97 && next <= 122) || (next >= 48 && next <= 57) { throw GiveUp() }
        return true
    }

    private mutating func expect(_ byte: UInt8) throws(GiveUp) {
        guard peek() == byte else { throw GiveUp() }
        index += 1
    }

    private func peek() -> UInt8? {
        index < bytes.count ? bytes[index] : nil
    }

    private mutating func skipWhitespace() {
        while let byte = peek(), byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 { index += 1 }
    }

    private mutating func enter() throws(GiveUp) {
        depth += 1
        // Deeply nested unknown fields are left to the general decoder.
        guard depth <= 64 else { throw GiveUp() }
    }
}
