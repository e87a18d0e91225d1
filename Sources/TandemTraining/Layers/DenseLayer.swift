import TandemCore

/// Fully connected layer on flat inputs `[batch, inputs]`.
public final class DenseLayer: TrainableLayer {
    public let spec: LayerSpec
    /// `[units, inputs]`.
    public let weight: Parameter
    /// `[units]`, or nil when the spec says `bias: false`.
    public let bias: Parameter?
    let inputs: Int
    let units: Int
    private var input = Tensor(shape: [0])

    init(spec: LayerSpec, index: Int, inputs: Int, units: Int, generator: inout SeededGenerator) {
        self.spec = spec
        self.inputs = inputs
        self.units = units
        let bound = 1 / Float(inputs).squareRoot()
        weight = Parameter(
            name: "\(index).weight",
            value: Initializer.uniform(shape: [units, inputs], bound: bound, generator: &generator),
            decays: true)
        bias =
            (spec.bias ?? true)
            ? Parameter(
                name: "\(index).bias", value: Initializer.uniform(shape: [units], bound: bound, generator: &generator),
                decays: false) : nil
    }

    public var parameters: [Parameter] { bias.map { [weight, $0] } ?? [weight] }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        let batch = x.shape[0]
        input = x
        var y = Tensor(shape: [batch, units])
        x.scalars.withUnsafeBufferPointer { x in
            weight.value.scalars.withUnsafeBufferPointer { w in
                y.scalars.withUnsafeMutableBufferPointer { y in
                    if let bias {
                        bias.value.scalars.withUnsafeBufferPointer { b in
                            Kernels.dense(
                                x.baseAddress!, batch: batch, inputs: inputs, weight: w.baseAddress!,
                                bias: b.baseAddress,
                                units: units, into: y.baseAddress!)
                        }
                    } else {
                        Kernels.dense(
                            x.baseAddress!, batch: batch, inputs: inputs, weight: w.baseAddress!, bias: nil,
                            units: units,
                            into: y.baseAddress!)
                    }
                }
            }
        }
        return y
    }

    public func backward(_ dy: Tensor, needsInputGradient: Bool) -> Tensor {
        let batch = dy.shape[0]
        var dx = Tensor(shape: needsInputGradient ? [batch, inputs] : [0])
        dy.scalars.withUnsafeBufferPointer { dy in
            input.scalars.withUnsafeBufferPointer { x in
                weight.gradient.scalars.withUnsafeMutableBufferPointer { dw in
                    Kernels.gemm(
                        transposeA: true, transposeB: false, m: units, n: inputs, k: batch, a: dy.baseAddress!,
                        b: x.baseAddress!, beta: 1, c: dw.baseAddress!)
                }
            }
            if let bias {
                bias.gradient.scalars.withUnsafeMutableBufferPointer { db in
                    Reductions.sumRows(
                        dy.baseAddress!, rows: batch, width: units, into: db.baseAddress!, accumulate: true)
                }
            }
            if needsInputGradient {
                weight.value.scalars.withUnsafeBufferPointer { w in
                    dx.scalars.withUnsafeMutableBufferPointer { dx in
                        Kernels.gemm(
                            transposeA: false, transposeB: false, m: batch, n: inputs, k: units, a: dy.baseAddress!,
                            b: w.baseAddress!, beta: 0, c: dx.baseAddress!)
                    }
                }
            }
        }
        return dx
    }
}
