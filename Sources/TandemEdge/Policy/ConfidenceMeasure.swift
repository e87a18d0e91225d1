#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// How sure a probability vector is, as one number in `[0, 1]` (higher = surer).
public enum ConfidenceMeasure: String, Sendable, Codable, CaseIterable {
    /// The largest probability.
    case maxProbability
    /// The largest minus the second-largest probability.
    case margin
    /// `1 − H(p) / log C`: 1 for a one-hot vector, 0 for the uniform one.
    case entropy

    /// How `tandem compress` names the measure in manifest metrics (`confidence.<name>.pNN`).
    public var manifestName: String {
        switch self {
        case .maxProbability: "max_probability"
        case .margin: "margin"
        case .entropy: "entropy"
        }
    }

    /// The confidence of `probabilities` (a softmax output; a single class is always fully confident).
    public func confidence(_ probabilities: UnsafeBufferPointer<Float>) -> Double {
        let count = probabilities.count
        guard count > 1 else { return 1 }
        switch self {
        case .maxProbability:
            var best: Float = 0
            for p in probabilities where p > best { best = p }
            return Double(best)
        case .margin:
            var first: Float = -1, second: Float = -1
            for p in probabilities {
                if p > first {
                    second = first
                    first = p
                } else if p > second {
                    second = p
                }
            }
            return Double(max(0, first - max(second, 0)))
        case .entropy:
            var h = 0.0
            for p in probabilities where p > 0 { h -= Double(p) * log(Double(p)) }
            return min(1, max(0, 1 - h / log(Double(count))))
        }
    }

    /// The confidence of `probabilities` given as an array.
    public func confidence(_ probabilities: [Float]) -> Double {
        probabilities.withUnsafeBufferPointer { confidence($0) }
    }
}
