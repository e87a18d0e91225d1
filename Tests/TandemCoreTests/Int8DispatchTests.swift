import Testing

@testable import TandemCore

/// The int8 scheme computed from its definition with Int64 sums and no packing, padding rows or SIMD:
/// the engine must equal it bit for bit, whatever kernels it runs.
///
/// It follows docs/INT8.md: the input quantized with `(x · (1 / scale)).rounded()` (ties away from
/// zero), convolution padding and zero points as real zero, int32 accumulators, requantization by
/// `referenceRequantize`, pooling on the int8 codes, and the last layer's accumulators times
/// `inputScale · weightScale[o]` as float logits.
enum IntegerReference {
    static func run(_ model: QuantizedModel, _ window: [Float]) throws -> (activations: [[Int8]], logits: [Float]) {
        let input = model.parameters.input
        let inverse = 1 / input.scale
        var current = window.map { x -> Int8 in
            let q = Swift.min(Swift.max(Double(x * inverse).rounded() + Double(input.zeroPoint), -128), 127)
            return Int8(q)
        }
        var activations = [current]
        var logits = [Float]()
        let layers = model.parameters.layers
        for (i, layer) in layers.enumerated() {
            let inShape = model.shapes[i], outShape = model.shapes[i + 1]
            let zp = Int64(model.inputQuantizations[i].zeroPoint)
            let zpOut = layer.output?.zeroPoint ?? Int32(zp)
            let lower = layer.fusedReLU ? Swift.max(zpOut, -128) : -128
            func requantize(_ acc: Int64, _ unit: Int) throws -> Int8 {
                let m = try #require(layer.multipliers)[unit]
                return referenceRequantize(
                    Int32(truncatingIfNeeded: acc), multiplier: m.multiplier, shift: m.shift, zeroPoint: zpOut,
                    lower: lower)
            }
            var next = [Int8]()
            switch layer.kind {
            case .conv1d:
                let g = try layer.layerSpec.windowGeometry(inputLength: inShape[0], index: i)
                let w = try #require(model.weights["\(i).weight"]).values
                let b = try #require(model.biases["\(i).bias"]).values
                let c = inShape[1], units = outShape[1]
                for t in 0..<g.outputLength {
                    for o in 0..<units {
                        var acc = Int64(b[o])
                        for k in 0..<g.kernel {
                            let index = t * g.stride - g.padLeft + k * g.dilation
                            guard index >= 0 && index < inShape[0] else { continue }
                            for ch in 0..<c {
                                acc += (Int64(current[index * c + ch]) - zp) * Int64(w[(o * g.kernel + k) * c + ch])
                            }
                        }
                        next.append(try requantize(acc, o))
                    }
                }
            case .dense:
                let w = try #require(model.weights["\(i).weight"]).values
                let b = try #require(model.biases["\(i).bias"]).values
                let n = current.count
                let scales = try #require(layer.weightScales)
                for o in 0..<outShape[0] {
                    var acc = Int64(b[o])
                    for j in 0..<n { acc += (Int64(current[j]) - zp) * Int64(w[o * n + j]) }
                    if i == layers.count - 1 {
                        let step = Double(model.inputQuantizations[i].scale) * Double(scales[o])
                        logits.append(Float(Int32(truncatingIfNeeded: acc)) * Float(step))
                    } else {
                        next.append(try requantize(acc, o))
                    }
                }
            case .globalavgpool1d:
                let (length, c) = (inShape[0], inShape[1])
                for ch in 0..<c {
                    let acc = (0..<length).reduce(Int64(0)) { $0 + Int64(current[$1 * c + ch]) - zp }
                    next.append(try requantize(acc, 0))
                }
            case .maxpool1d, .avgpool1d:
                let g = try layer.layerSpec.windowGeometry(inputLength: inShape[0], index: i)
                let c = inShape[1]
                for t in 0..<g.outputLength {
                    for ch in 0..<c {
                        let taps = (0..<g.kernel).map { t * g.stride - g.padLeft + $0 * g.dilation }
                            .filter { $0 >= 0 && $0 < inShape[0] }
                        let values = taps.map { Int(current[$0 * c + ch]) }
                        let value =
                            layer.kind == .maxpool1d
                            ? values.max() ?? 0
                            : Int((Double(values.reduce(0, +)) / Double(Swift.max(values.count, 1))).rounded())
                        next.append(Int8(value))
                    }
                }
            case .relu:
                next = current.map { Swift.max($0, Int8(zp)) }
            case .flatten:
                next = current
            }
            if i < layers.count - 1 {
                activations.append(next)
                current = next
            }
        }
        return (activations, logits)
    }
}

/// Layers with awkward sizes for the kernels: unit counts that are not multiples of 8 or 16, more units
/// than one register tile holds, patch lengths that are not multiples of 4, output lengths that leave
/// row remainders, a 1-wide convolution and a long dense row after flatten.
let awkwardLayers: [QuantizedLayer] = [
    QuantizedLayer(kind: .conv1d, units: 37, kernel: 7, stride: 2, dilation: 1, padding: .same, fusedReLU: true),
    QuantizedLayer(kind: .conv1d, units: 53, kernel: 5, stride: 1, dilation: 1, padding: .valid, fusedReLU: true),
    QuantizedLayer(kind: .conv1d, units: 16, kernel: 1, stride: 1, dilation: 1, padding: .valid),
    QuantizedLayer(kind: .maxpool1d, kernel: 2, stride: 2, padding: .valid),
    QuantizedLayer(kind: .flatten),
    QuantizedLayer(kind: .dense, units: 40, fusedReLU: true),
    QuantizedLayer(kind: .dense, units: 0),
]

struct Int8DispatchTests {
    /// A model under test: its layers and the input it takes.
    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var layers: [QuantizedLayer]
        var window: Int
        var channels: Int
        var classes: Int
        var testDescription: String { name }

        func model(seed: UInt64) throws -> QuantizedModel {
            try randomQuantizedModel(seed: seed, window: window, channels: channels, classes: classes, layers: layers)
        }
    }

    static let cases = [
        Case(name: "every op", layers: everyOpLayers, window: 40, channels: 3, classes: 4),
        Case(name: "awkward sizes", layers: awkwardLayers, window: 61, channels: 5, classes: 6),
    ]

    @Test(
        "every kernel version the machine runs equals the exact integer reference element for element on 1,000 random inputs",
        arguments: cases, Int8InstructionSet.supported)
    func equalsIntegerReference(_ test: Case, _ instructionSet: Int8InstructionSet) throws {
        let model = try test.model(seed: 20)
        let engine = Int8Engine(model: model, instructionSet: instructionSet)
        var g = SeededGenerator(seed: 21)
        var compared = 0
        for _ in 0..<1000 {
            let x = (0..<(model.window * model.channels)).map { _ in 1.5 * g.nextGaussian() }
            let expected = try IntegerReference.run(model, x)
            let (activations, _) = try engine.trace(x)
            let logits = try engine.logits(for: Tensor(shape: [1, model.window, model.channels], scalars: x))
            try #require(activations == expected.activations)
            // Bit-identical logits are the claim, so they are compared exactly rather than within a tolerance.
            try #require(logits.scalars.map(\.bitPattern) == expected.logits.map(\.bitPattern))
            compared += activations.reduce(0) { $0 + $1.count } + logits.scalars.count
        }
        #expect(compared > 100_000)
    }

    @Test("all kernel versions give bit-identical batch results", arguments: cases)
    func versionsAgree(_ test: Case) throws {
        let model = try test.model(seed: 22)
        var g = SeededGenerator(seed: 23)
        let n = 200
        let windows = Tensor(
            shape: [n, model.window, model.channels],
            scalars: (0..<(n * model.window * model.channels)).map { _ in 2 * g.nextGaussian() })
        let results = try Int8InstructionSet.supported.map {
            try Int8Engine(model: model, instructionSet: $0).classify(windows: windows)
        }
        let first = try #require(results.first)
        for result in results.dropFirst() {
            #expect(result.logits.scalars.map(\.bitPattern) == first.logits.scalars.map(\.bitPattern))
            #expect(result.probabilities.scalars.map(\.bitPattern) == first.probabilities.scalars.map(\.bitPattern))
            #expect(result.confidences == first.confidences)
        }
    }

    @Test("the fastest supported version is the default and the portable one is always there")
    func dispatch() throws {
        let supported = Int8InstructionSet.supported
        #expect(supported.first == .portable)
        #expect(Int8InstructionSet.best == supported.last)
        #expect(Int8Engine(model: try randomQuantizedModel(seed: 24)).instructionSet == .best)
    }
}
