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

    /// The per-channel standardization raw samples go through, if the model has one.
    public var standardization: Standardization? { mean.isEmpty ? nil : Standardization(mean: mean, std: std) }

    /// Normalizes raw windows `[count, window, channels]` in place with the stored mean and std.
    ///
    /// - Precondition: the spec passed `validate()` and the windows have `channels` channels.
    public func normalize(_ windows: inout Tensor) {
        standardization?.apply(to: &windows)
    }

    /// The most values one window may hold (channels × window): what an escalation can carry.
    public static let maximumWindowValues = 1 << 20
    /// The most channels a model may take.
    public static let maximumChannels = 4096

    /// Checks that the spec is usable: positive sizes within bounds, and normalization arrays that fit the
    /// channels.
    ///
    /// The bounds are checked before anything is sized from the spec: an artifact is outside input until
    /// verified, and a window of five million samples would cost hundreds of megabytes at load.
    ///
    /// - Throws: `ModelError.badInput` naming the field.
    public func validate() throws {
        guard channels > 0, window > 0, hop > 0 else {
            throw ModelError(
                .badInput, "input spec needs positive channels, window and hop, got \(channels), \(window), \(hop)")
        }
        guard channels <= Self.maximumChannels, window <= Self.maximumWindowValues / channels,
            hop <= Self.maximumWindowValues
        else {
            throw ModelError(
                .badInput,
                "input spec of \(channels) channels, window \(window), hop \(hop) is outside the bounds (channels ≤ "
                    + "\(Self.maximumChannels), channels × window and hop ≤ \(Self.maximumWindowValues))")
        }
        if let rate = sampleRateHz, !(rate.isFinite && rate > 0 && rate <= 1_000_000) {
            throw ModelError(.badInput, "input spec sample rate \(rate) Hz is not within (0, 1 MHz]")
        }
        guard mean.count == std.count, mean.isEmpty || mean.count == channels else {
            throw ModelError(
                .badInput, "input spec has \(mean.count) means and \(std.count) stds for \(channels) channels")
        }
        guard mean.allSatisfy(\.isFinite), std.allSatisfy({ $0.isFinite && $0 > 0 }) else {
            throw ModelError(.badInput, "input spec normalization has a non-finite mean or a std that is not positive")
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
    /// Per-class waveform statistics of the training windows and the novelty threshold, recorded by `tandem compress`
    /// for int8 models; absent (nil) in float32 models and in artifacts written before it existed. Inside the
    /// signed manifest like every other field.
    public var novelty: NoveltyStatistics?

    /// Creates a manifest.
    public init(
        name: String, version: String, parentVersion: String? = nil, createdAt: String,
        architecture: [LayerSpec], input: InputSpec, classNames: [String], trainingDataDigest: String? = nil,
        metrics: [String: Double] = [:], numerics: String = "float32", novelty: NoveltyStatistics? = nil
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
        self.novelty = novelty
    }
}

extension InputSpec {
    /// What keeps a model taking this input and naming `classNames` from replacing, on running devices, one
    /// taking `current` and naming `currentClasses`: the windows streams cut (channels, window, hop, sample rate)
    /// and the classes records name must stay the same; the standardization may differ (streams re-standardize
    /// the samples they hold). Empty when it may replace it.
    ///
    /// The registry refuses such a version and the edge refuses such an update, both through this one rule.
    public func replacementDifferences(
        classNames: [String], replacing current: InputSpec, currentClasses: [String]
    ) -> [String] {
        var differences = [String]()
        if channels != current.channels { differences.append("channels \(channels) ≠ \(current.channels)") }
        if window != current.window { differences.append("window \(window) ≠ \(current.window)") }
        if hop != current.hop { differences.append("hop \(hop) ≠ \(current.hop)") }
        if sampleRateHz != current.sampleRateHz {
            func rate(_ hz: Double?) -> String { hz.map { "\($0) Hz" } ?? "none" }
            differences.append("sample rate \(rate(sampleRateHz)) ≠ \(rate(current.sampleRateHz))")
        }
        if classNames != currentClasses { differences.append("classes \(classNames) ≠ \(currentClasses)") }
        return differences
    }
}
