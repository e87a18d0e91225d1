/// What a model expects as input: the window it classifies and how raw samples are normalized.
public struct InputSpec: Codable, Sendable, Equatable {
    /// Channels per sample.
    public var channels: Int
    /// Samples per window.
    public var window: Int
    /// Samples between the starts of consecutive windows.
    public var hop: Int
    /// Nominal sample rate of the stream, if known.
    public var sampleRateHz: Double?
    /// Per-channel mean subtracted from raw samples before inference (empty: none).
    public var mean: [Float]
    /// Per-channel standard deviation raw samples are divided by after the mean is removed (empty: none).
    public var std: [Float]
    /// Channel names, in order, if known.
    public var channelNames: [String]

    /// Creates an input spec.
    public init(
        channels: Int, window: Int, hop: Int, sampleRateHz: Double? = nil, mean: [Float] = [], std: [Float] = [],
        channelNames: [String] = []
    ) {
        self.channels = channels
        self.window = window
        self.hop = hop
        self.sampleRateHz = sampleRateHz
        self.mean = mean
        self.std = std
        self.channelNames = channelNames
    }

    /// Normalizes raw windows `[count, window, channels]` in place with the stored mean and std.
    public func normalize(_ windows: inout Tensor) {
        guard !mean.isEmpty, mean.count == channels, std.count == channels else { return }
        let c = channels
        let scale = std.map { 1 / Swift.max($0, 1e-8) }
        windows.scalars.withUnsafeMutableBufferPointer { x in
            var i = 0
            while i < x.count {
                for k in 0..<c { x[i + k] = (x[i + k] - mean[k]) * scale[k] }
                i += c
            }
        }
    }
}

/// The JSON manifest inside a `.tandem` artifact: everything about a model except its tensors.
public struct ModelManifest: Codable, Sendable, Equatable {
    /// Human-readable model name, e.g. `fcn` or `edge`.
    public var name: String
    /// This model's version string, unique within a registry.
    public var version: String
    /// The version this model was derived from (retrained, distilled or compressed), if any.
    public var parentVersion: String?
    /// Creation time, ISO 8601 in UTC.
    public var createdAt: String
    /// The inference graph: layers in order, with batch normalization already folded away.
    public var architecture: [LayerSpec]
    /// The input the model expects.
    public var input: InputSpec
    /// Class names; output `i` scores `classNames[i]`.
    public var classNames: [String]
    /// SHA-256 (hex) over the training data, if known.
    public var trainingDataDigest: String?
    /// Evaluation metrics recorded at training time (`test_accuracy`, `macro_f1`, …).
    public var metrics: [String: Double]
    /// Number representation of the weights: `float32`, or `int8` for quantized edge models.
    public var numerics: String

    /// Creates a manifest.
    public init(
        name: String, version: String, parentVersion: String? = nil, createdAt: String,
        architecture: [LayerSpec], input: InputSpec, classNames: [String], trainingDataDigest: String? = nil,
        metrics: [String: Double] = [:], numerics: String = "float32"
    ) {
        self.name = name
        self.version = version
        self.parentVersion = parentVersion
        self.createdAt = createdAt
        self.architecture = architecture
        self.input = input
        self.classNames = classNames
        self.trainingDataDigest = trainingDataDigest
        self.metrics = metrics
        self.numerics = numerics
    }
}
