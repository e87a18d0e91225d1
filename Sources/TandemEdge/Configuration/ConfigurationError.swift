/// The agent's configuration is unreadable or invalid; every problem names its key.
///
/// `description` lists each problem on its own line as `key: message`, e.g.
/// `streams[1].channels: must be positive, got 0`.
public struct ConfigurationError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The kind of failure.
    public enum Code: String, Sendable {
        /// The file cannot be read.
        case unreadable
        /// The file is not valid YAML, or a value has the wrong shape (a list where a number belongs).
        case syntax
        /// A key the configuration does not know (usually a typo).
        case unknownKey
        /// A value is out of range or inconsistent with another.
        case invalidValue
    }

    /// One problem with one key.
    public struct Issue: Sendable, Equatable, CustomStringConvertible {
        /// The kind of problem.
        public var code: Code
        /// The key's path, e.g. `streams[1].channels` or `TANDEM_BROKER_URL`.
        public var key: String
        /// What is wrong.
        public var message: String

        /// `key: message`.
        public var description: String { key.isEmpty ? message : "\(key): \(message)" }
    }

    /// Every problem found, in file order.
    public var issues: [Issue]
    /// The configuration file, if the problems are in one.
    public var file: String?

    /// Creates an error with one problem.
    public init(_ code: Code, key: String, _ message: String, file: String? = nil) {
        issues = [Issue(code: code, key: key, message: message)]
        self.file = file
    }

    /// Creates an error from several problems.
    public init(issues: [Issue], file: String? = nil) {
        self.issues = issues
        self.file = file
    }

    /// The first problem's code.
    public var code: Code { issues.first?.code ?? .invalidValue }

    /// One line per problem, prefixed with the file if known.
    public var description: String {
        let prefix = file.map { "\($0): " } ?? ""
        return issues.map { prefix + $0.description }.joined(separator: "\n")
    }
}
