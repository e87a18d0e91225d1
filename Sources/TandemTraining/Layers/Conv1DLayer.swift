import TandemCore

/// 1-D convolution over channels-last sequences, as im2col followed by one matrix product per batch.
public final class Conv1DLayer: TrainableLayer {
    public let spec: LayerSpec
    /// `[filters, kernel, channels]`.
    public let weight: Parameter
    /// `[filters]`, or nil when the spec says `bias: false`.
    public let bias: Parameter?
    let geometry: WindowGeometry
    let channels: Int
    let filters: Int
    private var batch = 0
    private var columns: [Float] = []
    private var columnGradient: [Float] = []
    private var input: Tensor?

    /// Creates the layer with He-uniform weights drawn from `generator`.
    init(spec: LayerSpec, index: Int, inputShape: [Int], generator: inout SeededGenerator) throws {
        self.spec = spec
        geometry = try spec.windowGeometry(inputLength: inputShape[0], index: index)
        channels = inputShape[1]
        filters = spec.filters ?? 1
        let fanIn = geometry.kernel * channels
        weight = Parameter(
            name: "\(index).weight",
            value: Initializer.heUniform(
                shape: [filters, geometry.kernel, channels], fanIn: fanIn, generator: &generator),
            decays: true)
        bias =
            (spec.bias ?? true)
            ? Parameter(
                name: "\(index).bias",
                value: Initializer.uniform(
                    shape: [filters], bound: 1 / Float(fanIn).squareRoot(), generator: &generator),
                decays: false) : nil
    }

    public var parameters: [Parameter] { bias.map { [weight, $0] } ?? [weight] }

    private var usesInputAsColumns: Bool { geometry.kernel == 1 && geometry.stride == 1 && geometry.padLeft == 0 }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        batch = x.shape[0]
        let rows = batch * geometry.outputLength
        let width = geometry.kernel * channels
        if columns.count != rows * width { columns = [Float](repeating: 0, count: rows * width) }
        var y = Tensor(shape: [batch, geometry.outputLength, filters])
        let biasValues = bias?.value.scalars ?? []
        x.scalars.withUnsafeBufferPointer { x in
            weight.value.scalars.withUnsafeBufferPointer { w in
                biasValues.withUnsafeBufferPointer { b in
                    columns.withUnsafeMutableBufferPointer { col in
                        y.scalars.withUnsafeMutableBufferPointer { y in
                            Kernels.conv1d(
                                x.baseAddress!, batch: batch, channels: channels, geometry: geometry,
                                weight: w.baseAddress!, bias: bias == nil ? nil : b.baseAddress, filters: filters,
                                col: col.baseAddress!, into: y.baseAddress!)
                        }
                    }
                }
            }
        }
        input = usesInputAsColumns ? x : nil
        return y
    }

    public func backward(_ dy: Tensor, needsInputGradient: Bool) -> Tensor {
        let rows = batch * geometry.outputLength
        let width = geometry.kernel * channels
        if let input { columns = input.scalars }
        dy.scalars.withUnsafeBufferPointer { dy in
            columns.withUnsafeBufferPointer { col in
                weight.gradient.scalars.withUnsafeMutableBufferPointer { dw in
                    // dW[filters, width] += dYᵀ · col
                    Kernels.gemm(
                        transposeA: true, transposeB: false, m: filters, n: width, k: rows, a: dy.baseAddress!,
                        b: col.baseAddress!, beta: 1, c: dw.baseAddress!)
                }
            }
            if let bias {
                bias.gradient.scalars.withUnsafeMutableBufferPointer { db in
                    Reductions.sumRows(
                        dy.baseAddress!, rows: rows, width: filters, into: db.baseAddress!, accumulate: true)
                }
            }
        }
        guard needsInputGradient else { return Tensor(shape: [0]) }
        // dcol[rows, width] = dY · W, then scatter-add the patches back onto the input.
        if columnGradient.count != rows * width { columnGradient = [Float](repeating: 0, count: rows * width) }
        dy.scalars.withUnsafeBufferPointer { dy in
            weight.value.scalars.withUnsafeBufferPointer { w in
                columnGradient.withUnsafeMutableBufferPointer { dcol in
                    Kernels.gemm(
                        transposeA: false, transposeB: false, m: rows, n: width, k: filters, a: dy.baseAddress!,
                        b: w.baseAddress!, beta: 0, c: dcol.baseAddress!)
                }
            }
        }
        if usesInputAsColumns {
            return Tensor(shape: [batch, geometry.inputLength, channels], scalars: columnGradient)
        }
        var dx = Tensor(shape: [batch, geometry.inputLength, channels])
        columnGradient.withUnsafeBufferPointer { dcol in
            dx.scalars.withUnsafeMutableBufferPointer { dx in
                Reductions.col2im(
                    dcol.baseAddress!, batch: batch, channels: channels, geometry: geometry, into: dx.baseAddress!)
            }
        }
        return dx
    }
}
