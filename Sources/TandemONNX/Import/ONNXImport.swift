import TandemCore

/// What the importer needs beyond the graph: the input's size when the file leaves it open, and class names.
public struct ONNXImportOptions: Sendable {
    /// Samples per window; required when the graph's time dimension is symbolic.
    public var window: Int?
    /// Channels per sample; required when the graph's channel dimension is symbolic.
    public var channels: Int?
    /// Class names in output order; default `0`, `1`, ….
    public var classNames: [String]?

    /// Creates options.
    public init(window: Int? = nil, channels: Int? = nil, classNames: [String]? = nil) {
        self.window = window
        self.channels = channels
        self.classNames = classNames
    }
}

/// An ONNX graph mapped onto Tandem's layers: the architecture and float weights a `FloatModel` takes.
public struct ONNXImport: Sendable {
    /// How the ONNX model's input holds a window.
    public enum InputLayout: String, Sendable {
        /// `[N, channels, window]`: PyTorch's `Conv1d` convention.
        case channelsFirst = "[N, C, L]"
        /// `[N, window, channels]`: Keras' convention, and Tandem's.
        case channelsLast = "[N, L, C]"
        /// `[N, window]`: one channel.
        case univariate = "[N, L]"
    }

    /// Layers in order, batch normalization folded where it follows a convolution or dense layer.
    public var architecture: [LayerSpec]
    /// Weights named as `FloatModel` expects (`"i.weight"`, `"i.bias"`, batch norm's `"i.gamma"` …).
    public var weights: [String: Tensor]
    /// Samples per window.
    public var window: Int
    /// Channels per sample.
    public var channels: Int
    /// Class names, one per output.
    public var classNames: [String]
    /// The ONNX input's name.
    public var inputName: String
    /// The ONNX output's name.
    public var outputName: String
    /// How the ONNX input holds a window.
    public var inputLayout: InputLayout
    /// Whether the ONNX output is softmax probabilities (Tandem's logits then give the same probabilities).
    public var outputIsProbabilities: Bool
    /// A per-channel standardization the graph starts with (Sub, Div), taken out of the network.
    public var standardization: Standardization?
    /// What the importer folded, dropped or reinterpreted, one line per node.
    public var notes: [String]

    /// The float model, its weights checked against the architecture.
    ///
    /// - Throws: `ModelError` if the layers do not fit (the importer checks this before it returns).
    public func floatModel() throws -> FloatModel {
        try FloatModel(
            architecture: architecture, window: window, channels: channels, classes: classNames.count,
            weights: weights)
    }

    /// Windows `[count, window, channels]` (Tandem's layout) rearranged into the ONNX input's layout, flat.
    public func onnxInput(from windows: Tensor) -> [Float] {
        guard inputLayout == .channelsFirst, channels > 1 else { return windows.scalars }
        let count = windows.count / (window * channels)
        var out = [Float](repeating: 0, count: windows.count)
        windows.scalars.withUnsafeBufferPointer { x in
            for n in 0..<count {
                let base = n * window * channels
                for t in 0..<window {
                    for c in 0..<channels { out[base + c * window + t] = x[base + t * channels + c] }
                }
            }
        }
        return out
    }
}
