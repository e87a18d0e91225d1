/// Runs a `QuantizedModel` on float windows with integer arithmetic only between the input
/// quantization and the output dequantization.
///
/// The engine owns one arena, sized from the model when it is created: a buffer per activation (with the
/// zero-point padding rows a following convolution needs, written once), the packed weights, folded
/// biases and multipliers. Classifying a window allocates nothing. No BLAS; one thread.
///
/// Activations and weights are int8 values; the engine keeps them in Int16 lanes so the inner products
/// compile to packed 16-bit multiply–adds (see `Int8Kernels`). The arithmetic is unchanged: every
/// activation is clamped to int8 when it is written.
///
/// - Important: an engine is not thread-safe (its arena is reused by every call). Give each thread its
///   own engine; they may share one `QuantizedModel`.
public final class Int8Engine {
    /// The model this engine runs.
    public let model: QuantizedModel
    /// Output classes.
    public var classes: Int { model.classes }

    private struct Step {
        var kind: QuantizedLayer.Kind
        /// Arena offset of the input buffer's first row (padding included).
        var input: Int
        /// Arena offset of the output's first real row.
        var output: Int
        var inLength: Int
        var inChannels: Int
        var outLength: Int
        var outChannels: Int
        var geometry: WindowGeometry?
        var weights: Int = 0
        var bias: Int = 0
        var multipliers: Int = 0
        var zeroPointIn: Int32
        var zeroPointOut: Int32
        var lower: Int32 = -128
        /// Padding rows before the real rows of this step's input buffer.
        var padLeft: Int = 0
        /// The final dense layer: int32 accumulators dequantized to float logits.
        var isFinal = false
        /// Packed weight row length: the patch or input length rounded up to `Int8Kernels.lanes`.
        var rowLength = 0
    }

    private let steps: [Step]
    private let arena: UnsafeMutablePointer<Int16>
    private let arenaCount: Int
    private let packedWeights: UnsafeMutablePointer<Int16>
    private let foldedBiases: UnsafeMutablePointer<Int32>
    private let multipliers: UnsafeMutablePointer<FixedPointMultiplier>
    private let logitScales: UnsafeMutablePointer<Float>
    private let accumulators: UnsafeMutablePointer<Int32>
    private let patch: UnsafeMutablePointer<Int16>
    private let logitBuffer: UnsafeMutablePointer<Float>
    private let probabilityBuffer: UnsafeMutablePointer<Float>
    private let inverseInputScale: Float
    private let inputZeroPoint: Int32

    /// Prepares the arena and packed parameters for `model`.
    public init(model: QuantizedModel) {
        self.model = model
        let p = model.parameters
        let layers = p.layers
        // Padding each buffer needs: decided by the layer that reads it.
        var padLeft = [Int](repeating: 0, count: layers.count + 1)
        var padRight = [Int](repeating: 0, count: layers.count + 1)
        var geometries = [WindowGeometry?]()
        for (i, layer) in layers.enumerated() {
            let input = model.shapes[i]
            if layer.kind == .conv1d || layer.kind == .maxpool1d || layer.kind == .avgpool1d {
                // Validated at model construction, so the geometry exists.
                let g = try? layer.layerSpec.windowGeometry(inputLength: input[0], index: i)
                geometries.append(g)
                if layer.kind == .conv1d, let g {
                    padLeft[i] = g.padLeft
                    let lastTap = (g.outputLength - 1) * g.stride + (g.kernel - 1) * g.dilation
                    padRight[i] = Swift.max(0, lastTap + 1 - g.padLeft - g.inputLength)
                }
            } else {
                geometries.append(nil)
            }
        }
        // Buffer offsets: buffer i is the input of layer i, buffer n the (unused) final output.
        var offsets = [Int]()
        var total = 0
        for (i, shape) in model.shapes.enumerated() {
            offsets.append(total)
            let rowWidth = shape.count == 2 ? shape[1] : shape[0]
            let rows = shape.count == 2 ? shape[0] : 1
            total += (padLeft[i] + rows + padRight[i]) * rowWidth
            total = (total + 63) & ~63
        }
        // Slack after the last buffer: a dot product may read up to `lanes` values past a patch.
        arenaCount = total + Int8Kernels.lanes
        arena = .allocate(capacity: arenaCount)
        arena.initialize(repeating: 0, count: arenaCount)

        var weightCount = 0, unitCount = 0, multiplierCount = 0, largestPatch = 1
        for (i, layer) in layers.enumerated() {
            if let w = model.weights["\(i).weight"], let units = w.shape.first {
                weightCount += units * Self.padded(w.values.count / Swift.max(units, 1))
            }
            if let b = model.biases["\(i).bias"] { unitCount += b.values.count }
            multiplierCount += layer.multipliers?.count ?? 0
            if let g = geometries[i], layer.kind == .conv1d {
                largestPatch = Swift.max(largestPatch, g.kernel * model.shapes[i][1])
            }
        }
        let packedWeightsStart = UnsafeMutablePointer<Int16>.allocate(capacity: Swift.max(weightCount, 1))
        packedWeightsStart.initialize(repeating: 0, count: Swift.max(weightCount, 1))
        packedWeights = packedWeightsStart
        foldedBiases = .allocate(capacity: Swift.max(unitCount, 1))
        multipliers = .allocate(capacity: Swift.max(multiplierCount, 1))
        logitScales = .allocate(capacity: model.classes)
        accumulators = .allocate(capacity: Swift.max(model.classes, model.shapes.map { $0.last ?? 0 }.max() ?? 1))
        patch = .allocate(capacity: Self.padded(largestPatch))
        patch.initialize(repeating: 0, count: Self.padded(largestPatch))
        logitBuffer = .allocate(capacity: model.classes)
        probabilityBuffer = .allocate(capacity: model.classes)
        logitBuffer.initialize(repeating: 0, count: model.classes)
        probabilityBuffer.initialize(repeating: 0, count: model.classes)

        var steps = [Step]()
        var w = 0, b = 0, m = 0
        for (i, layer) in layers.enumerated() {
            let input = model.shapes[i], output = model.shapes[i + 1]
            let zpIn = model.inputQuantizations[i].zeroPoint
            let zpOut = layer.output?.zeroPoint ?? zpIn
            var step = Step(
                kind: layer.kind, input: offsets[i], output: offsets[i + 1] + padLeft[i + 1] * (output.last ?? 1),
                inLength: input.count == 2 ? input[0] : 1, inChannels: input.last ?? 1,
                outLength: output.count == 2 ? output[0] : 1, outChannels: output.last ?? 1, geometry: geometries[i],
                zeroPointIn: zpIn, zeroPointOut: zpOut)
            step.padLeft = padLeft[i]
            step.isFinal = i == layers.count - 1
            step.lower = layer.fusedReLU ? Swift.max(zpOut, -128) : -128
            // Padding rows of this step's input stand for real zero: the input zero point.
            let rowWidth = step.inChannels
            (arena + offsets[i]).update(repeating: Int16(zpIn), count: padLeft[i] * rowWidth)
            (arena + offsets[i] + (padLeft[i] + step.inLength) * rowWidth).update(
                repeating: Int16(zpIn), count: padRight[i] * rowWidth)
            if let weight = model.weights["\(i).weight"], let bias = model.biases["\(i).bias"] {
                let units = bias.values.count
                let rowLength = weight.values.count / Swift.max(units, 1)
                let padded = Self.padded(rowLength)
                step.rowLength = padded
                step.weights = w
                step.bias = b
                step.multipliers = m
                for o in 0..<units {
                    for j in 0..<rowLength {
                        packedWeightsStart[w + o * padded + j] = Int16(weight.values[o * rowLength + j])
                    }
                }
                for o in 0..<units {
                    var sum: Int32 = 0
                    for j in 0..<rowLength { sum += Int32(weight.values[o * rowLength + j]) }
                    // Σ (x − zp)·w = Σ x·w − zp·Σ w: fold the zero-point term into the bias once.
                    foldedBiases[b + o] = bias.values[o] &- zpIn &* sum
                }
                if i == layers.count - 1, let scales = layer.weightScales {
                    let s = Double(model.inputQuantizations[i].scale)
                    for o in 0..<units { logitScales[o] = Float(s * Double(scales[o])) }
                }
                w += units * padded
                b += units
            }
            if let ms = layer.multipliers {
                step.multipliers = m
                for (k, mult) in ms.enumerated() { (multipliers + m + k).initialize(to: mult) }
                m += ms.count
            }
            steps.append(step)
        }
        self.steps = steps
        inverseInputScale = 1 / p.input.scale
        inputZeroPoint = p.input.zeroPoint
    }

    /// `count` rounded up to a multiple of `Int8Kernels.lanes`.
    private static func padded(_ count: Int) -> Int {
        (count + Int8Kernels.lanes - 1) / Int8Kernels.lanes * Int8Kernels.lanes
    }

    deinit {
        arena.deallocate()
        packedWeights.deallocate()
        foldedBiases.deallocate()
        multipliers.deallocate()
        logitScales.deallocate()
        accumulators.deallocate()
        patch.deallocate()
        logitBuffer.deallocate()
        probabilityBuffer.deallocate()
    }

    /// Classifies one normalized window.
    ///
    /// - Parameters:
    ///   - window: `window · channels` floats, channels-last, already normalized.
    ///   - logits: receives the dequantized logits if given (`classes` floats).
    ///   - probabilities: receives the softmax probabilities if given (`classes` floats).
    /// - Returns: the predicted class and its three confidences.
    /// - Throws: `QuantizationError.badInput` for a wrong element count or a non-finite sample.
    public func classify(
        _ window: UnsafeBufferPointer<Float>, logits: UnsafeMutableBufferPointer<Float>? = nil,
        probabilities: UnsafeMutableBufferPointer<Float>? = nil
    ) throws(QuantizationError) -> PredictionConfidence {
        try run(window)
        let c = model.classes
        PredictionConfidence.softmax(
            UnsafeBufferPointer(start: logitBuffer, count: c),
            into: UnsafeMutableBufferPointer(start: probabilityBuffer, count: c))
        if let logits, let base = logits.baseAddress {
            base.update(from: logitBuffer, count: Swift.min(c, logits.count))
        }
        if let probabilities, let base = probabilities.baseAddress {
            base.update(from: probabilityBuffer, count: Swift.min(c, probabilities.count))
        }
        return PredictionConfidence(probabilities: UnsafeBufferPointer(start: probabilityBuffer, count: c))
    }

    /// Classifies a batch of normalized windows.
    ///
    /// - Parameter windows: `[count, window, channels]`.
    /// - Returns: logits and probabilities `[count, classes]` and one confidence record per window.
    /// - Throws: `QuantizationError.badInput` naming the window if the shape is wrong or a sample is not finite.
    public func classify(windows: Tensor) throws(QuantizationError) -> Int8Predictions {
        let (n, size) = try checkBatch(windows)
        let c = model.classes
        var logits = Tensor(shape: [n, c])
        var probabilities = Tensor(shape: [n, c])
        var confidences = [PredictionConfidence]()
        confidences.reserveCapacity(n)
        var failure: QuantizationError?
        windows.scalars.withUnsafeBufferPointer { x in
            logits.scalars.withUnsafeMutableBufferPointer { l in
                probabilities.scalars.withUnsafeMutableBufferPointer { p in
                    for i in 0..<n {
                        do throws(QuantizationError) {
                            confidences.append(
                                try classify(
                                    UnsafeBufferPointer(rebasing: x[(i * size)..<((i + 1) * size)]),
                                    logits: UnsafeMutableBufferPointer(rebasing: l[(i * c)..<((i + 1) * c)]),
                                    probabilities: UnsafeMutableBufferPointer(rebasing: p[(i * c)..<((i + 1) * c)])))
                        } catch {
                            failure = QuantizationError(.badInput, "window \(i): \(error.message)")
                            return
                        }
                    }
                }
            }
        }
        if let failure { throw failure }
        return Int8Predictions(logits: logits, probabilities: probabilities, confidences: confidences)
    }

    /// Dequantized logits `[count, classes]` for a batch of normalized windows.
    ///
    /// - Throws: `QuantizationError.badInput` if the shape is wrong or a sample is not finite.
    public func logits(for windows: Tensor) throws(QuantizationError) -> Tensor {
        let (n, size) = try checkBatch(windows)
        let c = model.classes
        var logits = Tensor(shape: [n, c])
        var failure: QuantizationError?
        windows.scalars.withUnsafeBufferPointer { x in
            logits.scalars.withUnsafeMutableBufferPointer { l in
                for i in 0..<n {
                    do throws(QuantizationError) {
                        try run(UnsafeBufferPointer(rebasing: x[(i * size)..<((i + 1) * size)]))
                    } catch {
                        failure = QuantizationError(.badInput, "window \(i): \(error.message)")
                        return
                    }
                    (l.baseAddress! + i * c).update(from: logitBuffer, count: c)
                }
            }
        }
        if let failure { throw failure }
        return logits
    }

    /// The int8 output of every layer but the last for one window, and the last layer's int32 accumulators.
    ///
    /// For inspection and tests (allocates): `activations[0]` is the quantized input, `activations[i + 1]`
    /// the output of layer `i`, for every layer except the final dense one.
    public func trace(_ window: [Float]) throws(QuantizationError) -> (activations: [[Int8]], accumulators: [Int32]) {
        try window.withUnsafeBufferPointer { (w) throws(QuantizationError) in try run(w) }
        var activations = [[Int8]]()
        for (i, shape) in model.shapes.dropLast().enumerated() {
            let step = steps[i]
            let start = step.input + step.padLeft * step.inChannels
            activations.append(
                UnsafeBufferPointer(start: arena + start, count: shape.reduce(1, *)).map {
                    Int8(truncatingIfNeeded: $0)
                })
        }
        return (activations, Array(UnsafeBufferPointer(start: accumulators, count: model.classes)))
    }

    private func checkBatch(_ windows: Tensor) throws(QuantizationError) -> (Int, Int) {
        guard windows.rank == 3, windows.shape[1] == model.window, windows.shape[2] == model.channels else {
            throw QuantizationError(
                .badInput,
                "windows have shape \(windows.shape), the model takes [n, \(model.window), \(model.channels)]")
        }
        return (windows.shape[0], model.window * model.channels)
    }

    /// Quantizes the input and runs every layer; the logits end in `logitBuffer`.
    private func run(_ window: UnsafeBufferPointer<Float>) throws(QuantizationError) {
        let size = model.window * model.channels
        guard window.count == size, let x = window.baseAddress else {
            throw QuantizationError(.badInput, "window has \(window.count) values, the model takes \(size)")
        }
        let first = steps[0]
        let target = arena + first.input + first.padLeft * first.inChannels
        let inverse = inverseInputScale, zero = inputZeroPoint
        var finite = true
        for i in 0..<size {
            let v = x[i]
            finite = finite && v.isFinite
            // Clamp first so the conversion cannot trap (NaN fails the first test and lands on −512; a
            // non-finite sample is reported below). Adding ±½ in Double is exact for any float, so the
            // truncating conversion rounds half away from zero, like `rounded()`, without a libm call.
            let scaled = v * inverse
            let clamped = Double(scaled >= -512 ? (scaled <= 512 ? scaled : 512) : -512)
            let q = Int32(clamped + (clamped < 0 ? -0.5 : 0.5)) &+ zero
            target[i] = Int16(Swift.min(Swift.max(q, -128), 127))
        }
        guard finite else {
            let bad = (0..<size).first { !x[$0].isFinite } ?? 0
            throw QuantizationError(
                .badInput, "sample \(bad / model.channels), channel \(bad % model.channels) is \(x[bad])")
        }
        for step in steps { execute(step) }
    }

    private func execute(_ s: Step) {
        let input = UnsafePointer(arena + s.input)
        let output = arena + s.output
        switch s.kind {
        case .conv1d:
            guard let g = s.geometry else { return }
            let c = s.inChannels
            for t in 0..<s.outLength {
                let row: UnsafePointer<Int16>
                if g.dilation == 1 {
                    // Padded buffer: the patch of output t is one contiguous run.
                    row = input + t * g.stride * c
                } else {
                    for k in 0..<g.kernel {
                        (patch + k * c).update(from: input + (t * g.stride + k * g.dilation) * c, count: c)
                    }
                    row = UnsafePointer(patch)
                }
                Int8Kernels.requantizedRow(
                    row, weights: packedWeights + s.weights, count: s.rowLength, units: s.outChannels,
                    bias: foldedBiases + s.bias, multipliers: multipliers + s.multipliers, zeroPoint: s.zeroPointOut,
                    lower: s.lower, into: output + t * s.outChannels)
            }
        case .dense:
            let inputs = s.rowLength
            if s.isFinal {
                Int8Kernels.accumulatorRow(
                    input, weights: packedWeights + s.weights, count: inputs, units: s.outChannels,
                    bias: foldedBiases + s.bias, into: accumulators)
                for o in 0..<s.outChannels { logitBuffer[o] = Float(accumulators[o]) * logitScales[o] }
            } else {
                Int8Kernels.requantizedRow(
                    input, weights: packedWeights + s.weights, count: inputs, units: s.outChannels,
                    bias: foldedBiases + s.bias, multipliers: multipliers + s.multipliers, zeroPoint: s.zeroPointOut,
                    lower: s.lower, into: output)
            }
        case .globalavgpool1d:
            let c = s.inChannels
            for k in 0..<c { accumulators[k] = 0 }
            for t in 0..<s.inLength {
                let row = input + t * c
                for k in 0..<c { accumulators[k] &+= Int32(row[k]) }
            }
            let bias = -Int32(s.inLength) &* s.zeroPointIn
            let m = multipliers[s.multipliers]
            for k in 0..<c {
                output[k] = Int16(m.requantize(accumulators[k] &+ bias, zeroPoint: s.zeroPointOut, lower: -128))
            }
        case .maxpool1d, .avgpool1d:
            guard let g = s.geometry else { return }
            let c = s.inChannels
            for t in 0..<s.outLength {
                let out = output + t * c
                for k in 0..<c {
                    var best: Int32 = -129
                    var sum: Int32 = 0
                    var taps: Int32 = 0
                    for tap in 0..<g.kernel {
                        let i = g.inputIndex(output: t, tap: tap)
                        guard i >= 0 && i < s.inLength else { continue }
                        let v = Int32(input[i * c + k])
                        best = Swift.max(best, v)
                        sum &+= v
                        taps += 1
                    }
                    let value = s.kind == .maxpool1d ? best : Int8Kernels.roundedDivision(sum, Swift.max(taps, 1))
                    out[k] = Int16(clamping: Swift.min(Swift.max(value, -128), 127))
                }
            }
        case .relu:
            let n = s.inLength * s.inChannels
            let zero = Int16(clamping: s.zeroPointIn)
            for i in 0..<n { output[i] = Swift.max(input[i], zero) }
        case .flatten:
            output.update(from: input, count: s.inLength * s.inChannels)
        }
    }
}

/// The engine's results for a batch of windows.
public struct Int8Predictions: Sendable {
    /// Dequantized logits `[count, classes]`.
    public var logits: Tensor
    /// Softmax probabilities `[count, classes]`.
    public var probabilities: Tensor
    /// Predicted class and confidences, one per window.
    public var confidences: [PredictionConfidence]
}
