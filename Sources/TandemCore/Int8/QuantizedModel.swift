/// An int8 network: quantization parameters plus int8 weights and int32 biases, checked for consistency.
///
/// Build one with the post-training quantizer (TandemTraining) or from stored tensors and parameters;
/// run it with `Int8Engine`. Construction validates everything an engine relies on — shapes, scale and
/// zero-point ranges, multiplier and shift ranges, weight values in `[-127, 127]` — so a malformed model
/// is rejected with a `QuantizationError` naming the layer and field, never run.
public struct QuantizedModel: Sendable, Equatable {
    /// Scales, zero points, multipliers and layer structure.
    public let parameters: QuantizationParameters
    /// Int8 weights by name: `"i.weight"`, `[filters, kernel, channels]` for conv1d and `[units, inputs]` for dense.
    public let weights: [String: IntegerTensor<Int8>]
    /// Int32 biases by name: `"i.bias"`, `[units]`, in units of `inputScale · weightScale[o]`.
    public let biases: [String: IntegerTensor<Int32>]
    /// Per-sample shapes: `shapes[0]` is the input `[window, channels]`, `shapes[i + 1]` the output of layer `i`.
    public let shapes: [[Int]]
    /// Quantization of the input of each layer (`inputQuantizations[i]` feeds layer `i`).
    public let inputQuantizations: [ActivationQuantization]

    /// Builds and validates a model.
    ///
    /// - Throws: `QuantizationError` naming the first layer and field that is wrong.
    public init(
        parameters: QuantizationParameters, weights: [String: IntegerTensor<Int8>],
        biases: [String: IntegerTensor<Int32>]
    ) throws {
        let p = parameters
        guard p.scheme == QuantizationParameters.currentScheme else {
            throw QuantizationError(.invalidParameters, "unknown quantization scheme `\(p.scheme)`")
        }
        guard p.rounding == QuantizationParameters.currentRounding else {
            throw QuantizationError(.invalidParameters, "unknown rounding `\(p.rounding)`")
        }
        guard p.window > 0, p.channels > 0, p.classes > 0 else {
            throw QuantizationError(
                .shapeMismatch, "window \(p.window), channels \(p.channels) and classes \(p.classes) must be positive")
        }
        guard let last = p.layers.last, last.kind == .dense, !last.fusedReLU, last.output == nil else {
            throw QuantizationError(
                .unsupportedLayer,
                "the last layer must be a dense layer without ReLU or output quantization (float logits)")
        }
        try p.input.validate("input")
        let shapes: [[Int]]
        do {
            shapes = try ModelShapes.trace(
                p.layers.map(\.layerSpec), window: p.window, channels: p.channels, classes: p.classes)
        } catch let error as ModelError {
            throw QuantizationError(.shapeMismatch, error.message)
        }
        if let (index, shape) = shapes.enumerated().first(where: { $0.element.reduce(1, *) > Self.maximumActivation }) {
            throw QuantizationError(
                .shapeMismatch,
                "activation \(index) has shape \(shape), more than \(Self.maximumActivation) values; the engine refuses it"
            )
        }
        var inputs = [p.input]
        for (i, layer) in p.layers.enumerated() {
            let name = "layer \(i) (\(layer.kind.rawValue))"
            let input = shapes[i], output = shapes[i + 1]
            let current = inputs[i]
            let isLast = i == p.layers.count - 1
            switch layer.kind {
            case .conv1d, .dense:
                let units = layer.kind == .conv1d ? output[1] : output[0]
                let weightShape = layer.kind == .conv1d ? [units, layer.kernel ?? 0, input[1]] : [units, input[0]]
                let rowLength = weightShape.dropFirst().reduce(1, *)
                guard rowLength <= Self.maximumRowLength else {
                    throw QuantizationError(
                        .shapeMismatch,
                        "\(name): \(rowLength) products per output could overflow the int32 accumulator (at most \(Self.maximumRowLength))"
                    )
                }
                guard let w = weights["\(i).weight"] else {
                    throw QuantizationError(.badTensor, "\(name) has no weight `\(i).weight`")
                }
                guard w.shape == weightShape, w.values.count == weightShape.reduce(1, *) else {
                    throw QuantizationError(
                        .badTensor,
                        "\(name): weight `\(i).weight` has shape \(w.shape) and \(w.values.count) values, needs \(weightShape)"
                    )
                }
                if let bad = w.values.firstIndex(of: -128) {
                    throw QuantizationError(
                        .badTensor,
                        "\(name): weight `\(i).weight` element \(bad) is -128; symmetric weights lie in -127...127")
                }
                guard let b = biases["\(i).bias"] else {
                    throw QuantizationError(.badTensor, "\(name) has no bias `\(i).bias`")
                }
                guard b.shape == [units], b.values.count == units else {
                    throw QuantizationError(
                        .badTensor, "\(name): bias `\(i).bias` has shape \(b.shape), needs [\(units)]")
                }
                guard let scales = layer.weightScales, scales.count == units else {
                    throw QuantizationError(
                        .invalidParameters,
                        "\(name): needs \(units) weight scales, has \(layer.weightScales?.count ?? 0)")
                }
                if let bad = scales.firstIndex(where: { !($0.isFinite && $0 > 0) }) {
                    throw QuantizationError(
                        .invalidParameters,
                        "\(name): weight scale \(bad) is \(scales[bad]); must be finite and positive")
                }
                if !isLast {
                    guard let out = layer.output else {
                        throw QuantizationError(.invalidParameters, "\(name): missing output quantization")
                    }
                    try out.validate(name + " output")
                    try Self.checkMultipliers(layer.multipliers, count: units, name: name)
                    inputs.append(out)
                }
            case .globalavgpool1d:
                guard let out = layer.output else {
                    throw QuantizationError(.invalidParameters, "\(name): missing output quantization")
                }
                try out.validate(name + " output")
                try Self.checkMultipliers(layer.multipliers, count: 1, name: name)
                inputs.append(out)
            case .relu, .maxpool1d, .avgpool1d, .flatten:
                if let out = layer.output, out != current {
                    throw QuantizationError(.invalidParameters, "\(name): output quantization must equal its input's")
                }
                if layer.fusedReLU {
                    throw QuantizationError(.invalidParameters, "\(name): only conv1d and dense fuse a ReLU")
                }
                inputs.append(current)
            }
        }
        self.parameters = parameters
        self.weights = weights
        self.biases = biases
        self.shapes = shapes
        self.inputQuantizations = Array(inputs.prefix(p.layers.count))
    }

    /// The most values one activation may hold (64 Mi), so a hostile manifest cannot make the engine's
    /// arena huge.
    public static let maximumActivation = 1 << 26
    /// The most products one output may sum: `(2^31 − 1) / (128 · 127)` keeps any int32 accumulator exact.
    public static let maximumRowLength = Int(Int32.max) / (128 * 127)

    private static func checkMultipliers(_ multipliers: [FixedPointMultiplier]?, count: Int, name: String) throws {
        guard let multipliers, multipliers.count == count else {
            throw QuantizationError(
                .invalidParameters, "\(name): needs \(count) requantization multipliers, has \(multipliers?.count ?? 0)"
            )
        }
        if let bad = multipliers.firstIndex(where: { !$0.isValid }) {
            let m = multipliers[bad]
            throw QuantizationError(
                .invalidParameters,
                "\(name): multiplier \(bad) (\(m.multiplier), shift \(m.shift)) is out of range; mantissa in [2^30, 2^31) or 0, shift in \(FixedPointMultiplier.shiftRange)"
            )
        }
    }

    /// Input window length.
    public var window: Int { parameters.window }
    /// Input channels.
    public var channels: Int { parameters.channels }
    /// Output classes.
    public var classes: Int { parameters.classes }

    /// The float architecture this model computes, with fused ReLUs written out again.
    public var architecture: [LayerSpec] {
        parameters.layers.flatMap { layer in
            layer.fusedReLU ? [layer.layerSpec, LayerSpec(type: .relu)] : [layer.layerSpec]
        }
    }

    /// Number of weights and biases.
    public var parameterCount: Int {
        weights.values.reduce(0) { $0 + $1.values.count } + biases.values.reduce(0) { $0 + $1.values.count }
    }

    /// Bytes of the tensors a stored model needs: int8 weights, int32 biases and float32 weight scales.
    ///
    /// Requantization multipliers are not counted: they are a function of the scales and are derived again
    /// when a stored model is loaded (see `QuantizationParameters.derivingMultipliers()`).
    public var storageBytes: Int {
        weights.values.reduce(0) { $0 + $1.values.count } + 4 * biases.values.reduce(0) { $0 + $1.values.count }
            + 4 * parameters.layers.reduce(0) { $0 + ($1.weightScales?.count ?? 0) }
    }

    /// Multiply–accumulate operations for one window.
    public var macsPerWindow: Int {
        var total = 0
        for (i, layer) in parameters.layers.enumerated() {
            let out = shapes[i + 1].reduce(1, *)
            switch layer.kind {
            case .conv1d: total += out * (layer.kernel ?? 0) * shapes[i][1]
            case .dense: total += out * shapes[i][0]
            default: break
            }
        }
        return total
    }
}
