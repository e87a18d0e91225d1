import TandemCore

/// The update rule applied to parameters after each mini-batch.
public enum OptimizerKind: String, Codable, Sendable, CaseIterable {
    /// Stochastic gradient descent with (heavy-ball) momentum.
    case sgd
    /// Adam (Kingma & Ba 2015) with bias correction.
    case adam
}

/// Updates parameters from their gradients: SGD with momentum or Adam, with L2 weight decay on weights.
///
/// Weight decay is coupled (added to the gradient) for SGD and decoupled (AdamW, Loshchilov & Hutter 2019)
/// for Adam, which is what each is usually tuned with.
public final class Optimizer {
    /// The update rule.
    public let kind: OptimizerKind
    /// SGD momentum (β₁ for Adam).
    public let momentum: Float
    /// Weight decay factor.
    public let weightDecay: Float
    private let beta2: Float = 0.999
    private let epsilon: Float = 1e-8
    private var first: [ObjectIdentifier: [Float]] = [:]
    private var second: [ObjectIdentifier: [Float]] = [:]
    private var step = 0

    /// Creates an optimizer.
    public init(kind: OptimizerKind, momentum: Float? = nil, weightDecay: Float = 0) {
        self.kind = kind
        self.momentum = momentum ?? (kind == .adam ? 0.9 : 0.9)
        self.weightDecay = weightDecay
    }

    /// Applies one update with learning rate `rate` to every parameter, then zeroes the gradients.
    public func update(_ parameters: [Parameter], rate: Float) {
        step += 1
        let correction1 = 1 - powf(momentum, Float(step))
        let correction2 = 1 - powf(beta2, Float(step))
        for p in parameters {
            let id = ObjectIdentifier(p)
            let n = p.value.count
            var m = first[id] ?? [Float](repeating: 0, count: n)
            let decay = p.decays ? weightDecay : 0
            switch kind {
            case .sgd:
                p.value.scalars.withUnsafeMutableBufferPointer { w in
                    p.gradient.scalars.withUnsafeMutableBufferPointer { g in
                        for i in 0..<n {
                            m[i] = momentum * m[i] + g[i] + decay * w[i]
                            w[i] -= rate * m[i]
                            g[i] = 0
                        }
                    }
                }
            case .adam:
                var v = second[id] ?? [Float](repeating: 0, count: n)
                let b1 = momentum, b2 = beta2, eps = epsilon
                let stepSize = rate / correction1
                let inverseCorrection2 = 1 / correction2
                p.value.scalars.withUnsafeMutableBufferPointer { w in
                    p.gradient.scalars.withUnsafeMutableBufferPointer { g in
                        for i in 0..<n {
                            m[i] = b1 * m[i] + (1 - b1) * g[i]
                            v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i]
                            w[i] -=
                                stepSize * m[i] / ((v[i] * inverseCorrection2).squareRoot() + eps) + rate * decay * w[i]
                            g[i] = 0
                        }
                    }
                }
                second[id] = v
            }
            first[id] = m
        }
    }
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
