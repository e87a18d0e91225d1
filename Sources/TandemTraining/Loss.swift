import TandemCore

/// Softmax cross-entropy with optional per-class weights.
public enum CrossEntropy {
    /// Mean (class-weighted) loss over the batch and its gradient with respect to the logits.
    ///
    /// With weights `w`, the loss is `Σ w[y_i] · −log p_i[y_i] / Σ w[y_i]`.
    public static func lossAndGradient(logits: Tensor, labels: [Int], classWeights: [Float]? = nil) -> (Float, Tensor) {
        let rows = logits.shape[0]
        let width = logits.shape[1]
        var p = logits
        p.scalars.withUnsafeMutableBufferPointer { Kernels.softmax($0.baseAddress!, rows: rows, width: width) }
        var totalWeight: Float = 0
        for r in 0..<rows { totalWeight += classWeights?[labels[r]] ?? 1 }
        var loss: Float = 0
        p.scalars.withUnsafeMutableBufferPointer { p in
            for r in 0..<rows {
                let w = (classWeights?[labels[r]] ?? 1) / totalWeight
                let row = p.baseAddress! + r * width
                loss -= w * logf(max(row[labels[r]], 1e-12))
                row[labels[r]] -= 1
                for j in 0..<width { row[j] *= w }
            }
        }
        return (loss, p)
    }
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
