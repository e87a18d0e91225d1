import TandemCore

/// Post-training int8 quantization of a float model (batch norm already folded), calibrated on sample windows.
///
/// Steps: fuse each conv1d/dense with a following ReLU; run the float model over the calibration windows
/// and record every fused layer's output; choose each activation's scale and zero point with the
/// calibration method; quantize weights per output channel (symmetric, `[-127, 127]`), biases to int32
/// in units of `inputScale · weightScale`, and derive one fixed-point multiplier per output channel.
public struct PostTrainingQuantizer: Sendable {
    /// How activation ranges are chosen.
    public var method: CalibrationMethod

    /// Creates a quantizer.
    public init(method: CalibrationMethod = .percentile(99.99)) {
        self.method = method
    }

    /// Quantizes `model` using `calibration` windows (`[count, window, channels]`, normalized like training data).
    ///
    /// - Throws: `QuantizationError` if the architecture has a layer the int8 scheme does not support
    ///   (a batch norm that was not folded), the calibration set is empty or misshapen, or a value is not finite.
    public func quantize(_ model: FloatModel, calibration: Tensor) throws -> QuantizedModel {
        guard calibration.rank == 3, calibration.shape[0] > 0, calibration.shape[1] == model.window,
            calibration.shape[2] == model.channels
        else {
            throw QuantizationError(
                .badCalibration,
                "calibration windows have shape \(calibration.shape), need [n > 0, \(model.window), \(model.channels)]")
        }
        let plan = try FusedFloatPlan(model)
        let outputs = plan.outputs(for: calibration)
        let input = RangeCalibrator.quantization(of: calibration.scalars, method: method)
        var layers = [QuantizedLayer]()
        var weights = [String: IntegerTensor<Int8>]()
        var biases = [String: IntegerTensor<Int32>]()
        var current = input
        for (i, op) in plan.ops.enumerated() {
            let spec = op.spec
            let isLast = i == plan.ops.count - 1
            var layer = QuantizedLayer(
                kind: op.kind, kernel: spec.kernel, stride: spec.stride, dilation: spec.dilation, padding: spec.padding,
                fusedReLU: op.fusedReLU)
            switch op.kind {
            case .conv1d, .dense:
                let w = model.weights["\(op.source).weight"] ?? Tensor(shape: [0])
                let units = w.shape[0]
                let rowLength = w.count / Swift.max(units, 1)
                let b = model.weights["\(op.source).bias"]?.scalars ?? [Float](repeating: 0, count: units)
                var q = [Int8](repeating: 0, count: w.count)
                var scales = [Float](repeating: 1, count: units)
                var qb = [Int32](repeating: 0, count: units)
                for o in 0..<units {
                    var largest: Float = 0
                    for j in 0..<rowLength { largest = Swift.max(largest, abs(w.scalars[o * rowLength + j])) }
                    guard largest.isFinite else {
                        throw QuantizationError(.badTensor, "layer \(op.source) weights of unit \(o) are not finite")
                    }
                    let scale = largest > 0 ? largest / 127 : 1
                    scales[o] = scale
                    for j in 0..<rowLength {
                        let v = (w.scalars[o * rowLength + j] / scale).rounded()
                        q[o * rowLength + j] = Int8(Swift.min(Swift.max(v, -127), 127))
                    }
                    let biasUnit = Double(current.scale) * Double(scale)
                    let bq = (Double(b[o]) / biasUnit).rounded()
                    guard bq.isFinite else {
                        throw QuantizationError(.badTensor, "layer \(op.source) bias \(o) is not finite")
                    }
                    qb[o] = Int32(Swift.min(Swift.max(bq, Double(Int32.min)), Double(Int32.max)))
                }
                layer.units = units
                layer.weightScales = scales
                weights["\(i).weight"] = IntegerTensor(shape: w.shape, values: q)
                biases["\(i).bias"] = IntegerTensor(shape: [units], values: qb)
                if !isLast {
                    let out = RangeCalibrator.quantization(of: outputs[i], method: method)
                    layer.output = out
                    layer.multipliers = try scales.map {
                        try FixedPointMultiplier(real: Double(current.scale) * Double($0) / Double(out.scale))
                    }
                    current = out
                }
            case .globalavgpool1d:
                let out = RangeCalibrator.quantization(of: outputs[i], method: method)
                let length = plan.shapes[i][0]
                layer.output = out
                layer.multipliers = [
                    try FixedPointMultiplier(real: Double(current.scale) / (Double(length) * Double(out.scale)))
                ]
                current = out
            case .relu, .maxpool1d, .avgpool1d, .flatten:
                layer.output = current
            }
            layers.append(layer)
        }
        let parameters = QuantizationParameters(
            calibration: method.description, window: model.window, channels: model.channels, classes: model.classes,
            input: input, layers: layers)
        return try QuantizedModel(parameters: parameters, weights: weights, biases: biases)
    }
}

/// A float model regrouped into the int8 scheme's layers (conv/dense with their ReLU fused), with a float
/// forward pass that yields every fused layer's output — the tensors the quantizer calibrates.
struct FusedFloatPlan {
    struct Op {
        var kind: QuantizedLayer.Kind
        /// Index of the layer in the float model's architecture.
        var source: Int
        var spec: LayerSpec
        var fusedReLU: Bool
    }

    let model: FloatModel
    let ops: [Op]
    /// Per-sample shapes: `shapes[i]` is the input of op `i`.
    let shapes: [[Int]]

    init(_ model: FloatModel) throws {
        var ops = [Op]()
        var shapes = [[Int]]()
        var i = 0
        let arch = model.architecture
        while i < arch.count {
            let spec = arch[i]
            if spec.type == .dropout {
                i += 1
                continue
            }
            guard let kind = QuantizedLayer.Kind(spec.type) else {
                throw QuantizationError(
                    .unsupportedLayer,
                    "layer \(i) (batchnorm1d) was not folded into a conv1d or dense layer; int8 needs it folded")
            }
            let fuse = (kind == .conv1d || kind == .dense) && i + 1 < arch.count && arch[i + 1].type == .relu
            shapes.append(model.shapes[i])
            ops.append(Op(kind: kind, source: i, spec: spec, fusedReLU: fuse))
            i += fuse ? 2 : 1
        }
        shapes.append([model.classes])
        guard let last = ops.last, last.kind == .dense, !last.fusedReLU else {
            throw QuantizationError(
                .unsupportedLayer, "the model must end in a dense layer without ReLU to be quantized")
        }
        self.model = model
        self.ops = ops
        self.shapes = shapes
    }

    /// Every op's float output for `windows`, flattened over the batch (`result[i]` is op `i`'s output).
    func outputs(for windows: Tensor) -> [[Float]] {
        var result = [[Float]](repeating: [], count: ops.count)
        let n = windows.shape[0]
        let chunk = 64
        var start = 0
        while start < n {
            var x = windows.slice(start..<Swift.min(start + chunk, n))
            for (i, op) in ops.enumerated() {
                x = apply(op, index: i, to: x)
                result[i] += x.scalars
            }
            start += chunk
        }
        return result
    }

    /// One op in float, the same computation the float model does for the layers it stands for.
    func apply(_ op: Op, index i: Int, to x: Tensor) -> Tensor {
        let batch = x.shape[0]
        let input = shapes[i]
        let output = model.shapes[op.source + 1]
        var y = Tensor(shape: [batch] + output)
        let w = model.weights["\(op.source).weight"]
        let b = model.weights["\(op.source).bias"]
        x.scalars.withUnsafeBufferPointer { xs in
            y.scalars.withUnsafeMutableBufferPointer { ys in
                let xp = xs.baseAddress!, yp = ys.baseAddress!
                switch op.kind {
                case .conv1d:
                    guard let w, let g = try? op.spec.windowGeometry(inputLength: input[0], index: op.source) else {
                        return
                    }
                    var col = [Float](repeating: 0, count: batch * g.outputLength * g.kernel * input[1])
                    w.scalars.withUnsafeBufferPointer { wp in
                        col.withUnsafeMutableBufferPointer { cp in
                            let bias = b?.scalars ?? [Float](repeating: 0, count: output[1])
                            bias.withUnsafeBufferPointer { bp in
                                Kernels.conv1d(
                                    xp, batch: batch, channels: input[1], geometry: g, weight: wp.baseAddress!,
                                    bias: bp.baseAddress, filters: output[1], col: cp.baseAddress!, into: yp)
                            }
                        }
                    }
                case .dense:
                    guard let w else { return }
                    let bias = b?.scalars ?? [Float](repeating: 0, count: output[0])
                    w.scalars.withUnsafeBufferPointer { wp in
                        bias.withUnsafeBufferPointer { bp in
                            Kernels.dense(
                                xp, batch: batch, inputs: input[0], weight: wp.baseAddress!, bias: bp.baseAddress,
                                units: output[0], into: yp)
                        }
                    }
                case .relu, .flatten:
                    yp.update(from: xp, count: x.count)
                    if op.kind == .relu { Kernels.relu(yp, count: x.count) }
                case .maxpool1d, .avgpool1d:
                    guard let g = try? op.spec.windowGeometry(inputLength: input[0], index: op.source) else { return }
                    Kernels.pool1d(
                        xp, batch: batch, channels: input[1], geometry: g, max: op.kind == .maxpool1d, into: yp)
                case .globalavgpool1d:
                    Kernels.globalAveragePool(xp, batch: batch, length: input[0], channels: input[1], into: yp)
                }
                if op.fusedReLU { Kernels.relu(yp, count: ys.count) }
            }
        }
        return y
    }
}
