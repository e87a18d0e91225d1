import TandemCore

/// Rectified linear unit.
public final class ReLULayer: TrainableLayer {
    public let spec: LayerSpec
    private var output = Tensor(shape: [0])

    init(spec: LayerSpec) { self.spec = spec }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        var y = x
        y.scalars.withUnsafeMutableBufferPointer { Kernels.relu($0.baseAddress!, count: $0.count) }
        output = y
        return y
    }

    public func backward(_ dy: Tensor, needsInputGradient: Bool) -> Tensor {
        var dx = dy
        dx.scalars.withUnsafeMutableBufferPointer { dx in
            output.scalars.withUnsafeBufferPointer { y in
                Self.maskNonPositive(dx.baseAddress!, where: y.baseAddress!, count: dx.count)
            }
        }
        return dx
    }

    /// `dx[i] = y[i] > 0 ? dx[i] : 0`, sixteen lanes at a time.
    static func maskNonPositive(_ dx: UnsafeMutablePointer<Float>, where y: UnsafePointer<Float>, count: Int) {
        let lanes = 16
        let rawDX = UnsafeMutableRawPointer(dx)
        let rawY = UnsafeRawPointer(y)
        var i = 0
        while i + lanes <= count {
            let g = rawDX.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
            let v = rawY.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
            rawDX.storeBytes(of: g.replacing(with: 0, where: v .<= 0), toByteOffset: i * 4, as: SIMD16<Float>.self)
            i += lanes
        }
        while i < count {
            if y[i] <= 0 { dx[i] = 0 }
            i += 1
        }
    }
}

/// Inverted dropout: zeroes each activation with probability `rate` in training and scales the rest by
/// `1 / (1 − rate)`, so inference is the identity.
public final class DropoutLayer: TrainableLayer {
    public let spec: LayerSpec
    let rate: Float
    private var generator: SeededGenerator
    private var mask: [Float] = []
    /// Keeps the last mask instead of drawing a new one (lets gradient checks perturb a fixed function).
    var reusesMask = false

    init(spec: LayerSpec, seed: UInt64) {
        self.spec = spec
        rate = spec.rate ?? 0.5
        generator = SeededGenerator(seed: seed)
    }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        guard training, rate > 0 else {
            mask = []
            return x
        }
        let keep = 1 / (1 - rate)
        if reusesMask && mask.count == x.count { return applyingMask(x) }
        if mask.count != x.count { mask = [Float](repeating: 0, count: x.count) }
        for i in 0..<mask.count { mask[i] = generator.nextUnitFloat() < rate ? 0 : keep }
        return applyingMask(x)
    }

    private func applyingMask(_ x: Tensor) -> Tensor {
        var y = x
        for i in 0..<y.count { y.scalars[i] *= mask[i] }
        return y
    }

    public func backward(_ dy: Tensor, needsInputGradient: Bool) -> Tensor {
        mask.isEmpty ? dy : applyingMask(dy)
    }
}

/// Flattens `[batch, length, channels]` to `[batch, length · channels]`.
public final class FlattenLayer: TrainableLayer {
    public let spec: LayerSpec
    private var inputShape: [Int] = []

    init(spec: LayerSpec) { self.spec = spec }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        inputShape = x.shape
        return x.reshaped([x.shape[0], x.count / max(x.shape[0], 1)])
    }

    public func backward(_ dy: Tensor, needsInputGradient: Bool) -> Tensor { dy.reshaped(inputShape) }
}
