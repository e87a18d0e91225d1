import CInt8Kernels

/// Runs a `QuantizedModel` on float windows with integer arithmetic only between the input
/// quantization and the output dequantization.
///
/// The engine owns one arena, sized from the model when it is created: a buffer per activation (with the
/// zero-point padding rows a following convolution needs, written once), and the convolution and dense
/// layers packed for the C kernels (weights, folded biases, requantization parameters). Classifying a
/// window allocates nothing. No BLAS; one thread.
///
/// Activations are int8 codes stored biased by 128 as bytes (see `Int8Kernels`); convolution and dense
/// layers run in the C kernels of `CInt8Kernels` with requantization fused, in the version for
/// `instructionSet`. Every version gives bit-identical results.
///
/// - Important: an engine is not thread-safe (its arena is reused by every call). Give each thread its
///   own engine; they may share one `QuantizedModel`.
public final class Int8Engine {
    /// The model this engine runs.
    public let model: QuantizedModel
    /// The kernel version this engine runs.
    public let instructionSet: Int8InstructionSet
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
        /// Byte offset of the packed layer (conv1d, dense) in `packedLayers`.
        var packed: Int = 0
        /// Packed weight row length: the patch or input length rounded up to `Int8Kernels.depthAlignment`.
        var depth: Int = 0
        /// Global average pooling's requantization.
        var multiplier = FixedPointMultiplier(multiplier: 0, shift: 1)
        var zeroPointIn: Int32
        var zeroPointOut: Int32
        var lower: Int32 = -128
        /// Padding rows before the real rows of this step's input buffer.
        var padLeft: Int = 0
        /// The final dense layer: int32 accumulators dequantized to float logits.
        var isFinal = false
    }

    private let steps: [Step]
    /// Activations, biased by 128.
    private let arena: UnsafeMutablePointer<UInt8>
    private let arenaCount: Int
    /// Convolution and dense layers packed for `instructionSet`, each at a 64-byte aligned offset.
    private let packedLayers: UnsafeMutableRawPointer
    /// Scratch memory of the kernels (the AVX2 version widens rows into it); nil when they need none.
    private let kernelScratch: UnsafeMutableRawPointer?
    private let logitScales: UnsafeMutablePointer<Float>
    private let accumulators: UnsafeMutablePointer<Int32>
    /// Gathered patches of a dilated convolution, one row of `depth` bytes per output position.
    private let patches: UnsafeMutablePointer<UInt8>
    private let logitBuffer: UnsafeMutablePointer<Float>
    private let probabilityBuffer: UnsafeMutablePointer<Float>
    private let inverseInputScale: Float
    private let inputZeroPoint: Int32
    /// The penultimate features of the last window, dequantized (``featureCount`` floats).
    private let featureBuffer: UnsafeMutablePointer<Float>
    /// Arena offset of the final dense layer's input: the penultimate features as biased codes.
    private let featureOffset: Int
    private let featureScale: Float
    private let featureZeroPoint: Int32

    /// How many values the final dense layer reads: the penultimate features (for the edge FCN, one per
    /// channel of the global average pool).
    public let featureCount: Int

    /// Prepares the arena and packed layers for `model`, for the fastest kernels this machine runs.
    public convenience init(model: QuantizedModel) {
        self.init(model: model, instructionSet: .best)
    }

    /// Prepares the arena and packed layers for `model`, for the kernels of `instructionSet`.
    ///
    /// - Precondition: `instructionSet.isSupported`.
    public init(model: QuantizedModel, instructionSet: Int8InstructionSet) {
        precondition(instructionSet.isSupported, "this CPU cannot run the \(instructionSet) int8 kernels")
        self.model = model
        self.instructionSet = instructionSet
        let isa = instructionSet.cValue
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
        arenaCount = total + Int8Kernels.slack
        arena = .allocate(capacity: arenaCount)
        arena.initialize(repeating: 0, count: arenaCount)

        // Sizes of the packed layers, the kernels' scratch and the gathered patches of dilated convolutions.
        var packedOffsets = [Int](repeating: 0, count: layers.count)
        var packedBytes = 0, scratchBytes = 0, patchBytes = 0
        for (i, layer) in layers.enumerated() {
            guard let bias = model.biases["\(i).bias"], let weight = model.weights["\(i).weight"] else { continue }
            let units = bias.values.count
            let depth = Int8Kernels.depth(forRowLength: weight.values.count / Swift.max(units, 1))
            packedOffsets[i] = packedBytes
            packedBytes += (tandem_int8_packed_size(isa, units, depth) + 63) & ~63
            scratchBytes = Swift.max(scratchBytes, tandem_int8_scratch_size(isa, depth))
            if let g = geometries[i], layer.kind == .conv1d, g.dilation > 1 {
                patchBytes = Swift.max(patchBytes, g.outputLength * depth)
            }
        }
        let packedStart = UnsafeMutableRawPointer.allocate(byteCount: Swift.max(packedBytes, 64), alignment: 64)
        packedLayers = packedStart
        kernelScratch = scratchBytes > 0 ? .allocate(byteCount: scratchBytes, alignment: 64) : nil
        patches = .allocate(capacity: patchBytes + Int8Kernels.slack)
        patches.initialize(repeating: 0, count: patchBytes + Int8Kernels.slack)
        logitScales = .allocate(capacity: model.classes)
        accumulators = .allocate(capacity: Swift.max(model.classes, model.shapes.map { $0.last ?? 0 }.max() ?? 1))
        logitBuffer = .allocate(capacity: model.classes)
        probabilityBuffer = .allocate(capacity: model.classes)
        logitBuffer.initialize(repeating: 0, count: model.classes)
        probabilityBuffer.initialize(repeating: 0, count: model.classes)

        var steps = [Step]()
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
            let padding = Int8Kernels.biased(Int8(zpIn))
            (arena + offsets[i]).update(repeating: padding, count: padLeft[i] * rowWidth)
            (arena + offsets[i] + (padLeft[i] + step.inLength) * rowWidth).update(
                repeating: padding, count: padRight[i] * rowWidth)
            if let weight = model.weights["\(i).weight"], let bias = model.biases["\(i).bias"] {
                let units = bias.values.count
                let rowLength = weight.values.count / Swift.max(units, 1)
                step.depth = Int8Kernels.depth(forRowLength: rowLength)
                step.packed = packedOffsets[i]
                // Σ (u − 128 − zp)·w = Σ u·w − (zp + 128)·Σ w for biased inputs u: fold the constant into the bias.
                let folded = (0..<units).map { o in
                    let sum = weight.values[(o * rowLength)..<((o + 1) * rowLength)].reduce(Int32(0)) {
                        $0 &+ Int32($1)
                    }
                    return bias.values[o] &- (zpIn &+ 128) &* sum
                }
                let multipliers = step.isFinal ? nil : layer.multipliers
                let mantissas = multipliers?.map(\.multiplier), shifts = multipliers?.map(\.shift)
                weight.values.withUnsafeBufferPointer { w in
                    folded.withUnsafeBufferPointer { b in
                        mantissas.withOptionalBuffer { m in
                            shifts.withOptionalBuffer { sh in
                                tandem_int8_pack(
                                    isa, w.baseAddress, units, rowLength, step.depth, b.baseAddress, m, sh,
                                    packedStart + step.packed)
                            }
                        }
                    }
                }
                if step.isFinal, let scales = layer.weightScales {
                    let s = Double(model.inputQuantizations[i].scale)
                    for o in 0..<units { logitScales[o] = Float(s * Double(scales[o])) }
                }
            }
            if layer.kind == .globalavgpool1d, let m = layer.multipliers?.first {
                step.multiplier = m
            }
            steps.append(step)
        }
        self.steps = steps
        inverseInputScale = 1 / p.input.scale
        inputZeroPoint = p.input.zeroPoint
        let last = steps[steps.count - 1]
        featureCount = last.inLength * last.inChannels
        featureOffset = last.input + last.padLeft * last.inChannels
        featureScale = model.inputQuantizations[steps.count - 1].scale
        featureZeroPoint = model.inputQuantizations[steps.count - 1].zeroPoint
        featureBuffer = .allocate(capacity: Swift.max(featureCount, 1))
        featureBuffer.initialize(repeating: 0, count: Swift.max(featureCount, 1))
    }

    deinit {
        arena.deallocate()
        packedLayers.deallocate()
        kernelScratch?.deallocate()
        logitScales.deallocate()
        accumulators.deallocate()
        patches.deallocate()
        logitBuffer.deallocate()
        probabilityBuffer.deallocate()
        featureBuffer.deallocate()
    }

    /// Writes the penultimate features of the window classified last, dequantized: `scale · (code − zero point)`
    /// of the final dense layer's input.
    ///
    /// - Parameter features: Room for ``featureCount`` floats; extra room is left untouched.
    public func penultimateFeatures(into features: UnsafeMutableBufferPointer<Float>) {
        dequantizeFeatures()
        if let base = features.baseAddress {
            base.update(from: featureBuffer, count: Swift.min(featureCount, features.count))
        }
    }

    /// The novelty score of the window classified last, against `statistics`, as if it were of class `predicted`
    /// (see ``NoveltyStatistics``). Allocates nothing.
    ///
    /// - Precondition: `statistics` passed `validate(classes: classes, features: featureCount)` and `predicted`
    ///   is a class index.
    public func noveltyScore(_ statistics: NoveltyStatistics, predicted: Int) -> Float {
        dequantizeFeatures()
        return statistics.score(
            features: UnsafeBufferPointer(start: featureBuffer, count: featureCount), predicted: predicted)
    }

    private func dequantizeFeatures() {
        let codes = arena + featureOffset
        let offset = featureZeroPoint &+ 128
        for k in 0..<featureCount { featureBuffer[k] = featureScale * Float(Int32(codes[k]) &- offset) }
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
                UnsafeBufferPointer(start: arena + start, count: shape.reduce(1, *)).map(Int8Kernels.unbiased))
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
        let finite = tandem_int8_quantize_input(
            instructionSet.cValue, x, size, inverseInputScale, inputZeroPoint, target)
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
        let isa = instructionSet.cValue
        let packed = UnsafeRawPointer(packedLayers + s.packed)
        switch s.kind {
        case .conv1d:
            guard let g = s.geometry else { return }
            let c = s.inChannels
            let rows: UnsafePointer<UInt8>
            let stride: Int
            if g.dilation == 1 {
                // Padded buffer: the patch of output t is one contiguous run, `stride · c` bytes after the last.
                rows = input
                stride = g.stride * c
            } else {
                for t in 0..<s.outLength {
                    for k in 0..<g.kernel {
                        (patches + t * s.depth + k * c).update(
                            from: input + (t * g.stride + k * g.dilation) * c, count: c)
                    }
                }
                rows = UnsafePointer(patches)
                stride = s.depth
            }
            tandem_int8_requantized_rows(
                isa, packed, s.outChannels, s.depth, rows, stride, s.outLength, s.zeroPointOut + 128, s.lower + 128,
                output, kernelScratch)
        case .dense:
            if s.isFinal {
                tandem_int8_accumulator_rows(
                    isa, packed, s.outChannels, s.depth, input, s.depth, 1, accumulators, kernelScratch)
                for o in 0..<s.outChannels { logitBuffer[o] = Float(accumulators[o]) * logitScales[o] }
            } else {
                tandem_int8_requantized_rows(
                    isa, packed, s.outChannels, s.depth, input, s.depth, 1, s.zeroPointOut + 128, s.lower + 128,
                    output, kernelScratch)
            }
        case .globalavgpool1d:
            let c = s.inChannels
            for k in 0..<c { accumulators[k] = 0 }
            for t in 0..<s.inLength {
                let row = input + t * c
                for k in 0..<c { accumulators[k] &+= Int32(row[k]) }
            }
            // The sums are of biased bytes: Σ (u − 128 − zp) = Σ u − length · (zp + 128).
            let bias = -Int32(s.inLength) &* (s.zeroPointIn &+ 128)
            for k in 0..<c {
                let q = s.multiplier.requantize(accumulators[k] &+ bias, zeroPoint: s.zeroPointOut, lower: -128)
                output[k] = Int8Kernels.biased(q)
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
                        let v = Int32(Int8Kernels.unbiased(input[i * c + k]))
                        best = Swift.max(best, v)
                        sum &+= v
                        taps += 1
                    }
                    let value = s.kind == .maxpool1d ? best : Int8Kernels.roundedDivision(sum, Swift.max(taps, 1))
                    out[k] = Int8Kernels.biased(Int8(clamping: value))
                }
            }
        case .relu:
            let n = s.inLength * s.inChannels
            let zero = Int8Kernels.biased(Int8(clamping: s.zeroPointIn))
            for i in 0..<n { output[i] = Swift.max(input[i], zero) }
        case .flatten:
            output.update(from: input, count: s.inLength * s.inChannels)
        }
    }
}

extension Optional {
    /// Calls `body` with the array's base address, or with nil when there is no array.
    fileprivate func withOptionalBuffer<Element, Result>(
        _ body: (UnsafePointer<Element>?) -> Result
    ) -> Result where Wrapped == [Element] {
        switch self {
        case .some(let array): array.withUnsafeBufferPointer { body($0.baseAddress) }
        case .none: body(nil)
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
