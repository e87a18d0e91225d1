import TandemCore

/// Walks the nodes of a graph in order, keeping every value as an `Activation` or a constant, and collects the
/// Tandem layers they map to. One mapper tries one input layout.
struct GraphMapper {
    enum Value {
        case activation(Activation)
        case constant(ONNXTensor)
    }

    let model: ONNXModel
    let options: ONNXImportOptions
    let inputName: String
    let candidate: InputCandidate
    var values = [String: Value]()
    var layers = [PendingLayer]()
    var notes = [String]()
    /// Nodes mapped so far: how far this layout got, to report the most telling failure.
    var progress = 0
    var softmaxOutput: String?
    var mean: [Float]?
    var std: [Float]?

    /// The node being mapped, for errors.
    var node = ONNXNode(name: "", opType: "", inputs: [], outputs: [])

    init(model: ONNXModel, options: ONNXImportOptions, inputName: String, layout: InputCandidate) {
        self.model = model
        self.options = options
        self.inputName = inputName
        self.candidate = layout
        for tensor in model.graph.initializers { values[tensor.name] = .constant(tensor) }
        let axes: [Axis] =
            switch layout.layout {
            case .channelsFirst: [.batch, .channel, .time]
            case .channelsLast: [.batch, .time, .channel]
            case .univariate: [.batch, .time]
            }
        values[inputName] = .activation(
            Activation(
                axes: axes, form: .sequence(length: layout.window, channels: layout.channels), position: 0))
    }

    var opset: Int64 { model.defaultOpset ?? 0 }

    // MARK: Errors and operands

    func fail(_ message: String) -> ONNXError {
        ONNXError(.unsupported, message, node: node.name, opType: node.opType)
    }

    /// The activation a node takes as input `index`: it must be the newest one, and nothing may follow Softmax.
    func activation(_ index: Int) throws(ONNXError) -> Activation {
        guard index < node.inputs.count, !node.inputs[index].isEmpty else {
            throw fail("input \(index) is missing")
        }
        let name = node.inputs[index]
        guard let value = values[name] else { throw fail("input '\(name)' is not produced by any earlier node") }
        guard case .activation(let a) = value else {
            throw fail("input '\(name)' is a constant; Tandem maps operators on the network's activation")
        }
        if softmaxOutput != nil {
            throw fail("it follows Softmax; Tandem maps a Softmax only as the network's last operation")
        }
        guard a.position == layers.count else {
            throw fail(
                "it takes '\(name)', an activation from before the newest layer: the graph branches (a skip or "
                    + "residual connection), and Tandem's networks are sequential")
        }
        return a
    }

    /// The constant a node takes as input `index`, or nil when an optional input is left out.
    func constant(_ index: Int, optional: Bool = false) throws(ONNXError) -> ONNXTensor? {
        guard index < node.inputs.count, !node.inputs[index].isEmpty else {
            if optional { return nil }
            throw fail("input \(index) is missing")
        }
        let name = node.inputs[index]
        guard let value = values[name] else { throw fail("input '\(name)' is not produced by any earlier node") }
        guard case .constant(let tensor) = value else {
            throw fail("input '\(name)' must be a constant (an initializer or a Constant node), not computed")
        }
        return tensor
    }

    func floats(_ index: Int, _ what: String) throws(ONNXError) -> ONNXTensor {
        guard let tensor = try constant(index), tensor.floats != nil else {
            throw fail("\(what) must be a float constant")
        }
        guard tensor.floats!.allSatisfy(\.isFinite) else {
            throw fail("\(what) '\(tensor.name)' has non-finite values")
        }
        return tensor
    }

    func integers(_ index: Int, _ what: String) throws(ONNXError) -> [Int64]? {
        guard let tensor = try constant(index, optional: true) else { return nil }
        guard let values = tensor.integers else { throw fail("\(what) must be an integer constant") }
        return values
    }

    func int(_ name: String, default value: Int64) throws(ONNXError) -> Int64 {
        switch node.attribute(name) {
        case nil: return value
        case .int(let i)?: return i
        default: throw fail("attribute \(name) must be an integer")
        }
    }

    func ints(_ name: String) throws(ONNXError) -> [Int64]? {
        switch node.attribute(name) {
        case nil: return nil
        case .ints(let i)?: return i
        default: throw fail("attribute \(name) must be a list of integers")
        }
    }

    func float(_ name: String, default value: Float) throws(ONNXError) -> Float {
        switch node.attribute(name) {
        case nil: return value
        case .float(let f)?: return f
        default: throw fail("attribute \(name) must be a float")
        }
    }

    func string(_ name: String, default value: String) throws(ONNXError) -> String {
        switch node.attribute(name) {
        case nil: return value
        case .string(let s)?: return String(decoding: s, as: UTF8.self)
        default: throw fail("attribute \(name) must be a string")
        }
    }

    mutating func produce(_ value: Activation, output: Int = 0) throws(ONNXError) {
        guard output < node.outputs.count, !node.outputs[output].isEmpty else {
            throw fail("output \(output) is missing")
        }
        values[node.outputs[output]] = .activation(value)
    }

    /// Refuses optional outputs (indices of MaxPool, Dropout's mask, batch norm's training statistics) in use.
    func requireUnusedOutputs(after count: Int) throws(ONNXError) {
        for name in node.outputs.dropFirst(count) where !name.isEmpty {
            let used =
                model.graph.nodes.contains { $0.inputs.contains(name) }
                || model.graph.outputs.contains { $0.name == name }
            if used { throw fail("its output '\(name)' is used; Tandem computes only the first output") }
        }
    }

    mutating func append(
        _ layer: LayerSpec, weight: Tensor? = nil, bias: [Float]? = nil, normalization: [[Float]]? = nil
    ) {
        layers.append(
            PendingLayer(spec: layer, weight: weight, bias: bias, normalization: normalization, node: node.name))
    }

    // MARK: Running

    mutating func run(outputName: String) throws(ONNXError) -> ONNXImport {
        for (index, current) in model.graph.nodes.enumerated() {
            node = current
            if node.name.isEmpty { node.name = "#\(index) → \(node.outputs.first ?? "")" }
            guard node.domain.isEmpty || node.domain == "ai.onnx" else {
                throw fail("operators of domain '\(node.domain)' are not ONNX standard operators")
            }
            try map()
            progress += 1
        }
        node = ONNXNode(name: outputName, opType: "output", inputs: [], outputs: [])
        guard case .activation(var result)? = values[outputName] else {
            throw ONNXError(.unsupported, "the graph output '\(outputName)' is not an activation of the input")
        }
        guard result.position == layers.count else {
            throw fail("the graph output is not the network's last activation")
        }
        result = try flattened(result, for: "the graph output")
        guard case .flat(let classes, let order) = result.form, order == nil else {
            throw fail(
                "the graph output \(result.shapeText) is a flattened channels-first sequence; Tandem's output is "
                    + "one score per class")
        }
        guard let last = layers.last, last.spec.type == .dense else {
            throw fail("the network must end in a dense layer (Gemm or MatMul), then at most a Softmax")
        }
        let classNames = options.classNames ?? (0..<classes).map(String.init)
        guard classNames.count == classes else {
            throw ONNXError(
                .badOptions, "the model has \(classes) outputs but \(classNames.count) class names were given")
        }
        let (architecture, weights, foldNotes) = Self.fold(layers)
        let imported = ONNXImport(
            architecture: architecture, weights: weights, window: candidate.window, channels: candidate.channels,
            classNames: classNames, inputName: inputName, outputName: outputName, inputLayout: candidate.layout,
            outputIsProbabilities: softmaxOutput != nil,
            standardization: mean != nil || std != nil
                ? Standardization(
                    mean: mean ?? [Float](repeating: 0, count: candidate.channels),
                    std: std ?? [Float](repeating: 1, count: candidate.channels)) : nil,
            notes: notes + foldNotes)
        do {
            _ = try imported.floatModel()
        } catch {
            throw ONNXError(.unsupported, "the mapped layers do not form a Tandem model: \(error)")
        }
        return imported
    }

    /// Folds batch norm into the convolution or dense layer before it and names the weights by final position.
    static func fold(_ pending: [PendingLayer]) -> ([LayerSpec], [String: Tensor], [String]) {
        var merged = [PendingLayer]()
        var notes = [String]()
        for layer in pending {
            if layer.spec.type == .batchnorm1d, let stats = layer.normalization, var previous = merged.last,
                previous.spec.type == .conv1d || previous.spec.type == .dense, var w = previous.weight,
                var b = previous.bias
            {
                let (gamma, beta, mean, variance) = (stats[0], stats[1], stats[2], stats[3])
                let epsilon = layer.spec.epsilon ?? 1e-5
                let units = b.count
                let row = w.count / units
                for o in 0..<units {
                    let scale = gamma[o] / (variance[o] + epsilon).squareRoot()
                    for j in 0..<row { w.scalars[o * row + j] *= scale }
                    b[o] = (b[o] - mean[o]) * scale + beta[o]
                }
                previous.weight = w
                previous.bias = b
                merged[merged.count - 1] = previous
                notes.append("folded BatchNormalization '\(layer.node)' into '\(previous.node)'")
                continue
            }
            merged.append(layer)
        }
        var weights = [String: Tensor]()
        for (i, layer) in merged.enumerated() {
            if let w = layer.weight { weights["\(i).weight"] = w }
            if let b = layer.bias { weights["\(i).bias"] = Tensor(shape: [b.count], scalars: b) }
            if let stats = layer.normalization {
                for (name, values) in zip(["gamma", "beta", "mean", "variance"], stats) {
                    weights["\(i).\(name)"] = Tensor(shape: [values.count], scalars: values)
                }
            }
        }
        return (merged.map(\.spec), weights, notes)
    }
}
