/// A configuration file's text is not the YAML that ``YAMLReader`` reads; the message names the line.
///
/// `description` reads `line 3, column 8: anchors ('&') are not supported`, or `line 3: …` where no single
/// column is to blame.
struct YAMLError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The kind of failure.
    enum Code: String, Sendable {
        /// Text that is not YAML here: a missing `:` or `,`, a stray `]`, an unknown escape.
        case syntax
        /// Indentation that does not fit the structure above it, or a tab used for indentation.
        case indentation
        /// A quote, `[` or `{` that is never closed.
        case unclosed
        /// A key that appears twice in one mapping.
        case duplicateKey
        /// Valid YAML outside the subset a configuration file may use: anchors, aliases, tags, block scalars,
        /// explicit keys, directives, several documents, a plain value continued on another line.
        case unsupported
    }

    /// The kind of failure.
    var code: Code
    /// The 1-based line the problem is on.
    var line: Int
    /// The 1-based column (in Unicode scalars) the problem starts at, if one column is to blame.
    var column: Int?
    /// What is wrong, and where it helps, what to write instead.
    var message: String

    /// Creates an error at `line` (and `column`).
    init(_ code: Code, line: Int, column: Int? = nil, _ message: String) {
        self.code = code
        self.line = line
        self.column = column
        self.message = message
    }

    /// `line L, column C: message`.
    var description: String {
        if let column { return "line \(line), column \(column): \(message)" }
        return "line \(line): \(message)"
    }
}
