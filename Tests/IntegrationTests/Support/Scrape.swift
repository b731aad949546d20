import Foundation

/// A parsed text-format scrape: every sample by its series text exactly as rendered
/// (`name{label="value",...}`), plus the raw text.
struct Scrape {
    let text: String
    let samples: [String: Double]

    init(text: String) {
        self.text = text
        var samples: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " ") else { continue }
            let series = String(line[..<space])
            let value = String(line[line.index(after: space)...])
            samples[series] = value == "+Inf" ? .infinity : value == "-Inf" ? -.infinity : Double(value) ?? .nan
        }
        self.samples = samples
    }

    subscript(_ series: String) -> Double? { samples[series] }

    /// Every series of one family (name without labels), by series text.
    func family(_ name: String) -> [String: Double] {
        samples.filter { $0.key == name || $0.key.hasPrefix(name + "{") }
    }
}
