import RFC3339

/// Appends JSON to a byte array by hand: the list endpoint renders up to 1,000 batches per
/// page and a full read of a large workspace is 100 pages, so no encoder and no dictionaries.
struct JSONWriter {
    var bytes: [UInt8] = []

    init(capacity: Int = 0) {
        if capacity > 0 { bytes.reserveCapacity(capacity) }
    }

    /// Text that is already valid JSON (keys, punctuation, literals).
    mutating func raw(_ text: StaticString) {
        text.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    mutating func raw(_ fragment: [UInt8]) {
        bytes.append(contentsOf: fragment)
    }

    mutating func null() {
        raw("null")
    }

    mutating func bool(_ value: Bool) {
        value ? raw("true") : raw("false")
    }

    mutating func int(_ value: Int) {
        bytes.append(contentsOf: String(value).utf8)
    }

    mutating func int(_ value: Int?) {
        guard let value else { return null() }
        int(value)
    }

    /// Finite doubles only; the simulator never produces anything else.
    mutating func double(_ value: Double) {
        if value == value.rounded(), abs(value) < 1e15 {
            int(Int(value))
        } else {
            bytes.append(contentsOf: String(value).utf8)
        }
    }

    mutating func timestamp(_ seconds: Double?) {
        guard let seconds else { return null() }
        // RFC3339 output is plain ASCII digits and punctuation: nothing to escape.
        bytes.append(UInt8(ascii: "\""))
        bytes.append(contentsOf: RFC3339.format(seconds).utf8)
        bytes.append(UInt8(ascii: "\""))
    }

    mutating func string(_ value: String?) {
        guard var value else { return null() }
        value.withUTF8 { string(utf8: $0) }
    }

    /// A JSON string from UTF-8 bytes: runs that need no escaping are copied in one go, which
    /// matters for results lines with kilobytes of text.
    mutating func string(utf8 value: UnsafeBufferPointer<UInt8>) {
        bytes.append(UInt8(ascii: "\""))
        var runStart = 0
        for (index, byte) in value.enumerated() where byte < 0x20 || byte == 0x22 || byte == 0x5C || byte == 0x7F {
            if runStart < index {
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: value[runStart..<index]))
            }
            runStart = index + 1
            switch byte {
            case UInt8(ascii: "\""): raw("\\\"")
            case UInt8(ascii: "\\"): raw("\\\\")
            case 0x0A: raw("\\n")
            case 0x0D: raw("\\r")
            case 0x09: raw("\\t")
            default:
                raw("\\u00")
                bytes.append(Self.hexDigits[Int(byte >> 4)])
                bytes.append(Self.hexDigits[Int(byte & 0x0F)])
            }
        }
        if runStart < value.count {
            // Multi-byte UTF-8 passes through: JSON text is UTF-8, and Swift strings are always
            // valid UTF-8.
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: value[runStart...]))
        }
        bytes.append(UInt8(ascii: "\""))
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// Writes `{"a":...,"b":...}`, putting commas between the fields the closure writes.
    mutating func object(_ body: (inout ObjectFields) -> Void) {
        // Swapping moves the bytes in and out without copying them.
        var fields = ObjectFields(writer: JSONWriter())
        swap(&fields.writer, &self)
        fields.writer.raw("{")
        body(&fields)
        fields.writer.raw("}")
        swap(&fields.writer, &self)
    }

    /// Writes `[...]`, one element per item, separated by commas.
    mutating func array<Items: Sequence>(_ items: Items, element: (inout JSONWriter, Items.Element) -> Void) {
        raw("[")
        var first = true
        for item in items {
            if !first { raw(",") }
            first = false
            element(&self, item)
        }
        raw("]")
    }

    struct ObjectFields {
        var writer: JSONWriter
        private var first = true

        init(writer: JSONWriter) {
            self.writer = writer
        }

        /// Starts a field; the caller then writes its value through `writer`.
        mutating func key(_ name: String) {
            if !first { writer.raw(",") }
            first = false
            writer.string(name)
            writer.raw(":")
        }

        mutating func string(_ name: String, _ value: String?) {
            key(name)
            writer.string(value)
        }

        mutating func int(_ name: String, _ value: Int?) {
            key(name)
            writer.int(value)
        }

        mutating func double(_ name: String, _ value: Double) {
            key(name)
            writer.double(value)
        }

        mutating func bool(_ name: String, _ value: Bool) {
            key(name)
            writer.bool(value)
        }

        mutating func timestamp(_ name: String, _ value: Double?) {
            key(name)
            writer.timestamp(value)
        }

        mutating func object(_ name: String, _ body: (inout ObjectFields) -> Void) {
            key(name)
            writer.object(body)
        }

        mutating func raw(_ name: String, _ fragment: [UInt8]) {
            key(name)
            writer.raw(fragment)
        }
    }
}
