/// Scale and zero point of an int8 activation tensor: `real = scale · (q − zeroPoint)`.
public struct ActivationQuantization: Codable, Sendable, Equatable {
    /// The step between adjacent int8 values, in real units; finite and positive.
    public var scale: Float
    /// The int8 value that stands for real zero, in `-128...127`.
    public var zeroPoint: Int32

    /// Creates activation parameters.
    public init(scale: Float, zeroPoint: Int32) {
        self.scale = scale
        self.zeroPoint = zeroPoint
    }

    /// Parameters covering `[lower, upper]` (widened to include zero) with 256 levels, asymmetric.
    ///
    /// A degenerate range (all zero) gets scale 1 so the parameters stay valid.
    public init(covering lower: Float, _ upper: Float) {
        let lo = Swift.min(lower, 0)
        let hi = Swift.max(upper, 0)
        let span = hi - lo
        guard span > 0, span.isFinite else {
            self.init(scale: 1, zeroPoint: -128)
            return
        }
        let scale = span / 255
        let zero = (-128 - lo / scale).rounded()
        self.init(scale: scale, zeroPoint: Int32(Swift.min(Swift.max(zero, -128), 127)))
    }

    /// Quantizes one real value: `clamp(round(x / scale) + zeroPoint)`, ties away from zero.
    @inlinable
    public func quantize(_ x: Float) -> Int8 {
        let v = (x / scale).rounded() + Float(zeroPoint)
        return Int8(Swift.min(Swift.max(v, -128), 127))
    }

    /// The real value of an int8 code.
    @inlinable
    public func dequantize(_ q: Int8) -> Float { scale * Float(Int32(q) - zeroPoint) }

    func validate(_ what: String) throws {
        guard scale.isFinite, scale > 0 else {
            throw QuantizationError(.invalidParameters, "\(what): scale \(scale) must be finite and positive")
        }
        guard (-128...127).contains(zeroPoint) else {
            throw QuantizationError(.invalidParameters, "\(what): zero point \(zeroPoint) is outside -128...127")
        }
    }
}

/// The quantization of one layer of an int8 model.
///
/// Convolution and dense layers carry per-output-channel weight scales and one fixed-point multiplier
/// per output channel (`inputScale · weightScale[o] / outputScale`); a ReLU that follows them is fused
/// into the output clamp. Pooling, ReLU and flatten keep their input's scale and zero point.
/// The last layer, a dense layer, has no output quantization: its int32 accumulators are dequantized
/// straight to float logits with `inputScale · weightScale[o]`.
public struct QuantizedLayer: Codable, Sendable, Equatable {
    /// The operation; same names as `LayerSpec.Kind` (no batch norm or dropout: they are folded away).
    public enum Kind: String, Codable, Sendable, CaseIterable {
        case conv1d, dense, relu, maxpool1d, avgpool1d, globalavgpool1d, flatten

        /// The int8 operation for a float layer; nil for batch norm and dropout, which have none.
        public init?(_ type: LayerSpec.Kind) {
            switch type {
            case .conv1d: self = .conv1d
            case .dense: self = .dense
            case .relu: self = .relu
            case .maxpool1d: self = .maxpool1d
            case .avgpool1d: self = .avgpool1d
            case .globalavgpool1d: self = .globalavgpool1d
            case .flatten: self = .flatten
            case .batchnorm1d, .dropout: return nil
            }
        }
    }

    /// The operation.
    public var kind: Kind
    /// Output channels of conv1d, units of dense.
    public var units: Int?
    /// Kernel of conv1d and pooling.
    public var kernel: Int?
    /// Stride of conv1d and pooling.
    public var stride: Int?
    /// Dilation of conv1d and pooling.
    public var dilation: Int?
    /// Padding of conv1d and pooling.
    public var padding: LayerSpec.Padding?
    /// Whether a ReLU is fused into the output clamp (conv1d and dense).
    public var fusedReLU: Bool
    /// Quantization of this layer's output; nil only for the final dense layer (float logits).
    public var output: ActivationQuantization?
    /// Per-output-channel weight scales (conv1d and dense).
    public var weightScales: [Float]?
    /// Per-output-channel requantization multipliers (conv1d, dense with an int8 output, global average pool: one).
    public var multipliers: [FixedPointMultiplier]?

    /// Creates a layer description.
    public init(
        kind: Kind, units: Int? = nil, kernel: Int? = nil, stride: Int? = nil, dilation: Int? = nil,
        padding: LayerSpec.Padding? = nil, fusedReLU: Bool = false, output: ActivationQuantization? = nil,
        weightScales: [Float]? = nil, multipliers: [FixedPointMultiplier]? = nil
    ) {
        self.kind = kind
        self.units = units
        self.kernel = kernel
        self.stride = stride
        self.dilation = dilation
        self.padding = padding
        self.fusedReLU = fusedReLU
        self.output = output
        self.weightScales = weightScales
        self.multipliers = multipliers
    }

    /// The float layer spec this layer computes (a fused ReLU is not included).
    public var layerSpec: LayerSpec {
        let type: LayerSpec.Kind =
            switch kind {
            case .conv1d: .conv1d
            case .dense: .dense
            case .relu: .relu
            case .maxpool1d: .maxpool1d
            case .avgpool1d: .avgpool1d
            case .globalavgpool1d: .globalavgpool1d
            case .flatten: .flatten
            }
        return LayerSpec(
            type: type, filters: kind == .conv1d ? units : nil, units: kind == .dense ? units : nil, kernel: kernel,
            stride: stride, dilation: dilation, padding: padding)
    }
}

/// Everything about an int8 model except its weight and bias tensors; stored as JSON with the model.
///
/// The scheme: weights int8 per output channel, symmetric (`[-127, 127]`, zero point 0); activations
/// int8 per tensor, asymmetric; biases int32 in units of `inputScale · weightScale[o]`; requantization by
/// `FixedPointMultiplier` (round half away from zero, saturating clamp). Only the input quantization
/// and the final dequantization use floats.
public struct QuantizationParameters: Codable, Sendable, Equatable {
    /// The scheme's name, `int8-per-channel-symmetric-weights-asymmetric-activations`.
    public var scheme: String
    /// The rounding rule of requantization and input quantization: `half-away-from-zero`.
    public var rounding: String
    /// How activation ranges were calibrated (`minmax`, `percentile:99.99`, `mse`), for the record.
    public var calibration: String
    /// Input window length.
    public var window: Int
    /// Input channels.
    public var channels: Int
    /// Output classes.
    public var classes: Int
    /// Quantization of the (already normalized) input window.
    public var input: ActivationQuantization
    /// The layers, in order; weights of layer `i` are named `"i.weight"` and `"i.bias"`.
    public var layers: [QuantizedLayer]

    /// The scheme this build writes and runs.
    public static let currentScheme = "int8-per-channel-symmetric-weights-asymmetric-activations"
    /// The rounding rule this build implements.
    public static let currentRounding = "half-away-from-zero"

    /// Creates parameters for the current scheme.
    public init(
        calibration: String, window: Int, channels: Int, classes: Int, input: ActivationQuantization,
        layers: [QuantizedLayer]
    ) {
        self.scheme = Self.currentScheme
        self.rounding = Self.currentRounding
        self.calibration = calibration
        self.window = window
        self.channels = channels
        self.classes = classes
        self.input = input
        self.layers = layers
    }
}

/// A named integer tensor of an int8 model: a shape and its row-major values.
public struct IntegerTensor<Scalar: FixedWidthInteger & Sendable>: Sendable, Equatable {
    /// The size of each dimension.
    public var shape: [Int]
    /// The elements in row-major order.
    public var values: [Scalar]

    /// Creates a tensor; shape and count are checked when a model is built from it.
    public init(shape: [Int], values: [Scalar]) {
        self.shape = shape
        self.values = values
    }
}

extension QuantizationParameters {
    /// These parameters with every requantization multiplier recomputed from the scales.
    ///
    /// Conv1d and dense layers (except the last) get `inputScale · weightScale[o] / outputScale`; global
    /// average pooling gets `inputScale / (length · outputScale)`. Stored models keep only the scales, so a
    /// multiplier can never disagree with the scales it was derived from.
    /// - Throws: `QuantizationError` if a scale is missing, not positive or not finite, or the layers do not fit.
    public func derivingMultipliers() throws -> QuantizationParameters {
        let shapes: [[Int]]
        do {
            shapes = try ModelShapes.trace(
                layers.map(\.layerSpec), window: window, channels: channels, classes: classes)
        } catch let error as ModelError {
            throw QuantizationError(.shapeMismatch, error.message)
        }
        var result = self
        var current = input
        for (i, layer) in layers.enumerated() {
            let name = "layer \(i) (\(layer.kind.rawValue))"
            switch layer.kind {
            case .conv1d, .dense:
                guard let out = layer.output else { continue }
                guard let scales = layer.weightScales else {
                    throw QuantizationError(.invalidParameters, "\(name): missing weight scales")
                }
                try out.validate(name + " output")
                try current.validate(name + " input")
                result.layers[i].multipliers = try scales.map { s in
                    do {
                        return try FixedPointMultiplier(real: Double(current.scale) * Double(s) / Double(out.scale))
                    } catch let error as QuantizationError {
                        throw QuantizationError(error.code, "\(name): \(error.message)")
                    }
                }
                current = out
            case .globalavgpool1d:
                guard let out = layer.output else {
                    throw QuantizationError(.invalidParameters, "\(name): missing output quantization")
                }
                try out.validate(name + " output")
                try current.validate(name + " input")
                result.layers[i].multipliers = [
                    try FixedPointMultiplier(real: Double(current.scale) / (Double(shapes[i][0]) * Double(out.scale)))
                ]
                current = out
            default:
                break
            }
        }
        return result
    }
}
