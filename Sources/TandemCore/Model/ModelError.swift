/// A model that cannot be built or run: a spec that does not fit its input, missing or misshapen weights.
public struct ModelError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What kind of problem this is.
    public enum Code: String, Sendable {
        /// A layer option is missing, out of range or not used by that layer.
        case invalidLayer
        /// The layers do not fit the input shape (e.g. a kernel longer than the sequence).
        case shapeMismatch
        /// A weight tensor the architecture needs is absent or has the wrong shape.
        case badWeights
        /// Input data does not match the model's input spec.
        case badInput
        /// A library the model needs is not installed (OpenBLAS for float32 models).
        case unavailable
    }

    /// The kind of problem.
    public var code: Code
    /// What went wrong and where (layer index, key, shape).
    public var message: String

    /// Creates an error.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// The message, prefixed by the code.
    public var description: String { "\(code.rawValue): \(message)" }
}
