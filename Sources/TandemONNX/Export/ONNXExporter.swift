import TandemCore

/// Writes a Tandem model as an ONNX graph that ONNX Runtime and other ONNX tools run.
///
/// The graph takes raw windows `[N, window, channels]` (Tandem's channels-last layout) named `input`,
/// standardizes them with the model's mean and std as `Sub` and `Div` when the model has them, and gives one
/// output, `logits` `[N, classes]` (apply softmax for probabilities, as Tandem does). Convolutions run on
/// `[N, C, L]` after one Transpose; a `flatten` transposes back first, so the flattened order is Tandem's.
/// An int8 model becomes a QDQ graph: `QuantizeLinear`/`DequantizeLinear` pairs with Tandem's scales and zero
/// points on the input and every requantized activation, int8 weights dequantized per output channel and int32
/// biases in units of input scale × weight scale. Default opset 13.
public enum ONNXExporter {
    /// The default-domain opset the exported graphs use.
    public static let opset: Int64 = 13

    /// The ONNX model of an artifact (float32 or int8).
    ///
    /// - Parameter standardization: put the model's standardization into the graph (default); without it the
    ///   graph takes standardized windows, as the golden inputs are.
    /// - Throws: `ONNXError.badModel` if the artifact does not hold a model Tandem can run.
    public static func export(_ artifact: ModelArtifact, standardization: Bool = true) throws(ONNXError)
        -> ONNXModel
    {
        let manifest = artifact.manifest
        var builder = GraphBuilder(window: manifest.input.window, channels: manifest.input.channels)
        if standardization, let s = manifest.input.standardization { builder.standardize(s) }
        do {
            switch manifest.numerics {
            case "float32":
                var weights = [String: Tensor]()
                for tensor in artifact.tensors {
                    guard case .float32(let value) = tensor.storage else {
                        throw ONNXError(.badModel, "tensor `\(tensor.name)` of a float32 model is not float32")
                    }
                    weights[tensor.name] = value
                }
                let model = try FloatModel(
                    architecture: manifest.architecture, window: manifest.input.window,
                    channels: manifest.input.channels, classes: manifest.classNames.count, weights: weights)
                try builder.addFloat(model)
            case QuantizedModel.numerics:
                try builder.addQuantized(try QuantizedModel(artifact: artifact))
            default:
                throw ONNXError(.badModel, "model numerics \(manifest.numerics) is neither float32 nor int8")
            }
        } catch let error as ONNXError {
            throw error
        } catch {
            throw ONNXError(.badModel, "\(manifest.name) \(manifest.version): \(error)")
        }
        let graph = ONNXGraph(
            name: manifest.name, nodes: builder.nodes, initializers: builder.initializers,
            inputs: [
                ONNXValueInfo(
                    name: "input",
                    shape: [.parameter("N"), .value(manifest.input.window), .value(manifest.input.channels)])
            ],
            outputs: [ONNXValueInfo(name: "logits", shape: [.parameter("N"), .value(manifest.classNames.count)])])
        var metadata = [
            ONNXMetadataEntry(key: "tandem.name", value: manifest.name),
            ONNXMetadataEntry(key: "tandem.version", value: manifest.version),
            ONNXMetadataEntry(key: "tandem.numerics", value: manifest.numerics),
            ONNXMetadataEntry(key: "tandem.classes", value: manifest.classNames.joined(separator: ",")),
            ONNXMetadataEntry(key: "tandem.hop", value: String(manifest.input.hop)),
            ONNXMetadataEntry(
                key: "tandem.standardization",
                value: manifest.input.standardization == nil
                    ? "none" : standardization ? "in graph (Sub, Div)" : "not in graph: input is standardized"),
        ]
        if let s = manifest.input.standardization, !standardization {
            metadata.append(ONNXMetadataEntry(key: "tandem.mean", value: s.mean.map { "\($0)" }.joined(separator: ",")))
            metadata.append(ONNXMetadataEntry(key: "tandem.std", value: s.std.map { "\($0)" }.joined(separator: ",")))
        }
        return ONNXModel(
            irVersion: 8, opsetImports: ["": opset], producerName: "tandem", producerVersion: "1", graph: graph,
            metadata: metadata)
    }
}

/// Builds the node list of an exported graph, one Tandem layer at a time.
struct GraphBuilder {
    var nodes = [ONNXNode]()
    var initializers = [ONNXTensor]()
    /// The newest value's name.
    var current = "input"
    /// Whether the newest value is a sequence `[N, C, L]` (false: flat `[N, F]`; before the first Transpose it is
    /// `[N, L, C]`, see `channelsFirst`).
    var channelsFirst = false
    var isFlat = false
    var length: Int
    var counter = 0

    init(window: Int, channels: Int) { length = window }

    mutating func name(_ stem: String) -> String {
        counter += 1
        return "\(stem)_\(counter)"
    }

    mutating func constant(_ stem: String, dims: [Int], _ values: ONNXTensor.Values) -> String {
        let name = name(stem)
        initializers.append(ONNXTensor(name: name, dims: dims, values: values))
        return name
    }

    /// Appends a node on the newest value (plus `extra` inputs) and makes its output the newest value.
    mutating func node(_ op: String, _ extra: [String] = [], _ attributes: [ONNXAttribute] = [], output: String? = nil)
    {
        let out = output ?? name(op.lowercased())
        nodes.append(
            ONNXNode(name: out, opType: op, inputs: [current] + extra, outputs: [out], attributes: attributes))
        current = out
    }

    mutating func standardize(_ s: Standardization) {
        node("Sub", [constant("mean", dims: [s.channels], .float(s.mean))])
        node("Div", [constant("std", dims: [s.channels], .float(s.std))])
    }

    /// Makes the newest value `[N, C, L]`.
    mutating func toChannelsFirst() {
        if !channelsFirst && !isFlat {
            node("Transpose", [], [ONNXAttribute("perm", .ints([0, 2, 1]))])
            channelsFirst = true
        }
    }

    /// Tandem's global average pooling: `[N, C, L]` pooled over `L`, then `[N, C]`.
    mutating func globalAveragePool() {
        toChannelsFirst()
        node("GlobalAveragePool")
        node("Flatten", [], [ONNXAttribute("axis", .int(1))])
        isFlat = true
        channelsFirst = false
    }

    /// Tandem's flatten: back to `[N, L, C]`, then `[N, L · C]`.
    mutating func flatten() {
        if channelsFirst { node("Transpose", [], [ONNXAttribute("perm", .ints([0, 2, 1]))]) }
        node("Flatten", [], [ONNXAttribute("axis", .int(1))])
        channelsFirst = false
        isFlat = true
    }

    func windowAttributes(_ g: WindowGeometry, conv: Bool) -> [ONNXAttribute] {
        let span = (g.kernel - 1) * g.dilation + 1
        let right = max(0, (g.outputLength - 1) * g.stride + span - g.inputLength - g.padLeft)
        var attributes = [
            ONNXAttribute("kernel_shape", .ints([Int64(g.kernel)])),
            ONNXAttribute("strides", .ints([Int64(g.stride)])),
            ONNXAttribute("pads", .ints([Int64(g.padLeft), Int64(right)])),
        ]
        if conv || g.dilation != 1 { attributes.append(ONNXAttribute("dilations", .ints([Int64(g.dilation)]))) }
        return attributes
    }

    /// ONNX's `[F, C, k]` from Tandem's `[F, k, C]`.
    static func convolutionWeight<T>(_ w: [T], filters: Int, kernel: Int, channels: Int) -> [T] {
        var out = w
        for f in 0..<filters {
            for j in 0..<kernel {
                for c in 0..<channels { out[(f * channels + c) * kernel + j] = w[(f * kernel + j) * channels + c] }
            }
        }
        return out
    }

    /// A window layer's geometry over the current length, or an error naming the layer.
    func geometry(_ layer: LayerSpec, _ index: Int) throws -> WindowGeometry {
        try layer.windowGeometry(inputLength: length, index: index)
    }

    mutating func addFloat(_ model: FloatModel) throws {
        for (i, layer) in model.architecture.enumerated() {
            let input = model.shapes[i], output = model.shapes[i + 1]
            switch layer.type {
            case .conv1d:
                toChannelsFirst()
                let g = try geometry(layer, i)
                let w = model.weights["\(i).weight"]!.scalars
                let weight = constant(
                    "conv\(i)_weight", dims: [output[1], input[1], g.kernel],
                    .float(Self.convolutionWeight(w, filters: output[1], kernel: g.kernel, channels: input[1])))
                var extra = [weight]
                if let b = model.weights["\(i).bias"] {
                    extra.append(constant("conv\(i)_bias", dims: [output[1]], .float(b.scalars)))
                }
                node("Conv", extra, windowAttributes(g, conv: true))
                length = output[0]
            case .dense:
                if !isFlat { flatten() }
                let w = model.weights["\(i).weight"]!
                var extra = [constant("dense\(i)_weight", dims: w.shape, .float(w.scalars))]
                if let b = model.weights["\(i).bias"] {
                    extra.append(constant("dense\(i)_bias", dims: [output[0]], .float(b.scalars)))
                }
                let last = i == model.architecture.count - 1
                node("Gemm", extra, [ONNXAttribute("transB", .int(1))], output: last ? "logits" : nil)
            case .relu:
                node("Relu")
            case .maxpool1d, .avgpool1d:
                try pool(layer, i, output: output)
            case .globalavgpool1d:
                globalAveragePool()
            case .flatten:
                flatten()
            case .batchnorm1d:
                toChannelsFirst()
                let c = input.last!
                let extra = ["gamma", "beta", "mean", "variance"].map { part in
                    constant("bn\(i)_\(part)", dims: [c], .float(model.weights["\(i).\(part)"]!.scalars))
                }
                node("BatchNormalization", extra, [ONNXAttribute("epsilon", .float(layer.epsilon ?? 1e-5))])
            case .dropout:
                break
            }
        }
        if current != "logits" { node("Identity", output: "logits") }
    }

    mutating func pool(_ layer: LayerSpec, _ i: Int, output: [Int]) throws {
        toChannelsFirst()
        let g = try geometry(layer, i)
        if layer.type == .maxpool1d {
            node("MaxPool", [], windowAttributes(g, conv: false))
        } else {
            guard g.dilation == 1 else {
                throw ONNXError(.badModel, "layer \(i): a dilated average pooling needs ONNX opset 19")
            }
            node("AveragePool", [], windowAttributes(g, conv: false) + [ONNXAttribute("count_include_pad", .int(0))])
        }
        length = output[0]
    }

    mutating func quantizeDequantize(_ q: ActivationQuantization, _ stem: String) {
        let scale = constant("\(stem)_scale", dims: [], .float([q.scale]))
        let zero = constant("\(stem)_zero_point", dims: [], .int8([Int8(clamping: q.zeroPoint)]))
        node("QuantizeLinear", [scale, zero])
        node("DequantizeLinear", [scale, zero])
    }

    mutating func addQuantized(_ model: QuantizedModel) throws {
        let p = model.parameters
        quantizeDequantize(p.input, "input")
        for (i, layer) in p.layers.enumerated() {
            let input = model.shapes[i], output = model.shapes[i + 1]
            let inputScale = model.inputQuantizations[i].scale
            let last = i == p.layers.count - 1
            switch layer.kind {
            case .conv1d, .dense:
                let isConv = layer.kind == .conv1d
                if isConv { toChannelsFirst() } else if !isFlat { flatten() }
                let w = model.weights["\(i).weight"]!, b = model.biases["\(i).bias"]!
                let units = w.shape[0]
                let scales = layer.weightScales ?? []
                let g = try isConv ? geometry(layer.layerSpec, i) : nil
                let dims = isConv ? [units, input[1], g!.kernel] : w.shape
                let values =
                    isConv
                    ? Self.convolutionWeight(w.values, filters: units, kernel: g!.kernel, channels: input[1]) : w.values
                let stem = "\(isConv ? "conv" : "dense")\(i)"
                let q = constant("\(stem)_weight_q", dims: dims, .int8(values))
                let ws = constant("\(stem)_weight_scale", dims: [units], .float(scales))
                let wz = constant("\(stem)_weight_zero_point", dims: [units], .int8(Array(repeating: 0, count: units)))
                let weightName = name("\(stem)_weight")
                nodes.append(
                    ONNXNode(
                        name: weightName, opType: "DequantizeLinear", inputs: [q, ws, wz], outputs: [weightName],
                        attributes: [ONNXAttribute("axis", .int(0))]))
                let bq = constant("\(stem)_bias_q", dims: [units], .int32(b.values))
                let bs = constant("\(stem)_bias_scale", dims: [units], .float(scales.map { inputScale * $0 }))
                let bz = constant("\(stem)_bias_zero_point", dims: [units], .int32(Array(repeating: 0, count: units)))
                let biasName = name("\(stem)_bias")
                nodes.append(
                    ONNXNode(
                        name: biasName, opType: "DequantizeLinear", inputs: [bq, bs, bz], outputs: [biasName],
                        attributes: [ONNXAttribute("axis", .int(0))]))
                if isConv {
                    node("Conv", [weightName, biasName], windowAttributes(g!, conv: true))
                    length = output[0]
                } else {
                    node(
                        "Gemm", [weightName, biasName], [ONNXAttribute("transB", .int(1))],
                        output: last ? "logits" : nil)
                }
                if layer.fusedReLU { node("Relu") }
                if let out = layer.output, !last { quantizeDequantize(out, "\(stem)_output") }
            case .relu:
                node("Relu")
            case .maxpool1d:
                try pool(layer.layerSpec, i, output: output)
            case .avgpool1d:
                try pool(layer.layerSpec, i, output: output)
                quantizeDequantize(model.inputQuantizations[i], "pool\(i)_output")
            case .globalavgpool1d:
                globalAveragePool()
                if let out = layer.output { quantizeDequantize(out, "gap\(i)_output") }
            case .flatten:
                flatten()
            }
        }
        if current != "logits" { node("Identity", output: "logits") }
    }
}
