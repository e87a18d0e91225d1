/// A quantized model that cannot be built, loaded or run, or a quantization that cannot be done.
///
/// The message names the layer (by index and kind) and the field that is wrong, so a rejected
/// artifact can be diagnosed from the log line alone.
public struct QuantizationError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What kind of problem this is.
    public enum Code: String, Sendable {
        /// A scale, zero point, multiplier or shift is out of range or not finite.
        case invalidParameters
        /// A tensor is missing, has the wrong shape, or holds values outside the scheme's range.
        case badTensor
        /// The layers do not fit together or do not fit the input.
        case shapeMismatch
        /// The layer sequence uses something the int8 scheme does not support.
        case unsupportedLayer
        /// Input windows do not match the model or hold non-finite values.
        case badInput
        /// The calibration set or options are unusable.
        case badCalibration
    }

    /// The kind of problem.
    public var code: Code
    /// What went wrong and where.
    public var message: String

    /// Creates an error.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// The message, prefixed by the code.
    public var description: String { "\(code.rawValue): \(message)" }
}
