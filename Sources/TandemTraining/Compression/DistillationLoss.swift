import TandemCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Knowledge-distillation loss (Hinton, Vinyals, Dean 2015).
///
/// Per window: `α · CE(label, softmax(s)) + (1 − α) · T² · KL(softmax(t/T) ‖ softmax(s/T))` with student
/// logits `s`, teacher logits `t`, temperature `T`. A window without a label trains on the teacher alone:
/// its loss is `T² · KL(…)`. The `T²` factor keeps the soft term's gradient on the same scale as the
/// hard term's as `T` changes. The batch loss is the mean over windows.
public struct DistillationLoss: Sendable, Equatable {
    /// Softmax temperature `T > 0` applied to both teacher and student logits in the soft term.
    public var temperature: Float
    /// Weight `α ∈ [0, 1]` of the hard-label cross-entropy; `1 − α` weighs the soft term.
    public var alpha: Float

    /// Creates the loss.
    ///
    /// - Throws: `ModelSpecError` naming `distillation.temperature` or `distillation.alpha` when out of range.
    public init(temperature: Float = 4, alpha: Float = 0.5) throws {
        guard temperature > 0, temperature.isFinite else {
            throw ModelSpecError(key: "distillation.temperature", message: "must be positive, got \(temperature)")
        }
        guard (0...1).contains(alpha) else {
            throw ModelSpecError(key: "distillation.alpha", message: "must be in [0, 1], got \(alpha)")
        }
        self.temperature = temperature
        self.alpha = alpha
    }

    /// Mean loss over the batch and its gradient with respect to the student logits.
    ///
    /// - Parameters:
    ///   - student: `[batch, classes]` student logits.
    ///   - teacher: `[batch, classes]` teacher logits.
    ///   - labels: one entry per window; nil for an unlabeled window.
    public func lossAndGradient(student: Tensor, teacher: Tensor, labels: [Int?]) -> (Float, Tensor) {
        let rows = student.shape[0], width = student.shape[1]
        let t = temperature
        var gradient = Tensor(shape: student.shape)
        var loss: Double = 0
        var ps = [Float](repeating: 0, count: width), pt = [Float](repeating: 0, count: width)
        var p = [Float](repeating: 0, count: width)
        let scale = 1 / Float(Swift.max(rows, 1))
        for r in 0..<rows {
            let s = Array(student.scalars[(r * width)..<((r + 1) * width)])
            let tl = Array(teacher.scalars[(r * width)..<((r + 1) * width)])
            Self.softmax(s, temperature: t, into: &ps)
            Self.softmax(tl, temperature: t, into: &pt)
            let label = labels[r]
            let hard: Float = label == nil ? 0 : alpha
            let soft: Float = label == nil ? 1 : 1 - alpha
            // Soft term: T² · Σ pt (log pt − log ps); d/ds = T · (ps − pt).
            var kl: Double = 0
            for j in 0..<width where pt[j] > 0 {
                kl += Double(pt[j]) * (Double(logf(pt[j])) - Double(logf(Swift.max(ps[j], 1e-30))))
            }
            loss += Double(soft * t * t) * kl
            for j in 0..<width { gradient.scalars[r * width + j] = scale * soft * t * (ps[j] - pt[j]) }
            if let label, hard > 0 {
                Self.softmax(s, temperature: 1, into: &p)
                loss -= Double(hard) * Double(logf(Swift.max(p[label], 1e-30)))
                for j in 0..<width {
                    gradient.scalars[r * width + j] += scale * hard * (p[j] - (j == label ? 1 : 0))
                }
            }
        }
        return (Float(loss) * scale, gradient)
    }

    static func softmax(_ logits: [Float], temperature: Float, into p: inout [Float]) {
        let top = logits.max() ?? 0
        var sum: Float = 0
        for j in logits.indices {
            p[j] = expf((logits[j] - top) / temperature)
            sum += p[j]
        }
        for j in logits.indices { p[j] /= sum }
    }
}
