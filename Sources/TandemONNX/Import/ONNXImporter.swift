import TandemCore

/// Maps an ONNX graph of a 1-D sensor network onto Tandem's layers.
///
/// The graph must be a chain: every operator takes the newest activation and constants (initializers or
/// `Constant` nodes). Layout operators (Transpose, Reshape, Flatten, Squeeze, Unsqueeze) that only move the
/// channel axis or add and remove unit axes are followed as bookkeeping (`Activation`); a flatten of a
/// channels-first sequence reorders the next dense layer's weight columns into Tandem's time-major order.
/// BatchNormalization after a convolution or dense layer is folded into it, a bias `Add` after MatMul joins it,
/// Dropout and Identity vanish, a final Softmax is Tandem's own probabilities. Everything else is refused with
/// the node's name, its op type and the reason. docs/ONNX.md lists what maps.
public enum ONNXImporter {
    /// The oldest default-domain opset the importer reads.
    public static let minimumOpset: Int64 = 13
    /// The most nodes a graph may have.
    public static let maximumNodes = 10_000

    /// Imports a model.
    ///
    /// - Throws: `ONNXError` naming the node, op type and reason (`unsupported`), or the option that disagrees
    ///   with the graph (`badOptions`).
    public static func importModel(_ model: ONNXModel, options: ONNXImportOptions = .init()) throws(ONNXError)
        -> ONNXImport
    {
        guard let opset = model.defaultOpset else {
            throw ONNXError(.unsupported, "the model imports no default (ai.onnx) opset")
        }
        guard opset >= minimumOpset else {
            throw ONNXError(
                .unsupported, "the model uses opset \(opset); export it with opset \(minimumOpset) or later")
        }
        let graph = model.graph
        guard graph.nodes.count <= maximumNodes else {
            throw ONNXError(.unsupported, "the graph has \(graph.nodes.count) nodes, more than \(maximumNodes)")
        }
        let initialized = Set(graph.initializers.map(\.name))
        let inputs = graph.inputs.filter { !initialized.contains($0.name) }
        guard inputs.count == 1, let input = inputs.first else {
            throw ONNXError(
                .unsupported, "the graph has \(inputs.count) inputs (\(inputs.map(\.name))); Tandem models take one")
        }
        guard graph.outputs.count == 1, let output = graph.outputs.first else {
            throw ONNXError(
                .unsupported,
                "the graph has \(graph.outputs.count) outputs (\(graph.outputs.map(\.name))); Tandem models give one")
        }
        guard input.elementType == ONNXTensor.DataType.float.rawValue else {
            throw ONNXError(.unsupported, "input '\(input.name)' has element type \(input.elementType), not float")
        }
        guard let shape = input.shape else {
            throw ONNXError(.unsupported, "input '\(input.name)' has no shape; export with a fixed input shape")
        }
        let candidates = try inputCandidates(input.name, shape: shape, options: options)
        var best: (progress: Int, error: ONNXError)?
        for candidate in candidates {
            var mapper = GraphMapper(model: model, options: options, inputName: input.name, layout: candidate)
            do {
                return try mapper.run(outputName: output.name)
            } catch {
                if best == nil || mapper.progress > best!.progress { best = (mapper.progress, error) }
            }
        }
        throw best!.error
    }

    /// The layouts the input may have, given its shape and the options, in the order they are tried.
    static func inputCandidates(_ name: String, shape: [ONNXValueInfo.Dimension], options: ONNXImportOptions)
        throws(ONNXError) -> [InputCandidate]
    {
        func known(_ d: ONNXValueInfo.Dimension) -> Int? { if case .value(let n) = d { n } else { nil } }
        for (value, option) in [(options.window, "--window"), (options.channels, "--channels")] {
            if let value, value <= 0 { throw ONNXError(.badOptions, "\(option) must be positive, got \(value)") }
        }
        switch shape.count {
        case 2:
            guard options.channels == nil || options.channels == 1 else {
                throw ONNXError(
                    .badOptions, "input '\(name)' is [N, L], one channel; --channels is \(options.channels!)")
            }
            let window = try agree(known(shape[1]), options.window, "the window", name)
            return [InputCandidate(layout: .univariate, window: window, channels: 1)]
        case 3:
            var result = [InputCandidate]()
            var problems = [String]()
            for layout in [ONNXImport.InputLayout.channelsFirst, .channelsLast] {
                let (c, l) = layout == .channelsFirst ? (shape[1], shape[2]) : (shape[2], shape[1])
                do {
                    let window = try agree(known(l), options.window, "the window", name)
                    let channels = try agree(known(c), options.channels, "the channels", name)
                    result.append(InputCandidate(layout: layout, window: window, channels: channels))
                } catch {
                    problems.append("as \(layout.rawValue): \(error.message)")
                }
            }
            guard !result.isEmpty else {
                throw ONNXError(.badOptions, "input '\(name)': " + problems.joined(separator: "; "))
            }
            return result
        default:
            throw ONNXError(
                .unsupported,
                "input '\(name)' has \(shape.count) dimensions; Tandem takes [N, C, L], [N, L, C] or [N, L] windows")
        }
    }

    private static func agree(_ file: Int?, _ option: Int?, _ what: String, _ name: String) throws(ONNXError) -> Int {
        switch (file, option) {
        case (let f?, let o?) where f != o:
            throw ONNXError(.badOptions, "\(what) is \(f) in the file and \(o) in the options")
        case (let f?, _): return f
        case (nil, let o?): return o
        case (nil, nil):
            throw ONNXError(.badOptions, "\(what) of input '\(name)' is not fixed in the file; pass it as an option")
        }
    }
}

/// One way to read the input: its layout and size.
struct InputCandidate: Sendable {
    var layout: ONNXImport.InputLayout
    var window: Int
    var channels: Int
}

/// A Tandem layer while the graph is mapped, with the node it came from.
struct PendingLayer {
    var spec: LayerSpec
    /// Conv `[filters, kernel, channels]` or dense `[units, inputs]`.
    var weight: Tensor?
    var bias: [Float]?
    /// Batch norm's gamma, beta, mean and variance.
    var normalization: [[Float]]?
    var node: String
}
