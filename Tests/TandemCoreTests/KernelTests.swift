import Testing

@testable import TandemCore

/// The fast kernels against direct, loop-by-loop definitions.
struct KernelTests {
    static func random(_ count: Int, seed: UInt64) -> [Float] {
        var g = SeededGenerator(seed: seed)
        return (0..<count).map { _ in g.nextGaussian() }
    }

    /// `y[b, t, f] = bias[f] + Σ_k Σ_c w[f, k, c] · x[b, t·s − pad + k·d, c]`, zero outside the input.
    static func directConv(
        x: [Float], batch: Int, length: Int, channels: Int, w: [Float], bias: [Float], filters: Int, g: WindowGeometry
    ) -> [Float] {
        var y = [Float](repeating: 0, count: batch * g.outputLength * filters)
        for b in 0..<batch {
            for t in 0..<g.outputLength {
                for f in 0..<filters {
                    var sum = Double(bias[f])
                    for k in 0..<g.kernel {
                        let i = t * g.stride - g.padLeft + k * g.dilation
                        guard i >= 0 && i < length else { continue }
                        for c in 0..<channels {
                            sum +=
                                Double(w[(f * g.kernel + k) * channels + c])
                                * Double(x[(b * length + i) * channels + c])
                        }
                    }
                    y[(b * g.outputLength + t) * filters + f] = Float(sum)
                }
            }
        }
        return y
    }

    @Test(
        "conv1d equals the direct definition for every padding, stride and dilation",
        arguments: [
            (LayerSpec.Padding.same, 1, 1, 8), (.same, 2, 1, 8), (.same, 1, 2, 5), (.valid, 1, 1, 3), (.valid, 3, 2, 3),
            (.same, 1, 1, 1), (.valid, 2, 1, 1), (.same, 4, 1, 7),
        ])
    func convMatchesDirect(padding: LayerSpec.Padding, stride: Int, dilation: Int, kernel: Int) throws {
        let (batch, length, channels, filters) = (3, 23, 4, 5)
        let g = try #require(
            WindowGeometry(inputLength: length, kernel: kernel, stride: stride, dilation: dilation, padding: padding))
        if padding == .same { #expect(g.outputLength == (length + stride - 1) / stride) }
        let x = Self.random(batch * length * channels, seed: 1)
        let w = Self.random(filters * kernel * channels, seed: 2)
        let bias = Self.random(filters, seed: 3)
        var y = [Float](repeating: .nan, count: batch * g.outputLength * filters)
        var col = [Float](repeating: .nan, count: batch * g.outputLength * kernel * channels)
        Kernels.conv1d(
            x, batch: batch, channels: channels, geometry: g, weight: w, bias: bias, filters: filters, col: &col,
            into: &y)
        let expected = Self.directConv(
            x: x, batch: batch, length: length, channels: channels, w: w, bias: bias, filters: filters, g: g)
        for (a, e) in zip(y, expected) { #expect(abs(a - e) <= 1e-4 * max(1, abs(e))) }
    }

    @Test("same padding puts the odd element of padding on the right")
    func samePaddingSplit() throws {
        let g = try #require(WindowGeometry(inputLength: 10, kernel: 4, stride: 1, padding: .same))
        #expect(g.padLeft == 1)  // total 3: 1 left, 2 right
        #expect(g.outputLength == 10)
        #expect(WindowGeometry(inputLength: 3, kernel: 5, stride: 1, padding: .valid) == nil)
    }

    @Test("max and average pooling equal their direct definitions; average ignores padding")
    func pooling() throws {
        let (batch, length, channels) = (2, 9, 3)
        let x = Self.random(batch * length * channels, seed: 4)
        let g = try #require(WindowGeometry(inputLength: length, kernel: 3, stride: 2, padding: .same))
        var maxOut = [Float](repeating: 0, count: batch * g.outputLength * channels)
        var avgOut = maxOut
        Kernels.pool1d(x, batch: batch, channels: channels, geometry: g, max: true, into: &maxOut)
        Kernels.pool1d(x, batch: batch, channels: channels, geometry: g, max: false, into: &avgOut)
        for b in 0..<batch {
            for t in 0..<g.outputLength {
                for c in 0..<channels {
                    let taps = (0..<3).map { t * 2 - g.padLeft + $0 }.filter { $0 >= 0 && $0 < length }
                    let values = taps.map { x[(b * length + $0) * channels + c] }
                    let i = (b * g.outputLength + t) * channels + c
                    #expect(maxOut[i] == values.max()!)
                    #expect(abs(avgOut[i] - values.reduce(0, +) / Float(values.count)) < 1e-6)
                }
            }
        }
    }

    @Test("softmax rows sum to one and survive large logits")
    func softmax() {
        var x: [Float] = [1000, 1001, 999, -5, 0, 5]
        Kernels.softmax(&x, rows: 2, width: 3)
        #expect(abs(x[0..<3].reduce(0, +) - 1) < 1e-6)
        #expect(abs(x[3..<6].reduce(0, +) - 1) < 1e-6)
        #expect(x.allSatisfy { $0.isFinite })
        #expect(x[1] > x[0] && x[0] > x[2])
    }

    @Test("a float model rejects weights of the wrong shape, naming the tensor")
    func rejectsBadWeights() {
        let arch = [
            LayerSpec(type: .conv1d, filters: 2, kernel: 3), LayerSpec(type: .globalavgpool1d),
            LayerSpec(type: .dense, units: 2),
        ]
        let weights: [String: Tensor] = [
            "0.weight": Tensor(shape: [2, 3, 5]), "0.bias": Tensor(shape: [2]),
            "2.weight": Tensor(shape: [2, 2]), "2.bias": Tensor(shape: [2]),
        ]
        #expect { try FloatModel(architecture: arch, window: 8, channels: 4, classes: 2, weights: weights) } throws: {
            "\($0)".contains("0.weight")
        }
        var missing = weights
        missing["0.weight"] = Tensor(shape: [2, 3, 4])
        missing["2.bias"] = nil
        #expect { try FloatModel(architecture: arch, window: 8, channels: 4, classes: 2, weights: missing) } throws: {
            "\($0)".contains("2.bias")
        }
        #expect {
            try FloatModel(architecture: arch, window: 8, channels: 4, classes: 2, weights: [:]).logits(
                for: Tensor(shape: [1, 8, 3]))
        } throws: { _ in true }
    }
}
