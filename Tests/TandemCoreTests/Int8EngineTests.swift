import Foundation
import Testing

@testable import TandemCore

/// Layers exercising every op: strided, padded and dilated convolutions with and without a fused ReLU,
/// max and average pooling, standalone ReLU, global average pooling, a hidden dense layer with ReLU and
/// the final dense layer (whose `units` `randomQuantizedModel` replaces with its `classes`).
let everyOpLayers: [QuantizedLayer] = [
    QuantizedLayer(kind: .conv1d, units: 8, kernel: 5, stride: 2, dilation: 1, padding: .same, fusedReLU: true),
    QuantizedLayer(kind: .conv1d, units: 6, kernel: 3, stride: 1, dilation: 2, padding: .valid),
    QuantizedLayer(kind: .maxpool1d, kernel: 2, stride: 2, padding: .valid),
    QuantizedLayer(kind: .relu),
    QuantizedLayer(kind: .conv1d, units: 7, kernel: 3, stride: 1, dilation: 2, padding: .same, fusedReLU: true),
    QuantizedLayer(kind: .avgpool1d, kernel: 3, stride: 1, padding: .same),
    QuantizedLayer(kind: .globalavgpool1d),
    QuantizedLayer(kind: .dense, units: 9, fusedReLU: true),
    QuantizedLayer(kind: .dense, units: 0),
]

/// A random but well-formed int8 model with the given layers (by default `everyOpLayers`).
func randomQuantizedModel(
    seed: UInt64, window: Int = 40, channels: Int = 3, classes: Int = 4, layers: [QuantizedLayer] = everyOpLayers
) throws -> QuantizedModel {
    var g = SeededGenerator(seed: seed)
    func uniform(_ lo: Float, _ hi: Float) -> Float { lo + (hi - lo) * g.nextUnitFloat() }
    func zeroPoint() -> Int32 { Int32(Int(g.next() % 120) - 100) }
    var specs = layers
    specs[specs.count - 1].units = classes
    let input = ActivationQuantization(scale: uniform(0.01, 0.05), zeroPoint: zeroPoint())
    let shapes = try ModelShapes.trace(specs.map(\.layerSpec), window: window, channels: channels, classes: classes)
    var layers = [QuantizedLayer]()
    var weights = [String: IntegerTensor<Int8>]()
    var biases = [String: IntegerTensor<Int32>]()
    var current = input
    for (i, var layer) in specs.enumerated() {
        let isLast = i == specs.count - 1
        switch layer.kind {
        case .conv1d, .dense:
            let units = layer.units ?? 1
            let rowLength = layer.kind == .conv1d ? (layer.kernel ?? 1) * shapes[i][1] : shapes[i][0]
            let shape = layer.kind == .conv1d ? [units, layer.kernel ?? 1, shapes[i][1]] : [units, rowLength]
            weights["\(i).weight"] = IntegerTensor(
                shape: shape, values: (0..<(units * rowLength)).map { _ in Int8(Int(g.next() % 255) - 127) })
            biases["\(i).bias"] = IntegerTensor(
                shape: [units], values: (0..<units).map { _ in Int32(Int(g.next() % 40_001) - 20_000) })
            let scales = (0..<units).map { _ in uniform(0.001, 0.01) }
            layer.weightScales = scales
            if !isLast {
                // Aim the output scale so typical accumulators span a good part of int8, with some saturation.
                let typical = Float(rowLength).squareRoot() * 60 * 70
                let out = ActivationQuantization(
                    scale: current.scale * scales[0] * typical / uniform(30, 90), zeroPoint: zeroPoint())
                layer.output = out
                layer.multipliers = try scales.map {
                    try FixedPointMultiplier(real: Double(current.scale) * Double($0) / Double(out.scale))
                }
                current = out
            }
        case .globalavgpool1d:
            let out = ActivationQuantization(scale: current.scale * uniform(0.3, 1.2), zeroPoint: zeroPoint())
            layer.output = out
            layer.multipliers = [
                try FixedPointMultiplier(real: Double(current.scale) / (Double(shapes[i][0]) * Double(out.scale)))
            ]
            current = out
        default:
            layer.output = current
        }
        layers.append(layer)
    }
    let parameters = QuantizationParameters(
        calibration: "test", window: window, channels: channels, classes: classes, input: input, layers: layers)
    return try QuantizedModel(parameters: parameters, weights: weights, biases: biases)
}

/// Fake quantization in Double, written from the scheme's definition rather than from the engine:
/// dequantize the int8 input and the weights, compute the layer in real numbers, apply ReLU, and quantize
/// the result with the output scale and zero point.
enum FakeQuantization {
    static func quantize(_ y: Double, _ q: ActivationQuantization) -> Int {
        min(max(Int((y / Double(q.scale)).rounded()) + Int(q.zeroPoint), -128), 127)
    }

    static func input(_ x: [Float], _ q: ActivationQuantization) -> [Int] { x.map { quantize(Double($0), q) } }

    /// The real-valued output of layer `i` for int8 input `a` (before output quantization).
    static func realOutput(_ model: QuantizedModel, layer i: Int, input a: [Int8]) throws -> [Double] {
        let layer = model.parameters.layers[i]
        let inQ = model.inputQuantizations[i]
        let x = a.map { Double(inQ.scale) * Double(Int32($0) - inQ.zeroPoint) }
        let inShape = model.shapes[i], outShape = model.shapes[i + 1]
        var y = [Double](repeating: 0, count: outShape.reduce(1, *))
        switch layer.kind {
        case .conv1d:
            let g = try layer.layerSpec.windowGeometry(inputLength: inShape[0], index: i)
            let w = model.weights["\(i).weight"]!.values, b = model.biases["\(i).bias"]!.values
            let c = inShape[1], f = outShape[1], s = layer.weightScales!
            for t in 0..<g.outputLength {
                for o in 0..<f {
                    var sum = Double(inQ.scale) * Double(s[o]) * Double(b[o])
                    for k in 0..<g.kernel {
                        let idx = t * g.stride - g.padLeft + k * g.dilation
                        guard idx >= 0 && idx < inShape[0] else { continue }  // padding is real zero
                        for ch in 0..<c {
                            sum += x[idx * c + ch] * Double(s[o]) * Double(w[(o * g.kernel + k) * c + ch])
                        }
                    }
                    y[t * f + o] = layer.fusedReLU ? max(sum, 0) : sum
                }
            }
        case .dense:
            let w = model.weights["\(i).weight"]!.values, b = model.biases["\(i).bias"]!.values
            let n = inShape[0], s = layer.weightScales!
            for o in 0..<outShape[0] {
                var sum = Double(inQ.scale) * Double(s[o]) * Double(b[o])
                for j in 0..<n { sum += x[j] * Double(s[o]) * Double(w[o * n + j]) }
                y[o] = layer.fusedReLU ? max(sum, 0) : sum
            }
        case .globalavgpool1d:
            let (l, c) = (inShape[0], inShape[1])
            for ch in 0..<c { y[ch] = (0..<l).map { x[$0 * c + ch] }.reduce(0, +) / Double(l) }
        case .maxpool1d, .avgpool1d:
            let g = try layer.layerSpec.windowGeometry(inputLength: inShape[0], index: i)
            let c = inShape[1]
            for t in 0..<g.outputLength {
                for ch in 0..<c {
                    let taps = (0..<g.kernel).map { t * g.stride - g.padLeft + $0 * g.dilation }.filter {
                        $0 >= 0 && $0 < inShape[0]
                    }
                    let values = taps.map { x[$0 * c + ch] }
                    y[t * c + ch] =
                        layer.kind == .maxpool1d ? values.max()! : values.reduce(0, +) / Double(values.count)
                }
            }
        case .relu:
            y = x.map { max($0, 0) }
        case .flatten:
            y = x
        }
        return y
    }

    static func output(_ model: QuantizedModel, layer i: Int, input a: [Int8]) throws -> [Int] {
        let q = model.parameters.layers[i].output ?? model.inputQuantizations[i]
        return try realOutput(model, layer: i, input: a).map { quantize($0, q) }
    }
}

struct Int8EngineTests {
    @Test("a float simulation of the integer math matches every int8 output within 1 LSB on 1,000 random inputs")
    func fakeQuantizationReference() throws {
        let model = try randomQuantizedModel(seed: 10)
        let engine = Int8Engine(model: model)
        var g = SeededGenerator(seed: 11)
        var worst = 0
        var worstLogit = 0.0
        var compared = 0
        var saturated = 0
        let layers = model.parameters.layers
        for _ in 0..<1000 {
            let x = (0..<(model.window * model.channels)).map { _ in 1.5 * g.nextGaussian() }
            let (activations, _) = try engine.trace(x)
            let input = FakeQuantization.input(x, model.parameters.input)
            worst = max(worst, zip(input, activations[0]).map { abs($0 - Int($1)) }.max() ?? 0)
            for i in 0..<(layers.count - 1) {
                let expected = try FakeQuantization.output(model, layer: i, input: activations[i])
                for (e, a) in zip(expected, activations[i + 1]) {
                    worst = max(worst, abs(e - Int(a)))
                    if a == 127 || a == -128 { saturated += 1 }
                    compared += 1
                }
            }
            // The last layer's float logits, in units of its dequantization step.
            let last = layers.count - 1
            let logits = try engine.logits(for: Tensor(shape: [1, model.window, model.channels], scalars: x))
            let real = try FakeQuantization.realOutput(model, layer: last, input: activations[last])
            let step = layers[last].weightScales!.map { Double(model.inputQuantizations[last].scale) * Double($0) }
            for o in 0..<model.classes {
                worstLogit = max(worstLogit, abs(Double(logits.scalars[o]) - real[o]) / step[o])
            }
        }
        #expect(worst <= 1, "largest int8 difference \(worst) LSB")
        #expect(worstLogit <= 1, "largest logit difference \(worstLogit) LSB")
        #expect(compared > 100_000)
        #expect(saturated > 0, "the test should reach the saturating clamp")
    }

    @Test("batch and single-window paths agree and confidences are consistent")
    func batchAndConfidence() throws {
        let model = try randomQuantizedModel(seed: 12)
        let engine = Int8Engine(model: model)
        var g = SeededGenerator(seed: 13)
        let n = 20
        let x = Tensor(
            shape: [n, model.window, model.channels],
            scalars: (0..<(n * model.window * model.channels)).map { _ in g.nextGaussian() })
        let batch = try engine.classify(windows: x)
        let logits = try engine.logits(for: x)
        #expect(batch.logits == logits)
        for i in 0..<n {
            let p = Array(batch.probabilities.scalars[(i * model.classes)..<((i + 1) * model.classes)])
            let c = batch.confidences[i]
            #expect(abs(p.reduce(0, +) - 1) < 1e-5)
            let sorted = p.sorted(by: >)
            #expect(c.label == p.firstIndex(of: sorted[0]))
            #expect(abs(c.maxProbability - sorted[0]) < 1e-6)
            #expect(abs(c.margin - (sorted[0] - sorted[1])) < 1e-6)
            let entropy = -p.filter { $0 > 0 }.map { $0 * log($0) }.reduce(0, +)
            #expect(abs(c.entropyConfidence - (1 - entropy / log(Float(model.classes)))) < 1e-5)
            #expect((0...1).contains(c.entropyConfidence) && (0...1).contains(c.margin))
        }
    }

    @Test("confidences of a uniform and a one-hot distribution are 0 and 1")
    func confidenceExtremes() {
        let uniform: [Float] = [0.25, 0.25, 0.25, 0.25]
        let c = uniform.withUnsafeBufferPointer { PredictionConfidence(probabilities: $0) }
        #expect(abs(c.entropyConfidence) < 1e-6 && abs(c.margin) < 1e-6 && c.maxProbability == 0.25)
        let sure: [Float] = [0, 1, 0]
        let d = sure.withUnsafeBufferPointer { PredictionConfidence(probabilities: $0) }
        #expect(d.label == 1 && d.entropyConfidence == 1 && d.margin == 1)
    }

    @Test("non-finite samples and wrong shapes are rejected, naming the window and sample")
    func badInput() throws {
        let model = try randomQuantizedModel(seed: 14)
        let engine = Int8Engine(model: model)
        var x = Tensor(shape: [3, model.window, model.channels])
        x.scalars[model.window * model.channels + 7] = .nan
        #expect { try engine.classify(windows: x) } throws: { error in
            guard let e = error as? QuantizationError else { return false }
            return e.code == .badInput && e.message.contains("window 1") && e.message.contains("sample 2")
        }
        #expect(throws: QuantizationError.self) {
            try engine.logits(for: Tensor(shape: [1, model.window + 1, model.channels]))
        }
        // The engine keeps working after a rejected window.
        x.scalars[model.window * model.channels + 7] = 0
        #expect(try engine.classify(windows: x).confidences.count == 3)
    }

    /// One way to break a valid model, and the error code it must produce.
    struct Corruption: CustomTestStringConvertible, Sendable {
        var name: String
        var code: QuantizationError.Code
        var apply:
            @Sendable (
                inout QuantizationParameters, inout [String: IntegerTensor<Int8>], inout [String: IntegerTensor<Int32>]
            ) -> Void
        var testDescription: String { name }
    }

    static let corruptions: [Corruption] = [
        Corruption(name: "zero input scale", code: .invalidParameters) { p, _, _ in p.input.scale = 0 },
        Corruption(name: "NaN input scale", code: .invalidParameters) { p, _, _ in p.input.scale = .nan },
        Corruption(name: "infinite output scale", code: .invalidParameters) { p, _, _ in
            p.layers[0].output?.scale = .infinity
        },
        Corruption(name: "negative weight scale", code: .invalidParameters) { p, _, _ in
            p.layers[1].weightScales?[2] = -0.1
        },
        Corruption(name: "zero point out of range", code: .invalidParameters) { p, _, _ in
            p.layers[0].output?.zeroPoint = 200
        },
        Corruption(name: "shift 0", code: .invalidParameters) { p, _, _ in p.layers[0].multipliers?[0].shift = 0 },
        Corruption(name: "shift 63", code: .invalidParameters) { p, _, _ in p.layers[1].multipliers?[1].shift = 63 },
        Corruption(name: "unnormalized mantissa", code: .invalidParameters) { p, _, _ in
            p.layers[0].multipliers?[0].multiplier = 12
        },
        Corruption(name: "missing multipliers", code: .invalidParameters) { p, _, _ in p.layers[4].multipliers = [] },
        Corruption(name: "weight scales too few", code: .invalidParameters) { p, _, _ in
            p.layers[0].weightScales?.removeLast()
        },
        Corruption(name: "pool changes quantization", code: .invalidParameters) { p, _, _ in
            p.layers[2].output?.zeroPoint = 3
        },
        Corruption(name: "unknown scheme", code: .invalidParameters) { p, _, _ in p.scheme = "int4" },
        Corruption(name: "last layer not dense", code: .unsupportedLayer) { p, _, _ in p.layers.removeLast() },
        Corruption(name: "zero window", code: .shapeMismatch) { p, _, _ in p.window = 0 },
        Corruption(name: "kernel longer than input", code: .shapeMismatch) { p, _, _ in p.layers[1].kernel = 99 },
        Corruption(name: "huge window", code: .shapeMismatch) { p, _, _ in p.window = 1 << 30 },
        Corruption(name: "accumulator overflow", code: .shapeMismatch) { p, _, _ in p.channels = 70_000 },
        Corruption(name: "missing weight", code: .badTensor) { _, w, _ in w["0.weight"] = nil },
        Corruption(name: "misshapen weight", code: .badTensor) { _, w, _ in w["1.weight"]?.shape = [6, 3, 9] },
        Corruption(name: "truncated weight values", code: .badTensor) { _, w, _ in w["4.weight"]?.values.removeLast() },
        Corruption(name: "weight -128", code: .badTensor) { _, w, _ in w["0.weight"]?.values[3] = -128 },
        Corruption(name: "missing bias", code: .badTensor) { _, _, b in b["8.bias"] = nil },
        Corruption(name: "misshapen bias", code: .badTensor) { _, _, b in b["7.bias"]?.shape = [2] },
    ]

    @Test("malformed quantized models are rejected with a clear error", arguments: corruptions)
    func rejectsMalformed(corruption: Corruption) throws {
        let valid = try randomQuantizedModel(seed: 15)
        var p = valid.parameters, w = valid.weights, b = valid.biases
        corruption.apply(&p, &w, &b)
        #expect { try QuantizedModel(parameters: p, weights: w, biases: b) } throws: { error in
            guard let e = error as? QuantizationError else { return false }
            return e.code == corruption.code && !e.message.isEmpty
        }
    }

    @Test("parameters survive a JSON round trip and rebuild the same model")
    func parametersRoundTrip() throws {
        let model = try randomQuantizedModel(seed: 16)
        let data = try JSONEncoder().encode(model.parameters)
        let decoded = try JSONDecoder().decode(QuantizationParameters.self, from: data)
        let rebuilt = try QuantizedModel(parameters: decoded, weights: model.weights, biases: model.biases)
        #expect(rebuilt == model)
    }
}
