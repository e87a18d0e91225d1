#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The predicted class of one window and three measures of how sure the model is.
///
/// All three lie in `[0, 1]`, higher meaning surer, so an escalation policy can put one threshold on any:
/// - `maxProbability`: the top class's probability;
/// - `margin`: top-1 minus top-2 probability;
/// - `entropyConfidence`: `1 − H(p) / log C`, one minus the normalized Shannon entropy of the probabilities.
public struct PredictionConfidence: Sendable, Equatable, Codable {
    /// The index of the most probable class (the first one on ties).
    public var label: Int
    /// The top class's probability.
    public var maxProbability: Float
    /// The top class's probability minus the runner-up's.
    public var margin: Float
    /// One minus the entropy of the probabilities divided by `log(classes)`; 1 with a single class.
    public var entropyConfidence: Float

    /// Creates a confidence record.
    public init(label: Int, maxProbability: Float, margin: Float, entropyConfidence: Float) {
        self.label = label
        self.maxProbability = maxProbability
        self.margin = margin
        self.entropyConfidence = entropyConfidence
    }

    /// The confidences of a probability vector.
    ///
    /// - Parameter probabilities: a probability distribution (non-negative, summing to 1); at least one element.
    public init(probabilities p: UnsafeBufferPointer<Float>) {
        var top = 0
        var first = -Float.infinity, second = -Float.infinity
        var entropy: Float = 0
        for j in 0..<p.count {
            let v = p[j]
            if v > first {
                second = first
                first = v
                top = j
            } else if v > second {
                second = v
            }
            if v > 0 { entropy -= v * logf(v) }
        }
        let normalizer = p.count > 1 ? logf(Float(p.count)) : 1
        self.init(
            label: top, maxProbability: first, margin: p.count > 1 ? first - second : first,
            entropyConfidence: p.count > 1 ? Swift.min(Swift.max(1 - entropy / normalizer, 0), 1) : 1)
    }

    /// Softmax of `logits` into `probabilities` (same count), numerically stable.
    public static func softmax(
        _ logits: UnsafeBufferPointer<Float>, into probabilities: UnsafeMutableBufferPointer<Float>
    ) {
        guard let source = logits.baseAddress, let target = probabilities.baseAddress, !logits.isEmpty else { return }
        target.update(from: source, count: logits.count)
        Kernels.softmax(target, rows: 1, width: logits.count)
    }
}
