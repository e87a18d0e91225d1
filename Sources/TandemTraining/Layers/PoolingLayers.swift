import TandemCore

/// Max or average pooling over time.
public final class Pool1DLayer: TrainableLayer {
    public let spec: LayerSpec
    let geometry: WindowGeometry
    let channels: Int
    let isMax: Bool
    private var batch = 0
    private var argmax: [Int32] = []

    init(spec: LayerSpec, index: Int, inputShape: [Int]) throws {
        self.spec = spec
        geometry = try spec.windowGeometry(inputLength: inputShape[0], index: index)
        channels = inputShape[1]
        isMax = spec.type == .maxpool1d
    }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        batch = x.shape[0]
        var y = Tensor(shape: [batch, geometry.outputLength, channels])
        if isMax && argmax.count != y.count { argmax = [Int32](repeating: 0, count: y.count) }
        x.scalars.withUnsafeBufferPointer { x in
            y.scalars.withUnsafeMutableBufferPointer { y in
                argmax.withUnsafeMutableBufferPointer { arg in
                    Kernels.pool1d(
                        x.baseAddress!, batch: batch, channels: channels, geometry: geometry, max: isMax,
                        into: y.baseAddress!, argmax: isMax ? arg.baseAddress : nil)
                }
            }
        }
        return y
    }

    public func backward(_ dy: Tensor, needsInputGradient: Bool) -> Tensor {
        var dx = Tensor(shape: [batch, geometry.inputLength, channels])
        let g = geometry
        dy.scalars.withUnsafeBufferPointer { dy in
            dx.scalars.withUnsafeMutableBufferPointer { dx in
                for b in 0..<batch {
                    let target = dx.baseAddress! + b * g.inputLength * channels
                    for t in 0..<g.outputLength {
                        let row = (b * g.outputLength + t) * channels
                        if isMax {
                            for c in 0..<channels { target[Int(argmax[row + c]) * channels + c] += dy[row + c] }
                        } else {
                            var taps = 0
                            for k in 0..<g.kernel {
                                let i = g.inputIndex(output: t, tap: k)
                                if i >= 0 && i < g.inputLength { taps += 1 }
                            }
                            let scale = 1 / Float(max(taps, 1))
                            for k in 0..<g.kernel {
                                let i = g.inputIndex(output: t, tap: k)
                                guard i >= 0 && i < g.inputLength else { continue }
                                for c in 0..<channels { target[i * channels + c] += dy[row + c] * scale }
                            }
                        }
                    }
                }
            }
        }
        return dx
    }
}

/// Mean over time: `[batch, length, channels]` → `[batch, channels]`.
public final class GlobalAvgPoolLayer: TrainableLayer {
    public let spec: LayerSpec
    let length: Int
    let channels: Int

    init(spec: LayerSpec, inputShape: [Int]) {
        self.spec = spec
        length = inputShape[0]
        channels = inputShape[1]
    }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        let batch = x.shape[0]
        var y = Tensor(shape: [batch, channels])
        x.scalars.withUnsafeBufferPointer { x in
            y.scalars.withUnsafeMutableBufferPointer { y in
                Kernels.globalAveragePool(
                    x.baseAddress!, batch: batch, length: length, channels: channels, into: y.baseAddress!)
            }
        }
        return y
    }

    public func backward(_ dy: Tensor, needsInputGradient: Bool) -> Tensor {
        let batch = dy.shape[0]
        var dx = Tensor(shape: [batch, length, channels])
        let scale = 1 / Float(length)
        dy.scalars.withUnsafeBufferPointer { dy in
            dx.scalars.withUnsafeMutableBufferPointer { dx in
                for b in 0..<batch {
                    for t in 0..<length {
                        let row = dx.baseAddress! + (b * length + t) * channels
                        for c in 0..<channels { row[c] = dy[b * channels + c] * scale }
                    }
                }
            }
        }
        return dx
    }
}
