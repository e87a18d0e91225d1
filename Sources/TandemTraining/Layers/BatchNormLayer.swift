import TandemCore

/// Batch normalization over the last (channel) axis, with running statistics for inference.
///
/// Statistics are taken over every other axis (batch and time), as PyTorch's `BatchNorm1d` does on
/// `[batch, channels, length]`. The running variance is the unbiased batch variance, also as PyTorch.
public final class BatchNormLayer: TrainableLayer {
    public let spec: LayerSpec
    /// Per-channel scale.
    public let gamma: Parameter
    /// Per-channel shift.
    public let beta: Parameter
    /// Running mean used at inference.
    public private(set) var runningMean: [Float]
    /// Running (unbiased) variance used at inference.
    public private(set) var runningVariance: [Float]
    let index: Int
    let channels: Int
    let momentum: Float
    let epsilon: Float
    private var normalized: [Float] = []
    private var inverseStd: [Float]
    private var shape: [Int] = []

    init(spec: LayerSpec, index: Int, channels: Int) {
        self.spec = spec
        self.index = index
        self.channels = channels
        momentum = spec.momentum ?? 0.1
        epsilon = spec.epsilon ?? 1e-5
        gamma = Parameter(name: "\(index).gamma", value: Tensor(shape: [channels], repeating: 1), decays: false)
        beta = Parameter(name: "\(index).beta", value: Tensor(shape: [channels]), decays: false)
        runningMean = [Float](repeating: 0, count: channels)
        runningVariance = [Float](repeating: 1, count: channels)
        inverseStd = [Float](repeating: 1, count: channels)
    }

    public var parameters: [Parameter] { [gamma, beta] }

    public var buffers: [String: Tensor] {
        [
            "\(index).mean": Tensor(shape: [channels], scalars: runningMean),
            "\(index).variance": Tensor(shape: [channels], scalars: runningVariance),
        ]
    }

    /// Replaces the running statistics (used when restoring a snapshot).
    func setRunningStatistics(mean: [Float], variance: [Float]) {
        runningMean = mean
        runningVariance = variance
    }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        shape = x.shape
        let c = channels
        let rows = x.count / c
        var y = x
        let g = gamma.value.scalars, b = beta.value.scalars
        if training {
            var mean = [Float](repeating: 0, count: c)
            var variance = [Float](repeating: 0, count: c)
            x.scalars.withUnsafeBufferPointer { x in
                mean.withUnsafeMutableBufferPointer { m in
                    Reductions.sumRows(x.baseAddress!, rows: rows, width: c, into: m.baseAddress!, accumulate: false)
                }
                for k in 0..<c { mean[k] /= Float(rows) }
                for r in 0..<rows {
                    for k in 0..<c {
                        let d = x[r * c + k] - mean[k]
                        variance[k] += d * d
                    }
                }
            }
            for k in 0..<c {
                let batchVariance = variance[k] / Float(rows)
                inverseStd[k] = 1 / (batchVariance + epsilon).squareRoot()
                let unbiased = variance[k] / Float(max(rows - 1, 1))
                runningMean[k] = (1 - momentum) * runningMean[k] + momentum * mean[k]
                runningVariance[k] = (1 - momentum) * runningVariance[k] + momentum * unbiased
            }
            if normalized.count != x.count { normalized = [Float](repeating: 0, count: x.count) }
            y.scalars.withUnsafeMutableBufferPointer { y in
                normalized.withUnsafeMutableBufferPointer { n in
                    for r in 0..<rows {
                        for k in 0..<c {
                            let i = r * c + k
                            let h = (y[i] - mean[k]) * inverseStd[k]
                            n[i] = h
                            y[i] = g[k] * h + b[k]
                        }
                    }
                }
            }
        } else {
            var scale = [Float](repeating: 0, count: c), shift = [Float](repeating: 0, count: c)
            for k in 0..<c {
                scale[k] = g[k] / (runningVariance[k] + epsilon).squareRoot()
                shift[k] = b[k] - runningMean[k] * scale[k]
            }
            y.scalars.withUnsafeMutableBufferPointer { y in
                for r in 0..<rows {
                    for k in 0..<c { y[r * c + k] = y[r * c + k] * scale[k] + shift[k] }
                }
            }
            normalized = []
        }
        return y
    }

    public func backward(_ dy: Tensor, needsInputGradient: Bool) -> Tensor {
        let c = channels
        let rows = dy.count / c
        var dGamma = [Float](repeating: 0, count: c)
        var dBeta = [Float](repeating: 0, count: c)
        dy.scalars.withUnsafeBufferPointer { dy in
            normalized.withUnsafeBufferPointer { n in
                for r in 0..<rows {
                    for k in 0..<c {
                        let i = r * c + k
                        dBeta[k] += dy[i]
                        dGamma[k] += dy[i] * n[i]
                    }
                }
            }
        }
        for k in 0..<c {
            gamma.gradient.scalars[k] += dGamma[k]
            beta.gradient.scalars[k] += dBeta[k]
        }
        guard needsInputGradient else { return Tensor(shape: [0]) }
        var dx = dy
        let g = gamma.value.scalars
        let n = Float(rows)
        dx.scalars.withUnsafeMutableBufferPointer { dx in
            normalized.withUnsafeBufferPointer { h in
                for r in 0..<rows {
                    for k in 0..<c {
                        let i = r * c + k
                        dx[i] = g[k] * inverseStd[k] / n * (n * dx[i] - dBeta[k] - h[i] * dGamma[k])
                    }
                }
            }
        }
        return dx
    }
}
