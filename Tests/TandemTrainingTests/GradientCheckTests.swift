import TandemCore
import Testing

@testable import TandemTraining

/// Finite-difference checks of every layer's backward pass.
///
/// Each check builds one layer, takes `L = Σ y ⊙ r` for a fixed random `r`, and compares the analytic
/// gradients (input and parameters) with central differences. Inputs avoid the kinks of ReLU and max.
struct GradientCheckTests {
    static let tolerance: Float = 2e-2

    static func randomTensor(_ shape: [Int], seed: UInt64, awayFromZero: Bool = false) -> Tensor {
        var g = SeededGenerator(seed: seed)
        var t = Tensor(shape: shape)
        for i in 0..<t.count {
            var v = g.nextGaussian()
            if awayFromZero && abs(v) < 0.1 { v += v < 0 ? -0.2 : 0.2 }
            t.scalars[i] = v
        }
        return t
    }

    static func loss(_ layer: any TrainableLayer, _ x: Tensor, _ r: Tensor) -> Float {
        let y = layer.forward(x, training: true)
        var s: Double = 0
        for i in 0..<y.count { s += Double(y.scalars[i]) * Double(r.scalars[i]) }
        return Float(s)
    }

    static func close(_ analytic: Float, _ numeric: Float) -> Bool {
        abs(analytic - numeric) <= tolerance * max(1, abs(analytic), abs(numeric))
    }

    /// Checks input and parameter gradients; returns the number of mismatches.
    static func check(_ layer: any TrainableLayer, input: Tensor, checkInput: Bool = true) -> Int {
        let y = layer.forward(input, training: true)
        let r = randomTensor(y.shape, seed: 99)
        for p in layer.parameters { p.gradient = Tensor(shape: p.value.shape) }
        let dx = layer.backward(r, needsInputGradient: true)
        var mismatches = 0
        let h: Float = 1e-2
        if checkInput {
            var x = input
            for i in 0..<x.count {
                let saved = x.scalars[i]
                x.scalars[i] = saved + h
                let up = loss(layer, x, r)
                x.scalars[i] = saved - h
                let down = loss(layer, x, r)
                x.scalars[i] = saved
                if !close(dx.scalars[i], (up - down) / (2 * h)) { mismatches += 1 }
            }
        }
        for p in layer.parameters {
            let analytic = p.gradient
            for i in 0..<p.value.count {
                let saved = p.value.scalars[i]
                p.value.scalars[i] = saved + h
                let up = loss(layer, input, r)
                p.value.scalars[i] = saved - h
                let down = loss(layer, input, r)
                p.value.scalars[i] = saved
                if !close(analytic.scalars[i], (up - down) / (2 * h)) { mismatches += 1 }
            }
        }
        return mismatches
    }

    @Test(
        "conv1d gradients match finite differences",
        arguments: [
            (LayerSpec.Padding.same, 1, 1), (.valid, 1, 1), (.same, 2, 1), (.valid, 1, 2), (.same, 3, 2),
        ])
    func conv1d(padding: LayerSpec.Padding, stride: Int, dilation: Int) throws {
        var g = SeededGenerator(seed: 1)
        let spec = LayerSpec(type: .conv1d, filters: 4, kernel: 3, stride: stride, dilation: dilation, padding: padding)
        let layer = try Conv1DLayer(spec: spec, index: 0, inputShape: [9, 3], generator: &g)
        #expect(Self.check(layer, input: Self.randomTensor([2, 9, 3], seed: 2)) == 0)
    }

    @Test("pointwise conv1d (kernel 1) gradients match finite differences")
    func pointwiseConv() throws {
        var g = SeededGenerator(seed: 1)
        let layer = try Conv1DLayer(
            spec: LayerSpec(type: .conv1d, filters: 3, kernel: 1), index: 0, inputShape: [5, 2], generator: &g)
        #expect(Self.check(layer, input: Self.randomTensor([2, 5, 2], seed: 3)) == 0)
    }

    @Test("dense gradients match finite differences")
    func dense() {
        var g = SeededGenerator(seed: 4)
        let layer = DenseLayer(spec: LayerSpec(type: .dense, units: 5), index: 0, inputs: 6, units: 5, generator: &g)
        #expect(Self.check(layer, input: Self.randomTensor([3, 6], seed: 5)) == 0)
    }

    @Test("relu gradients match finite differences")
    func relu() {
        let layer = ReLULayer(spec: LayerSpec(type: .relu))
        #expect(Self.check(layer, input: Self.randomTensor([2, 6, 3], seed: 6, awayFromZero: true)) == 0)
    }

    @Test("max and average pooling gradients match finite differences", arguments: [true, false])
    func pooling(isMax: Bool) throws {
        for padding in [LayerSpec.Padding.valid, .same] {
            let spec = LayerSpec(type: isMax ? .maxpool1d : .avgpool1d, kernel: 3, stride: 2, padding: padding)
            let layer = try Pool1DLayer(spec: spec, index: 0, inputShape: [7, 2])
            #expect(Self.check(layer, input: Self.randomTensor([2, 7, 2], seed: 7)) == 0)
        }
    }

    @Test("global average pooling gradients match finite differences")
    func globalAveragePool() {
        let layer = GlobalAvgPoolLayer(spec: LayerSpec(type: .globalavgpool1d), inputShape: [5, 3])
        #expect(Self.check(layer, input: Self.randomTensor([2, 5, 3], seed: 8)) == 0)
    }

    @Test("batch norm gradients match finite differences, sequence and flat inputs")
    func batchNorm() {
        let sequence = BatchNormLayer(spec: LayerSpec(type: .batchnorm1d), index: 0, channels: 3)
        sequence.gamma.value = Self.randomTensor([3], seed: 10)
        sequence.beta.value = Self.randomTensor([3], seed: 11)
        #expect(Self.check(sequence, input: Self.randomTensor([2, 4, 3], seed: 9)) == 0)
        let flat = BatchNormLayer(spec: LayerSpec(type: .batchnorm1d), index: 0, channels: 4)
        #expect(Self.check(flat, input: Self.randomTensor([5, 4], seed: 12)) == 0)
    }

    @Test("dropout gradients match finite differences for a fixed mask")
    func dropout() {
        let layer = DropoutLayer(spec: LayerSpec(type: .dropout, rate: 0.5), seed: 13)
        let x = Self.randomTensor([2, 5, 3], seed: 14)
        _ = layer.forward(x, training: true)
        layer.reusesMask = true
        #expect(Self.check(layer, input: x) == 0)
        let y = layer.forward(x, training: true)
        #expect(y.scalars.contains(0), "some activations are dropped")
    }

    @Test("flatten gradients match finite differences")
    func flatten() {
        let layer = FlattenLayer(spec: LayerSpec(type: .flatten))
        #expect(Self.check(layer, input: Self.randomTensor([2, 3, 2], seed: 15)) == 0)
    }

    @Test("softmax cross-entropy gradient matches finite differences, with class weights")
    func crossEntropy() {
        let logits = Self.randomTensor([4, 3], seed: 16)
        let labels = [0, 2, 1, 2]
        let weights: [Float] = [1, 2, 0.5]
        let (_, analytic) = CrossEntropy.lossAndGradient(logits: logits, labels: labels, classWeights: weights)
        var x = logits
        let h: Float = 1e-2
        for i in 0..<x.count {
            let saved = x.scalars[i]
            x.scalars[i] = saved + h
            let up = CrossEntropy.lossAndGradient(logits: x, labels: labels, classWeights: weights).0
            x.scalars[i] = saved - h
            let down = CrossEntropy.lossAndGradient(logits: x, labels: labels, classWeights: weights).0
            x.scalars[i] = saved
            #expect(Self.close(analytic.scalars[i], (up - down) / (2 * h)))
        }
    }
}
