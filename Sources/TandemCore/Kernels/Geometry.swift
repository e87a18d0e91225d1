/// Output length and left padding of a 1-D sliding window (convolution or pooling).
public struct WindowGeometry: Sendable, Equatable {
    /// Input length.
    public var inputLength: Int
    /// Kernel size.
    public var kernel: Int
    /// Step between window starts.
    public var stride: Int
    /// Spacing between kernel taps.
    public var dilation: Int
    /// Zero padding added on the left of the input.
    public var padLeft: Int
    /// Output length.
    public var outputLength: Int

    /// Computes the geometry; `nil` when the window does not fit the input.
    ///
    /// `same` padding gives `ceil(length / stride)` outputs, padding split evenly with the odd element
    /// on the right (TensorFlow's and PyTorch's `padding="same"` convention).
    public init?(inputLength: Int, kernel: Int, stride: Int, dilation: Int = 1, padding: LayerSpec.Padding) {
        guard inputLength > 0, kernel > 0, stride > 0, dilation > 0 else { return nil }
        let span = (kernel - 1) * dilation + 1
        switch padding {
        case .valid:
            guard inputLength >= span else { return nil }
            outputLength = (inputLength - span) / stride + 1
            padLeft = 0
        case .same:
            outputLength = (inputLength + stride - 1) / stride
            let total = Swift.max(0, (outputLength - 1) * stride + span - inputLength)
            padLeft = total / 2
        }
        self.inputLength = inputLength
        self.kernel = kernel
        self.stride = stride
        self.dilation = dilation
    }

    /// The input index of tap `k` of output `t`; may lie in the padding (negative or ≥ `inputLength`).
    @inlinable public func inputIndex(output t: Int, tap k: Int) -> Int {
        t * stride - padLeft + k * dilation
    }
}
