import Yams

/// A configuration problem, with the file and line it is on.
public struct ConfigError: Error, CustomStringConvertible, Equatable {
    public let file: String
    public let line: Int?
    public let problem: String

    public init(file: String, line: Int?, problem: String) {
        self.file = file
        self.line = line
        self.problem = problem
    }

    public var description: String {
        line.map { "\(file):\($0): \(problem)" } ?? "\(file): \(problem)"
    }
}

/// Walks a YAML document strictly: unknown keys, wrong types and missing required keys are
/// errors that name the file and line, as exporter-toolkit's strict unmarshalling does.
struct YAMLReader {
    let file: String

    func document(_ text: String) throws(ConfigError) -> Node {
        do {
            guard let node = try Yams.compose(yaml: text) else {
                throw ConfigError(file: file, line: nil, problem: "the file is empty")
            }
            return node
        } catch let error as ConfigError {
            throw error
        } catch let error as YamlError {
            throw ConfigError(file: file, line: Self.line(of: error), problem: "not valid YAML: \(Self.summary(of: error))")
        } catch {
            throw ConfigError(file: file, line: nil, problem: "not valid YAML: \(error)")
        }
    }

    func error(_ node: Node?, _ problem: String) -> ConfigError {
        ConfigError(file: file, line: node?.mark.map { $0.line }, problem: problem)
    }

    /// The mapping's entries by key, refusing keys not in `allowed`.
    func mapping(_ node: Node, _ what: String, allowed: Set<String>) throws(ConfigError) -> [String: Node] {
        guard case .mapping(let mapping) = node else { throw error(node, "\(what) must be a mapping") }
        var entries: [String: Node] = [:]
        for (key, value) in mapping {
            guard let name = key.string else { throw error(key, "\(what): keys must be strings") }
            guard allowed.contains(name) else {
                throw error(key, "\(what): unknown key \"\(name)\" (known: \(allowed.sorted().joined(separator: ", ")))")
            }
            guard entries[name] == nil else { throw error(key, "\(what): \"\(name)\" given twice") }
            entries[name] = value
        }
        return entries
    }

    func string(_ node: Node?, _ what: String) throws(ConfigError) -> String? {
        guard let node else { return nil }
        guard case .scalar(let scalar) = node else { throw error(node, "\(what) must be a string") }
        return scalar.string
    }

    func requiredString(_ node: Node?, _ what: String, in parent: Node) throws(ConfigError) -> String {
        guard let value = try string(node, what), !value.isEmpty else { throw error(node ?? parent, "\(what) is required") }
        return value
    }

    func integer(_ node: Node?, _ what: String) throws(ConfigError) -> Int? {
        guard let text = try string(node, what) else { return nil }
        guard let value = Int(text) else { throw error(node, "\(what) must be a whole number (got \"\(text)\")") }
        return value
    }

    func bool(_ node: Node?, _ what: String) throws(ConfigError) -> Bool? {
        guard let text = try string(node, what) else { return nil }
        switch text.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: throw error(node, "\(what) must be true or false (got \"\(text)\")")
        }
    }

    static func line(of error: YamlError) -> Int? {
        switch error {
        case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _):
            return mark.line
        default:
            return nil
        }
    }

    static func summary(of error: YamlError) -> String {
        switch error {
        case .scanner(_, let problem, _, _), .parser(_, let problem, _, _), .composer(_, let problem, _, _):
            return problem
        default:
            return "\(error)".split(whereSeparator: \.isNewline).first.map(String.init) ?? "\(error)"
        }
    }
}
