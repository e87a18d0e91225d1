#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// A float32 network ready for inference: layers from a manifest's architecture with their weights.
///
/// `FloatModel` is immutable and `Sendable`; each call to `logits(for:)` uses its own scratch
/// buffers, sized once per call from the model's largest layer, so several threads may share a model.
public struct FloatModel: Sendable {
    /// Layers in order.
    public let architecture: [LayerSpec]
    /// Input window length.
    public let window: Int
    /// Input channels.
    public let channels: Int
    /// Number of output classes.
    public let classes: Int
    /// Per-sample shapes: `shapes[0]` is the input, `shapes[i + 1]` the output of layer `i`.
    public let shapes: [[Int]]
    /// Weights by name (`"<layer>.weight"`, `"<layer>.bias"`, batch-norm `gamma`, `beta`, `mean`, `variance`).
    public let weights: [String: Tensor]
    private let geometries: [WindowGeometry?]
    private let largestActivation: Int
    private let largestColumns: Int

    /// Builds a model and checks every weight's shape against the architecture.
    ///
    /// - Throws: `ModelError` if the layers do not fit the input or a weight is missing or misshapen.
    public init(architecture: [LayerSpec], window: Int, channels: Int, classes: Int, weights: [String: Tensor]) throws {
        let shapes = try ModelShapes.trace(architecture, window: window, channels: channels, classes: classes)
        var geometries = [WindowGeometry?]()
        var largestColumns = 0
        for (i, layer) in architecture.enumerated() {
            let input = shapes[i]
            let output = shapes[i + 1]
            func expect(_ suffix: String, _ shape: [Int]) throws {
                guard let w = weights["\(i).\(suffix)"] else {
                    throw ModelError(.badWeights, "layer \(i) (\(layer.type.rawValue)) has no weight `\(i).\(suffix)`")
                }
                guard w.shape == shape else {
                    throw ModelError(
                        .badWeights, "weight `\(i).\(suffix)` has shape \(w.shape), layer \(i) needs \(shape)")
                }
            }
            switch layer.type {
            case .conv1d:
                let g = try layer.windowGeometry(inputLength: input[0], index: i)
                geometries.append(g)
                largestColumns = max(largestColumns, g.outputLength * g.kernel * input[1])
                try expect("weight", [output[1], g.kernel, input[1]])
                if layer.bias ?? true { try expect("bias", [output[1]]) }
            case .dense:
                geometries.append(nil)
                try expect("weight", [output[0], input[0]])
                if layer.bias ?? true { try expect("bias", [output[0]]) }
            case .batchnorm1d:
                geometries.append(nil)
                let c = input.last ?? 0
                for name in ["gamma", "beta", "mean", "variance"] { try expect(name, [c]) }
            case .maxpool1d, .avgpool1d:
                geometries.append(try layer.windowGeometry(inputLength: input[0], index: i))
            default:
                geometries.append(nil)
            }
        }
        self.architecture = architecture
        self.window = window
        self.channels = channels
        self.classes = classes
        self.shapes = shapes
        self.weights = weights
        self.geometries = geometries
        self.largestActivation = shapes.map { $0.reduce(1, *) }.max() ?? 0
        self.largestColumns = largestColumns
    }

    /// Multiply–accumulate operations for one window.
    public var macsPerWindow: Int {
        var total = 0
        for (i, layer) in architecture.enumerated() {
            let output = shapes[i + 1].reduce(1, *)
            switch layer.type {
            case .conv1d: total += output * (geometries[i]?.kernel ?? 0) * shapes[i][1]
            case .dense: total += output * shapes[i][0]
            default: break
            }
        }
        return total
    }

    /// Number of weights (parameters) in the model.
    public var parameterCount: Int { weights.values.reduce(0) { $0 + $1.count } }

    /// Raw class scores for a batch of already normalized windows.
    ///
    /// - Parameter windows: `[count, window, channels]`.
    /// - Returns: logits `[count, classes]`.
    /// - Throws: `ModelError.badInput` if the windows do not match the model's input shape.
    public func logits(for windows: Tensor) throws -> Tensor {
        guard windows.rank == 3, windows.shape[1] == window, windows.shape[2] == channels else {
            throw ModelError(
                .badInput, "windows have shape \(windows.shape), the model takes [n, \(window), \(channels)]")
        }
        let count = windows.shape[0]
        var output = Tensor(shape: [count, classes])
        // Windows per pass: 8 keeps the im2col buffer of the widest FCN layer (8 × 128 × 640 floats, 2.6 MB)
        // close to cache; 64 windows per pass ran 1.85× slower per window on the FCN.
        let chunk = max(1, min(8, count))
        var a = [Float](repeating: 0, count: chunk * largestActivation)
        var b = [Float](repeating: 0, count: chunk * largestActivation)
        var col = [Float](repeating: 0, count: chunk * max(largestColumns, 1))
        var start = 0
        while start < count {
            let n = min(chunk, count - start)
            windows.scalars.withUnsafeBufferPointer { x in
                a.withUnsafeMutableBufferPointer { a in
                    (a.baseAddress!).update(
                        from: x.baseAddress! + start * window * channels, count: n * window * channels)
                }
            }
            let inA = run(batch: n, a: &a, b: &b, col: &col)
            let result = inA ? a : b
            output.scalars.withUnsafeMutableBufferPointer { out in
                result.withUnsafeBufferPointer { r in
                    (out.baseAddress! + start * classes).update(from: r.baseAddress!, count: n * classes)
                }
            }
            start += n
        }
        return output
    }

    /// Class probabilities (softmax of the logits) for a batch of normalized windows.
    public func probabilities(for windows: Tensor) throws -> Tensor {
        var p = try logits(for: windows)
        let rows = p.shape[0]
        p.scalars.withUnsafeMutableBufferPointer { Kernels.softmax($0.baseAddress!, rows: rows, width: classes) }
        return p
    }

    /// Runs all layers on `batch` windows held in `a`; returns true if the result ended in `a`, false if in `b`.
    private func run(batch: Int, a: inout [Float], b: inout [Float], col: inout [Float]) -> Bool {
        var inA = true
        for (i, layer) in architecture.enumerated() {
            let input = shapes[i]
            let output = shapes[i + 1]
            let wrote = a.withUnsafeMutableBufferPointer { a in
                b.withUnsafeMutableBufferPointer { b in
                    col.withUnsafeMutableBufferPointer { col in
                        let x = inA ? a.baseAddress! : b.baseAddress!
                        let y = inA ? b.baseAddress! : a.baseAddress!
                        return apply(
                            layer, index: i, input: input, output: output, batch: batch, x: x, y: y,
                            col: col.baseAddress!)
                    }
                }
            }
            if wrote { inA.toggle() }
        }
        return inA
    }

    /// Applies one layer; returns true if it wrote `y`, false if it worked in place on `x`.
    private func apply(
        _ layer: LayerSpec, index i: Int, input: [Int], output: [Int], batch: Int,
        x: UnsafeMutablePointer<Float>, y: UnsafeMutablePointer<Float>, col: UnsafeMutablePointer<Float>
    ) -> Bool {
        func weight(_ suffix: String, _ body: (UnsafePointer<Float>) -> Void) {
            weights["\(i).\(suffix)"]!.scalars.withUnsafeBufferPointer { body($0.baseAddress!) }
        }
        switch layer.type {
        case .conv1d:
            let g = geometries[i]!
            weight("weight") { w in
                if let bias = weights["\(i).bias"] {
                    bias.scalars.withUnsafeBufferPointer { bias in
                        Kernels.conv1d(
                            x, batch: batch, channels: input[1], geometry: g, weight: w, bias: bias.baseAddress,
                            filters: output[1], col: col, into: y)
                    }
                } else {
                    Kernels.conv1d(
                        x, batch: batch, channels: input[1], geometry: g, weight: w, bias: nil, filters: output[1],
                        col: col, into: y)
                }
            }
            return true
        case .dense:
            weight("weight") { w in
                if let bias = weights["\(i).bias"] {
                    bias.scalars.withUnsafeBufferPointer { bias in
                        Kernels.dense(
                            x, batch: batch, inputs: input[0], weight: w, bias: bias.baseAddress, units: output[0],
                            into: y)
                    }
                } else {
                    Kernels.dense(x, batch: batch, inputs: input[0], weight: w, bias: nil, units: output[0], into: y)
                }
            }
            return true
        case .relu:
            Kernels.relu(x, count: batch * input.reduce(1, *))
            return false
        case .maxpool1d, .avgpool1d:
            Kernels.pool1d(
                x, batch: batch, channels: input[1], geometry: geometries[i]!, max: layer.type == .maxpool1d, into: y)
            return true
        case .globalavgpool1d:
            Kernels.globalAveragePool(x, batch: batch, length: input[0], channels: input[1], into: y)
            return true
        case .batchnorm1d:
            let c = input.last!
            let eps = layer.epsilon ?? 1e-5
            let gamma = weights["\(i).gamma"]!.scalars, beta = weights["\(i).beta"]!.scalars
            let mean = weights["\(i).mean"]!.scalars, variance = weights["\(i).variance"]!.scalars
            var scale = [Float](repeating: 0, count: c), shift = [Float](repeating: 0, count: c)
            for k in 0..<c {
                scale[k] = gamma[k] / (variance[k] + eps).squareRoot()
                shift[k] = beta[k] - mean[k] * scale[k]
            }
            let rows = batch * input.reduce(1, *) / c
            for r in 0..<rows {
                let row = x + r * c
                for k in 0..<c { row[k] = row[k] * scale[k] + shift[k] }
            }
            return false
        case .dropout, .flatten:
            return false
        }
    }
}
