/// What one results line says, reduced to the fields the exporter counts. Everything else on
/// the line (custom ids, prompts, model output) is skipped byte by byte and never stored.
public struct ResultsLine: Sendable, Equatable {
    /// `result.type`.
    public var resultType = CapturedString()
    /// `result.error.error.type`.
    public var errorType = CapturedString()
    /// `result.message` was an object (a succeeded request's Message).
    public var hasMessage = false
    /// `result.message.model`.
    public var model = CapturedString()
    /// `result.message.stop_reason`.
    public var stopReason = CapturedString()
    /// `result.message.usage.*`; `nil` when absent, null, negative, fractional or not a number.
    public var inputTokens: Int?
    public var outputTokens: Int?
    public var cacheCreationInputTokens: Int?
    public var cacheReadInputTokens: Int?
    /// `result.message.usage.cache_creation.ephemeral_5m_input_tokens` / `_1h_`.
    public var ephemeral5mInputTokens: Int?
    public var ephemeral1hInputTokens: Int?
    /// `result.message.usage.server_tool_use.web_search_requests`.
    public var webSearchRequests: Int?

    public init() {}

    mutating func reset() {
        resultType.reset()
        errorType.reset()
        model.reset()
        stopReason.reset()
        resetMessage()
    }

    mutating func resetMessage() {
        hasMessage = false
        model.reset()
        stopReason.reset()
        resetUsage()
    }

    mutating func resetUsage() {
        inputTokens = nil
        outputTokens = nil
        cacheCreationInputTokens = nil
        cacheReadInputTokens = nil
        resetCacheCreation()
        webSearchRequests = nil
    }

    mutating func resetCacheCreation() {
        ephemeral5mInputTokens = nil
        ephemeral1hInputTokens = nil
    }
}

/// A short string value taken from a results line, decoded (escapes resolved) into at most
/// ``ResultsLineScanner/captureLimit`` bytes. Longer values are marked `truncated`: they are
/// identifiers that went wrong, and are counted under `other`, never as a cut-off prefix.
public struct CapturedString: Sendable, Equatable {
    /// The decoded UTF-8 bytes (empty unless `isPresent`).
    public private(set) var bytes: [UInt8] = []
    /// The value was a JSON string (not absent, null or another type).
    public private(set) var isPresent = false
    public private(set) var truncated = false

    public init() {}

    /// For tests and callers that build lines by hand.
    public init(_ value: String?) {
        if let value {
            isPresent = true
            bytes = Array(value.utf8)
        }
    }

    /// The value as a String; `nil` when absent; `"other"` when it was longer than the limit.
    public var string: String? {
        guard isPresent else { return nil }
        return truncated ? "other" : String(decoding: bytes, as: UTF8.self)
    }

    mutating func reset() {
        if !bytes.isEmpty { bytes.removeAll(keepingCapacity: true) }
        isPresent = false
        truncated = false
    }

    mutating func begin() {
        reset()
        isPresent = true
    }

    @inline(__always)
    mutating func append(_ byte: UInt8) {
        if bytes.count < ResultsLineScanner.captureLimit {
            bytes.append(byte)
        } else {
            truncated = true
        }
    }
}

/// A streaming scanner for Message Batches results (JSON Lines), fed chunks of any size cut at
/// any byte (inside a string, an escape or a number), that hands back one ``ResultsLine`` per
/// line.
///
/// Memory is constant whatever the line length or file size: values the exporter does not
/// count are skipped by a byte-level state machine that keeps only a depth stack (at most
/// ``maxDepth`` levels), a 64-byte key buffer and the captured short strings (each capped at
/// ``captureLimit`` bytes). Keys may come in any order; a duplicate key wins over an earlier
/// one, as it does for JSONSerialization. A line that is not one JSON object (bad syntax, bad
/// escapes, control characters in strings, cut off at the end of the stream) is counted as
/// malformed, never a crash. Blank lines are ignored; CRLF line ends are accepted; the last
/// line may lack its newline (call ``finish(_:)``).
///
/// Not checked: that the bytes inside skipped strings are valid UTF-8 (a captured string with
/// bad UTF-8 is decoded with replacement characters).
public struct ResultsLineScanner: Sendable {
    /// Longest captured string value, in bytes.
    public static let captureLimit = 256
    /// Deepest nesting accepted on a line; deeper lines are malformed (JSONSerialization has a
    /// similar limit).
    public static let maxDepth = 512
    static let keyLimit = 64

    /// What the caller is told about each line.
    public enum Event: Sendable, Equatable {
        case line(ResultsLine)
        case malformed
    }

    /// Body bytes seen, including newlines.
    public private(set) var bytesScanned: UInt64 = 0
    /// Lines that were one well-formed JSON object.
    public private(set) var lines: Int = 0
    public private(set) var malformedLines: Int = 0

    // MARK: State

    private enum State: UInt8 {
        /// Whitespace before a line's object.
        case lineStart
        /// A value must come (after `:` or `,` in an array).
        case value
        /// After `[`: a value or `]`.
        case valueOrArrayEnd
        /// After `{`: a key or `}`.
        case keyOrObjectEnd
        /// After `,` in an object.
        case key
        case colon
        /// After a value inside a container.
        case commaOrEnd
        /// The line's object is closed: only whitespace may follow.
        case afterLine
        case string
        case escape
        case unicode
        case number
        case literal
        /// The line is already known to be bad: skip to its newline.
        case malformed
    }

    /// Which known object a container is; everything else is `unknown` and skipped.
    private enum Context: UInt8 {
        case unknown = 0, root, result, outerError, innerError, message, usage, cacheCreation, serverToolUse
        case array = 0x80
    }

    /// Where the value after the current key goes.
    private enum Target: UInt8 {
        case skip
        // Objects.
        case result, outerError, innerError, message, usage, cacheCreation, serverToolUse
        // Strings.
        case resultType, errorType, model, stopReason
        // Integers.
        case inputTokens, outputTokens, cacheCreationInputTokens, cacheReadInputTokens
        case ephemeral5m, ephemeral1h, webSearchRequests

        var isString: Bool { self == .resultType || self == .errorType || self == .model || self == .stopReason }
        var isInteger: Bool { rawValue >= Target.inputTokens.rawValue }
    }

    private enum StringRole: UInt8 {
        case skipValue, skipKey, key, capture

        var isSkipped: Bool { self == .skipValue || self == .skipKey }
    }

    /// Sub-states of a number, after JSON's grammar.
    private enum NumberState: UInt8 { case minus, zero, integer, dot, fraction, exponentMark, exponentSign, exponent }

    private var state = State.lineStart
    private var stack: [UInt8] = []
    private var target = Target.skip
    private var stringRole = StringRole.skipValue
    private var key: [UInt8] = []
    private var keyOverflow = false
    /// Pending `\u` escape: hex digits read so far and their value.
    private var unicodeDigits = 0
    private var unicodeValue: UInt32 = 0
    /// A high surrogate waiting for its low half (captured strings only).
    private var pendingHighSurrogate: UInt32 = 0
    private var numberState = NumberState.minus
    private var numberValue = 0
    private var numberNegative = false
    private var numberUsable = true
    private var literalBytes: StaticString = "null"
    private var literalIndex = 0
    private var line = ResultsLine()

    public init() {
        stack.reserveCapacity(64)
        key.reserveCapacity(Self.keyLimit)
    }

    // MARK: Feeding

    /// Scans the next chunk; `onEvent` runs for every line the chunk completes.
    public mutating func feed(_ chunk: UnsafeRawBufferPointer, _ onEvent: (Event) -> Void) {
        bytesScanned &+= UInt64(chunk.count)
        let bytes = chunk.bindMemory(to: UInt8.self)
        var index = 0
        let count = bytes.count
        while index < count {
            let byte = bytes[index]
            switch state {
            case .string, .escape, .unicode:
                if state == .string, stringRole.isSkipped {
                    // The hot path: most of a results file is model output inside strings.
                    index = Self.skipStringContent(bytes, from: index)
                    guard index < count else { continue }
                    stringByte(bytes[index], onEvent)
                } else {
                    stringByte(byte, onEvent)
                }
                index += 1
            case .number:
                if numberByte(byte) {
                    index += 1
                } else {
                    // The byte ends the number and belongs to what follows: look at it again.
                    finishNumber()
                }
            default:
                structuralByte(byte, onEvent)
                index += 1
            }
        }
    }

    /// The first position at or after `start` that a skipped string cannot pass by itself: a
    /// quote, a control character, an escape cut by the chunk's end or a bad escape (or the
    /// end). Eight bytes at a time while none of them is special; complete, valid escapes are
    /// stepped over here too, since model output is full of `\n` and `\"`.
    @inline(__always)
    private static func skipStringContent(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int) -> Int {
        let count = bytes.count
        guard let base = bytes.baseAddress else { return start }
        var position = start
        while true {
            while position + 8 <= count {
                let word = UnsafeRawPointer(base + position).loadUnaligned(as: UInt64.self)
                if hasSpecialByte(word) { break }
                position += 8
            }
            while position < count {
                let byte = base[position]
                if byte == 0x22 || byte == 0x5C || byte < 0x20 { break }
                position += 1
            }
            guard position + 1 < count, base[position] == 0x5C else { return position }
            switch base[position + 1] {
            case 0x22, 0x5C, 0x2F, 0x62, 0x66, 0x6E, 0x72, 0x74:  // " \ / b f n r t
                position += 2
            case 0x75:  // u: four hex digits, all in this chunk
                guard position + 6 <= count,
                    isHex(base[position + 2]), isHex(base[position + 3]), isHex(base[position + 4]), isHex(base[position + 5])
                else { return position }
                position += 6
            default:
                return position
            }
        }
    }

    @inline(__always)
    private static func isHex(_ byte: UInt8) -> Bool {
        (byte >= 48 && byte <= 57) || (byte | 0x20 >= 97 && byte | 0x20 <= 102)
    }

    /// Whether any byte of `word` is `"`, `\` or below 0x20 (the classic SWAR tests: a byte
    /// equal to c makes `word ^ c` zero; `(v - 0x01…) & ~v & 0x80…` flags a zero byte).
    @inline(__always)
    static func hasSpecialByte(_ word: UInt64) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        let quote = word ^ (ones &* 0x22)
        let backslash = word ^ (ones &* 0x5C)
        let quoteZero = (quote &- ones) & ~quote
        let backslashZero = (backslash &- ones) & ~backslash
        let control = (word &- ones &* 0x20) & ~word
        return (quoteZero | backslashZero | control) & highs != 0
    }

    /// Scans the next chunk given as bytes.
    public mutating func feed(_ chunk: some Sequence<UInt8>, _ onEvent: (Event) -> Void) {
        let handled: Void? = chunk.withContiguousStorageIfAvailable { buffer in
            feed(UnsafeRawBufferPointer(buffer), onEvent)
        }
        if handled == nil {
            let copy = Array(chunk)
            copy.withUnsafeBytes { feed($0, onEvent) }
        }
    }

    /// Ends the stream: a last line without its newline is counted now (or as malformed if it
    /// is incomplete).
    public mutating func finish(_ onEvent: (Event) -> Void) {
        if state == .number, numberState == .zero || numberState == .integer || numberState == .fraction || numberState == .exponent {
            finishNumber()
        }
        endLine(onEvent)
    }

    // MARK: Lines

    private mutating func endLine(_ onEvent: (Event) -> Void) {
        switch state {
        case .lineStart:
            break
        case .afterLine:
            lines += 1
            onEvent(.line(line))
        default:
            malformedLines += 1
            onEvent(.malformed)
        }
        state = .lineStart
        stack.removeAll(keepingCapacity: true)
        target = .skip
    }

    private mutating func fail() {
        state = .malformed
    }

    @inline(__always)
    private static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09 || byte == 0x0D
    }

    // MARK: Structure

    private mutating func structuralByte(_ byte: UInt8, _ onEvent: (Event) -> Void) {
        if byte == 0x0A {
            endLine(onEvent)
            return
        }
        switch state {
        case .malformed:
            return
        case .lineStart:
            if Self.isWhitespace(byte) { return }
            guard byte == UInt8(ascii: "{") else { return fail() }
            line.reset()
            push(.root)
            state = .keyOrObjectEnd
        case .afterLine:
            if !Self.isWhitespace(byte) { fail() }
        case .value, .valueOrArrayEnd:
            if Self.isWhitespace(byte) { return }
            if state == .valueOrArrayEnd, byte == UInt8(ascii: "]") { return closeContainer() }
            beginValue(byte)
        case .keyOrObjectEnd, .key:
            if Self.isWhitespace(byte) { return }
            if state == .keyOrObjectEnd, byte == UInt8(ascii: "}") { return closeContainer() }
            guard byte == UInt8(ascii: "\"") else { return fail() }
            if currentContext == .unknown {
                stringRole = .skipKey
            } else {
                stringRole = .key
                key.removeAll(keepingCapacity: true)
                keyOverflow = false
            }
            pendingHighSurrogate = 0
            state = .string
        case .colon:
            if Self.isWhitespace(byte) { return }
            guard byte == UInt8(ascii: ":") else { return fail() }
            state = .value
        case .commaOrEnd:
            if Self.isWhitespace(byte) { return }
            let inArray = currentContext == .array
            switch byte {
            case UInt8(ascii: ","): state = inArray ? .value : .key
            case UInt8(ascii: "}") where !inArray: closeContainer()
            case UInt8(ascii: "]") where inArray: closeContainer()
            default: fail()
            }
        case .literal:
            literalByte(byte)
        case .string, .escape, .unicode, .number:
            // Handled by their own paths in `feed`.
            fail()
        }
    }

    private var currentContext: Context {
        stack.last.flatMap(Context.init(rawValue:)) ?? .unknown
    }

    private mutating func push(_ context: Context) {
        guard stack.count < Self.maxDepth else { return fail() }
        stack.append(context.rawValue)
    }

    private mutating func closeContainer() {
        stack.removeLast()
        valueDone()
    }

    private mutating func valueDone() {
        target = .skip
        state = stack.isEmpty ? .afterLine : .commaOrEnd
    }

    /// The first byte of a value; `target` says where it goes.
    private mutating func beginValue(_ byte: UInt8) {
        let target = self.target
        // Last key wins: whatever an earlier duplicate key set under this one is forgotten,
        // whatever type the new value has.
        switch target {
        case .skip: break
        case .result: line.reset()
        case .outerError, .innerError: line.errorType.reset()
        case .message: line.resetMessage()
        case .usage: line.resetUsage()
        case .cacheCreation: line.resetCacheCreation()
        case .serverToolUse: line.webSearchRequests = nil
        case .resultType: line.resultType.reset()
        case .errorType: line.errorType.reset()
        case .model: line.model.reset()
        case .stopReason: line.stopReason.reset()
        case .inputTokens: line.inputTokens = nil
        case .outputTokens: line.outputTokens = nil
        case .cacheCreationInputTokens: line.cacheCreationInputTokens = nil
        case .cacheReadInputTokens: line.cacheReadInputTokens = nil
        case .ephemeral5m: line.ephemeral5mInputTokens = nil
        case .ephemeral1h: line.ephemeral1hInputTokens = nil
        case .webSearchRequests: line.webSearchRequests = nil
        }
        switch byte {
        case UInt8(ascii: "{"):
            let context: Context =
                switch target {
                case .result: .result
                case .outerError: .outerError
                case .innerError: .innerError
                case .message: .message
                case .usage: .usage
                case .cacheCreation: .cacheCreation
                case .serverToolUse: .serverToolUse
                default: .unknown
                }
            push(context)
            if context == .message { line.hasMessage = true }
            // What the key named is this object; nothing inside it goes there.
            self.target = .skip
            if state != .malformed { state = .keyOrObjectEnd }
        case UInt8(ascii: "["):
            push(.array)
            self.target = .skip
            if state != .malformed { state = .valueOrArrayEnd }
        case UInt8(ascii: "\""):
            if target.isString {
                stringRole = .capture
                capturedField { $0.begin() }
            } else {
                stringRole = .skipValue
            }
            pendingHighSurrogate = 0
            state = .string
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            numberValue = 0
            numberUsable = target.isInteger
            numberNegative = false
            state = .number
            if byte == UInt8(ascii: "-") {
                numberState = .minus
                numberNegative = true
            } else {
                numberState = byte == UInt8(ascii: "0") ? .zero : .integer
                numberValue = Int(byte &- 48)
            }
        case UInt8(ascii: "t"): startLiteral("true")
        case UInt8(ascii: "f"): startLiteral("false")
        case UInt8(ascii: "n"): startLiteral("null")
        default: fail()
        }
    }

    // MARK: Literals

    private mutating func startLiteral(_ word: StaticString) {
        literalBytes = word
        literalIndex = 1
        state = .literal
    }

    private mutating func literalByte(_ byte: UInt8) {
        let expected = literalBytes.withUTF8Buffer { $0[literalIndex] }
        guard byte == expected else { return fail() }
        literalIndex += 1
        if literalIndex == literalBytes.utf8CodeUnitCount { valueDone() }
    }

    // MARK: Numbers

    /// Takes one byte of a number; `false` when the byte is not part of it.
    private mutating func numberByte(_ byte: UInt8) -> Bool {
        let isDigit = byte >= 48 && byte <= 57
        switch numberState {
        case .minus:
            guard isDigit else { break }
            numberState = byte == 48 ? .zero : .integer
            accumulate(byte)
            return true
        case .zero:
            if startsFractionOrExponent(byte) { return true }
            if isDigit { break }  // "01" is not JSON.
            return false
        case .integer:
            if isDigit {
                accumulate(byte)
                return true
            }
            return startsFractionOrExponent(byte)
        case .dot:
            guard isDigit else { break }
            numberState = .fraction
            return true
        case .fraction:
            if isDigit { return true }
            if byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E") {
                numberState = .exponentMark
                return true
            }
            return false
        case .exponentMark:
            if byte == UInt8(ascii: "+") || byte == UInt8(ascii: "-") {
                numberState = .exponentSign
                return true
            }
            guard isDigit else { break }
            numberState = .exponent
            return true
        case .exponentSign:
            guard isDigit else { break }
            numberState = .exponent
            return true
        case .exponent:
            return isDigit
        }
        // A byte that cannot continue a number that is not complete yet. A newline is left
        // for the caller: it still ends the line.
        fail()
        return byte != 0x0A
    }

    /// After the integer part: `.` or `e` turns the number into one that is not a whole count
    /// (only whole counts are kept), and the number goes on.
    @inline(__always)
    private mutating func startsFractionOrExponent(_ byte: UInt8) -> Bool {
        if byte == UInt8(ascii: ".") {
            numberState = .dot
        } else if byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E") {
            numberState = .exponentMark
        } else {
            return false
        }
        numberUsable = false
        return true
    }

    @inline(__always)
    private mutating func accumulate(_ byte: UInt8) {
        guard numberUsable else { return }
        let (times, overflow1) = numberValue.multipliedReportingOverflow(by: 10)
        let (sum, overflow2) = times.addingReportingOverflow(Int(byte &- 48))
        if overflow1 || overflow2 {
            numberUsable = false
        } else {
            numberValue = sum
        }
    }

    /// The number ended (at a byte that is not part of it): store it if it is wanted.
    private mutating func finishNumber() {
        guard state == .number else { return }
        switch numberState {
        case .zero, .integer, .fraction, .exponent: break
        default: return fail()
        }
        if numberUsable, !numberNegative || numberValue == 0 {
            let value = numberValue
            switch target {
            case .inputTokens: line.inputTokens = value
            case .outputTokens: line.outputTokens = value
            case .cacheCreationInputTokens: line.cacheCreationInputTokens = value
            case .cacheReadInputTokens: line.cacheReadInputTokens = value
            case .ephemeral5m: line.ephemeral5mInputTokens = value
            case .ephemeral1h: line.ephemeral1hInputTokens = value
            case .webSearchRequests: line.webSearchRequests = value
            default: break
            }
        }
        valueDone()
    }

    // MARK: Strings

    private mutating func stringByte(_ byte: UInt8, _ onEvent: (Event) -> Void) {
        switch state {
        case .string:
            switch byte {
            case 0x22:
                endString()
            case 0x5C:
                state = .escape
            case 0x0A:
                // A newline always ends a JSON Lines record; inside a string it is malformed.
                endLine(onEvent)
            case ..<0x20:
                fail()
            default:
                emit(byte)
            }
        case .escape:
            var decoded: UInt8
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): decoded = byte
            case UInt8(ascii: "b"): decoded = 0x08
            case UInt8(ascii: "f"): decoded = 0x0C
            case UInt8(ascii: "n"): decoded = 0x0A
            case UInt8(ascii: "r"): decoded = 0x0D
            case UInt8(ascii: "t"): decoded = 0x09
            case UInt8(ascii: "u"):
                unicodeDigits = 0
                unicodeValue = 0
                state = .unicode
                return
            case 0x0A:
                return endLine(onEvent)
            default:
                return fail()
            }
            if !stringRole.isSkipped {
                flushSurrogate()
                append(decoded)
            }
            state = .string
        case .unicode:
            let digit: UInt32
            switch byte {
            case 48...57: digit = UInt32(byte - 48)
            case 65...70: digit = UInt32(byte - 55)
            case 97...102: digit = UInt32(byte - 87)
            case 0x0A: return endLine(onEvent)
            default: return fail()
            }
            unicodeValue = unicodeValue << 4 | digit
            unicodeDigits += 1
            if unicodeDigits == 4 {
                if !stringRole.isSkipped { scalar(unicodeValue) }
                state = .string
            }
        default:
            structuralByte(byte, onEvent)
        }
    }

    @inline(__always)
    private mutating func emit(_ byte: UInt8) {
        guard !stringRole.isSkipped else { return }
        if pendingHighSurrogate != 0 { flushSurrogate() }
        append(byte)
    }

    private mutating func append(_ byte: UInt8) {
        switch stringRole {
        case .skipValue, .skipKey: break
        case .key:
            if key.count < Self.keyLimit { key.append(byte) } else { keyOverflow = true }
        case .capture:
            capturedField { $0.append(byte) }
        }
    }

    /// A lone high surrogate becomes U+FFFD.
    private mutating func flushSurrogate() {
        guard pendingHighSurrogate != 0 else { return }
        pendingHighSurrogate = 0
        appendScalar(0xFFFD)
    }

    private mutating func scalar(_ code: UInt32) {
        if (0xD800...0xDBFF).contains(code) {
            flushSurrogate()
            pendingHighSurrogate = code
            return
        }
        if (0xDC00...0xDFFF).contains(code) {
            guard pendingHighSurrogate != 0 else { return appendScalar(0xFFFD) }
            let combined = 0x10000 + ((pendingHighSurrogate - 0xD800) << 10) + (code - 0xDC00)
            pendingHighSurrogate = 0
            return appendScalar(combined)
        }
        flushSurrogate()
        appendScalar(code)
    }

    private mutating func appendScalar(_ code: UInt32) {
        let scalar = Unicode.Scalar(code) ?? "\u{FFFD}"
        for unit in scalar.utf8 { append(unit) }
    }

    private mutating func capturedField(_ body: (inout CapturedString) -> Void) {
        switch target {
        case .resultType: body(&line.resultType)
        case .errorType: body(&line.errorType)
        case .model: body(&line.model)
        case .stopReason: body(&line.stopReason)
        default: break
        }
    }

    private mutating func endString() {
        flushSurrogate()
        switch stringRole {
        case .key:
            target = keyOverflow ? .skip : Self.target(for: key, in: currentContext)
            state = .colon
        case .skipKey:
            target = .skip
            state = .colon
        case .capture, .skipValue:
            valueDone()
        }
        stringRole = .skipValue
    }

    /// The known fields, by the object they sit in.
    private static func target(for key: [UInt8], in context: Context) -> Target {
        func equals(_ name: StaticString) -> Bool {
            name.withUTF8Buffer { $0.elementsEqual(key) }
        }
        switch context {
        case .root:
            return equals("result") ? .result : .skip
        case .result:
            if equals("type") { return .resultType }
            if equals("error") { return .outerError }
            if equals("message") { return .message }
            return .skip
        case .outerError:
            return equals("error") ? .innerError : .skip
        case .innerError:
            return equals("type") ? .errorType : .skip
        case .message:
            if equals("model") { return .model }
            if equals("stop_reason") { return .stopReason }
            if equals("usage") { return .usage }
            return .skip
        case .usage:
            if equals("input_tokens") { return .inputTokens }
            if equals("output_tokens") { return .outputTokens }
            if equals("cache_creation_input_tokens") { return .cacheCreationInputTokens }
            if equals("cache_read_input_tokens") { return .cacheReadInputTokens }
            if equals("cache_creation") { return .cacheCreation }
            if equals("server_tool_use") { return .serverToolUse }
            return .skip
        case .cacheCreation:
            if equals("ephemeral_5m_input_tokens") { return .ephemeral5m }
            if equals("ephemeral_1h_input_tokens") { return .ephemeral1h }
            return .skip
        case .serverToolUse:
            return equals("web_search_requests") ? .webSearchRequests : .skip
        case .unknown, .array:
            return .skip
        }
    }
}
