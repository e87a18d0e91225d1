/// An ONNX file Tandem cannot read, or a graph it cannot map onto its layers.
///
/// A malformed file (`malformed`) is refused with the byte offset where reading stopped; a well-formed graph
/// that uses something Tandem has no layer for (`unsupported`) names the node, its op type and why.
public struct ONNXError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What kind of problem this is.
    public enum Code: String, Sendable {
        /// The bytes are not a valid ONNX protobuf: truncated, a length or count out of range, a wrong wire type.
        case malformed
        /// Valid ONNX that Tandem cannot map: an operator, attribute or pattern without a Tandem layer.
        case unsupported
        /// The graph and the import options disagree (window, channels, classes), or an option is invalid.
        case badOptions
        /// A Tandem model that cannot be written as ONNX.
        case badModel
    }

    /// The kind of problem.
    public var code: Code
    /// What went wrong.
    public var message: String
    /// The node's name, when a node is to blame.
    public var node: String?
    /// The node's op type, when a node is to blame.
    public var opType: String?
    /// The byte offset in the file where reading stopped, for `malformed`.
    public var offset: Int?

    /// Creates an error.
    public init(_ code: Code, _ message: String, node: String? = nil, opType: String? = nil, offset: Int? = nil) {
        self.code = code
        self.message = message
        self.node = node
        self.opType = opType
        self.offset = offset
    }

    /// `node 'conv1' (Conv): message [unsupported]` or `byte 12: message [malformed]`.
    public var description: String {
        var prefix = ""
        if let node { prefix = "node '\(node)'" + (opType.map { " (\($0))" } ?? "") + ": " }
        if let offset { prefix = "byte \(offset): " + prefix }
        return "\(prefix)\(message) [\(code.rawValue)]"
    }
}
