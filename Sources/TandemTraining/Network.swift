import TandemCore

/// A sequential network in training form: layers with parameters, gradients and caches.
///
/// Build one from a model spec with `init(layers:window:channels:classes:seed:)`, train it with
/// `Trainer`, then `exportFloatModel()` gives the inference form with batch normalization folded
/// into the preceding convolution or dense layer and dropout removed.
public final class Network {
    /// Layers in order.
    public let layers: [any TrainableLayer]
    /// The specs the layers were built from (`units: classes` resolved).
    public let specs: [LayerSpec]
    /// Input window length.
    public let window: Int
    /// Input channels.
    public let channels: Int
    /// Output classes.
    public let classes: Int
    /// Per-sample shapes, `[input] + outputs of each layer`.
    public let shapes: [[Int]]

    /// Builds the layers, checking that they fit the input and end in `classes` outputs.
    ///
    /// - Throws: `ModelError` naming the first layer that does not fit.
    public init(layers specs: [LayerSpec], window: Int, channels: Int, classes: Int, seed: UInt64) throws {
        let shapes = try ModelShapes.trace(specs, window: window, channels: channels, classes: classes)
        var generator = SeededGenerator(seed: seed)
        var layers = [any TrainableLayer]()
        var resolved = [LayerSpec]()
        for (i, spec) in specs.enumerated() {
            var spec = spec
            let input = shapes[i]
            switch spec.type {
            case .conv1d:
                layers.append(try Conv1DLayer(spec: spec, index: i, inputShape: input, generator: &generator))
            case .dense:
                spec.units = shapes[i + 1][0]
                layers.append(
                    DenseLayer(spec: spec, index: i, inputs: input[0], units: shapes[i + 1][0], generator: &generator))
            case .relu:
                layers.append(ReLULayer(spec: spec))
            case .maxpool1d, .avgpool1d:
                layers.append(try Pool1DLayer(spec: spec, index: i, inputShape: input))
            case .globalavgpool1d:
                layers.append(GlobalAvgPoolLayer(spec: spec, inputShape: input))
            case .batchnorm1d:
                layers.append(BatchNormLayer(spec: spec, index: i, channels: input.last ?? 0))
            case .dropout:
                layers.append(DropoutLayer(spec: spec, seed: generator.next()))
            case .flatten:
                layers.append(FlattenLayer(spec: spec))
            }
            resolved.append(spec)
        }
        self.layers = layers
        self.specs = resolved
        self.window = window
        self.channels = channels
        self.classes = classes
        self.shapes = shapes
    }

    /// Every trainable parameter, layer by layer.
    public var parameters: [Parameter] { layers.flatMap(\.parameters) }

    /// Number of trainable scalars.
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.value.count } }

    /// Logits `[batch, classes]` for windows `[batch, window, channels]`.
    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        var a = x
        for layer in layers { a = layer.forward(a, training: training) }
        return a
    }

    /// Back-propagates the loss gradient with respect to the logits through every layer.
    public func backward(_ dLogits: Tensor) {
        var g = dLogits
        for (i, layer) in layers.enumerated().reversed() {
            g = layer.backward(g, needsInputGradient: i > 0)
        }
    }

    /// Sets every parameter gradient to zero.
    public func zeroGradients() {
        for p in parameters {
            p.gradient.scalars.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
        }
    }

    /// All parameter values and buffers by export name, before any folding.
    public func state() -> [String: Tensor] {
        var state = [String: Tensor]()
        for layer in layers {
            for p in layer.parameters { state[p.name] = p.value }
            for (name, t) in layer.buffers { state[name] = t }
        }
        return state
    }

    /// Restores values saved by `state()` (used to return to the best epoch after early stopping).
    public func restore(_ state: [String: Tensor]) {
        for layer in layers {
            for p in layer.parameters {
                if let v = state[p.name] { p.value = v }
            }
            if let bn = layer as? BatchNormLayer, let m = state["\(bn.index).mean"],
                let v = state["\(bn.index).variance"]
            {
                bn.setRunningStatistics(mean: m.scalars, variance: v.scalars)
            }
        }
    }

    /// The inference form: batch norm folded into the preceding conv or dense layer, dropout removed.
    ///
    /// A batch norm that does not directly follow a conv or dense layer stays as its own layer.
    /// Layers are renumbered in the exported architecture, and weights named after the new positions.
    public func exportFloatModel() throws -> FloatModel {
        var architecture = [LayerSpec]()
        var weights = [String: Tensor]()
        let state = state()
        var i = 0
        while i < specs.count {
            let spec = specs[i]
            let out = architecture.count
            switch spec.type {
            case .dropout:
                i += 1
                continue
            case .conv1d, .dense:
                var w = state["\(i).weight"]!
                let units = w.shape[0]
                var b = state["\(i).bias"]?.scalars ?? [Float](repeating: 0, count: units)
                var exported = spec
                if i + 1 < specs.count, specs[i + 1].type == .batchnorm1d {
                    let bn = specs[i + 1]
                    let eps = bn.epsilon ?? 1e-5
                    let gamma = state["\(i + 1).gamma"]!.scalars, beta = state["\(i + 1).beta"]!.scalars
                    let mean = state["\(i + 1).mean"]!.scalars, variance = state["\(i + 1).variance"]!.scalars
                    let rowWidth = w.count / units
                    for u in 0..<units {
                        let scale = gamma[u] / (variance[u] + eps).squareRoot()
                        for j in 0..<rowWidth { w.scalars[u * rowWidth + j] *= scale }
                        b[u] = (b[u] - mean[u]) * scale + beta[u]
                    }
                    exported.bias = true
                    i += 1
                } else if spec.bias == false {
                    architecture.append(spec)
                    weights["\(out).weight"] = w
                    i += 1
                    continue
                }
                exported.bias = nil
                architecture.append(exported)
                weights["\(out).weight"] = w
                weights["\(out).bias"] = Tensor(shape: [units], scalars: b)
            case .batchnorm1d:
                architecture.append(spec)
                for name in ["gamma", "beta", "mean", "variance"] { weights["\(out).\(name)"] = state["\(i).\(name)"]! }
            default:
                architecture.append(spec)
            }
            i += 1
        }
        return try FloatModel(
            architecture: architecture, window: window, channels: channels, classes: classes, weights: weights)
    }
}
