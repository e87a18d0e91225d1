/// Storing int8 models in `.tandem` artifacts.
///
/// An int8 artifact has `numerics: "int8"` and the float architecture with every ReLU written out (the
/// ReLU that follows a conv1d or dense layer is fused again on load). Tensors are named by the index of
/// their layer in that architecture:
///
/// | tensor | type | shape |
/// |---|---|---|
/// | `input.scale`, `input.zero_point` | float32, int32 | `[1]` |
/// | `i.weight` | int8 | `[filters, kernel, channels]` or `[units, inputs]` |
/// | `i.bias` | int32 | `[units]`, in units of input scale × weight scale |
/// | `i.weight_scale` | float32 | `[units]` |
/// | `i.output_scale`, `i.output_zero_point` | float32, int32 | `[1]`, conv/dense (not the last) and global average pool |
///
/// Requantization multipliers are not stored: they are derived from the scales on load, so they cannot
/// disagree with them. Everything is covered by the artifact's checksum and signature.
extension QuantizedModel {
    /// The `numerics` value of int8 artifacts.
    public static let numerics = "int8"

    /// The tensors an artifact stores for this model, named by float-architecture layer index.
    public var artifactTensors: [ArtifactTensor] {
        var tensors: [ArtifactTensor] = [
            .float32("input.scale", Tensor(shape: [1], scalars: [parameters.input.scale])),
            .int32("input.zero_point", shape: [1], values: [parameters.input.zeroPoint]),
        ]
        var index = 0
        for (i, layer) in parameters.layers.enumerated() {
            if let w = weights["\(i).weight"], let b = biases["\(i).bias"], let scales = layer.weightScales {
                tensors.append(.int8("\(index).weight", shape: w.shape, values: w.values))
                tensors.append(.int32("\(index).bias", shape: b.shape, values: b.values))
                tensors.append(.float32("\(index).weight_scale", Tensor(shape: [scales.count], scalars: scales)))
            }
            if let out = layer.output, layer.kind == .conv1d || layer.kind == .dense || layer.kind == .globalavgpool1d {
                tensors.append(.float32("\(index).output_scale", Tensor(shape: [1], scalars: [out.scale])))
                tensors.append(.int32("\(index).output_zero_point", shape: [1], values: [out.zeroPoint]))
            }
            index += layer.fusedReLU ? 2 : 1
        }
        return tensors
    }

    /// Rebuilds and validates the int8 model an artifact stores.
    ///
    /// - Throws: `QuantizationError` if the artifact is not an int8 model, a tensor is missing or has the
    ///   wrong type or shape, or a parameter is out of range (see `init(parameters:weights:biases:)`).
    public init(artifact: ModelArtifact) throws {
        let manifest = artifact.manifest
        guard manifest.numerics == Self.numerics else {
            throw QuantizationError(
                .invalidParameters,
                "model \(manifest.name) \(manifest.version) holds \(manifest.numerics) weights, not int8")
        }
        var byName = [String: ArtifactTensor]()
        for tensor in artifact.tensors { byName[tensor.name] = tensor }
        func scalarFloat(_ name: String) throws -> Float {
            guard let t = byName[name] else {
                throw QuantizationError(.badTensor, "int8 model has no tensor `\(name)`")
            }
            guard case .float32(let v) = t.storage, v.count == 1 else {
                throw QuantizationError(
                    .badTensor, "tensor `\(name)` must be one float32, is \(t.elementType) \(t.shape)")
            }
            return v.scalars[0]
        }
        func scalarInt(_ name: String) throws -> Int32 {
            guard let t = byName[name] else {
                throw QuantizationError(.badTensor, "int8 model has no tensor `\(name)`")
            }
            guard case .int32(_, let v) = t.storage, v.count == 1 else {
                throw QuantizationError(
                    .badTensor, "tensor `\(name)` must be one int32, is \(t.elementType) \(t.shape)")
            }
            return v[0]
        }
        let input = ActivationQuantization(
            scale: try scalarFloat("input.scale"), zeroPoint: try scalarInt("input.zero_point"))
        var layers = [QuantizedLayer]()
        var weights = [String: IntegerTensor<Int8>]()
        var biases = [String: IntegerTensor<Int32>]()
        let architecture = manifest.architecture
        var a = 0
        while a < architecture.count {
            let spec = architecture[a]
            let i = layers.count
            guard let kind = QuantizedLayer.Kind(spec.type) else {
                throw QuantizationError(
                    .unsupportedLayer, "layer \(a) (\(spec.type.rawValue)) cannot appear in an int8 model")
            }
            let fused =
                (kind == .conv1d || kind == .dense) && a + 1 < architecture.count && architecture[a + 1].type == .relu
            var layer = QuantizedLayer(
                kind: kind, units: kind == .conv1d ? spec.filters : kind == .dense ? spec.units : nil,
                kernel: spec.kernel,
                stride: spec.stride, dilation: spec.dilation, padding: spec.padding, fusedReLU: fused)
            if kind == .conv1d || kind == .dense {
                guard let w = byName["\(a).weight"], case .int8(let shape, let values) = w.storage else {
                    throw QuantizationError(
                        .badTensor, "layer \(a) (\(spec.type.rawValue)) needs an int8 tensor `\(a).weight`")
                }
                guard let b = byName["\(a).bias"], case .int32(let bshape, let bvalues) = b.storage else {
                    throw QuantizationError(
                        .badTensor, "layer \(a) (\(spec.type.rawValue)) needs an int32 tensor `\(a).bias`")
                }
                guard let s = byName["\(a).weight_scale"], case .float32(let scales) = s.storage else {
                    throw QuantizationError(
                        .badTensor, "layer \(a) (\(spec.type.rawValue)) needs a float32 tensor `\(a).weight_scale`")
                }
                weights["\(i).weight"] = IntegerTensor(shape: shape, values: values)
                biases["\(i).bias"] = IntegerTensor(shape: bshape, values: bvalues)
                layer.weightScales = scales.scalars
                if layer.units == nil { layer.units = shape.first }
            }
            if (kind == .conv1d || kind == .dense || kind == .globalavgpool1d) && byName["\(a).output_scale"] != nil {
                layer.output = ActivationQuantization(
                    scale: try scalarFloat("\(a).output_scale"), zeroPoint: try scalarInt("\(a).output_zero_point"))
            }
            layers.append(layer)
            a += fused ? 2 : 1
        }
        // Pooling, ReLU and flatten carry their input's quantization.
        var current = input
        for i in layers.indices {
            if let out = layers[i].output {
                current = out
            } else if layers[i].kind != .dense {
                layers[i].output = current
            }
        }
        let parameters = QuantizationParameters(
            calibration: "stored", window: manifest.input.window, channels: manifest.input.channels,
            classes: manifest.classNames.count, input: input, layers: layers)
        try self.init(parameters: try parameters.derivingMultipliers(), weights: weights, biases: biases)
    }
}

extension ModelArtifact {
    /// Packages an int8 model; the golden outputs are the engine's logits on `goldenInputs`.
    ///
    /// - Parameters:
    ///   - quantized: the model.
    ///   - manifest: its manifest; `numerics` and `architecture` are set from the model.
    ///   - goldenInputs: a few normalized windows `[n, window, channels]` for the load-time self-test.
    public init(quantized: QuantizedModel, manifest: ModelManifest, goldenInputs: Tensor) throws {
        var manifest = manifest
        manifest.numerics = QuantizedModel.numerics
        manifest.architecture = quantized.architecture
        self.init(
            manifest: manifest, tensors: quantized.artifactTensors, goldenInputs: goldenInputs,
            goldenOutputs: try Int8Engine(model: quantized).logits(for: goldenInputs))
    }
}
