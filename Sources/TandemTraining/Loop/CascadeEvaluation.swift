import TandemCore

/// Which of the three confidence measures an escalation threshold applies to.
public enum ConfidenceMeasure: String, Codable, Sendable, CaseIterable {
    /// The top class's probability.
    case maxProbability = "max-probability"
    /// Top-1 minus top-2 probability.
    case margin
    /// One minus the normalized entropy of the probabilities.
    case entropy
}

extension PredictionConfidence {
    /// The value of one confidence measure.
    public func value(of measure: ConfidenceMeasure) -> Float {
        switch measure {
        case .maxProbability: return maxProbability
        case .margin: return margin
        case .entropy: return entropyConfidence
        }
    }
}

/// One operating point of an edge–cloud cascade.
public struct CascadePoint: Codable, Sendable, Equatable {
    /// Windows whose edge confidence is below this value are escalated.
    public var threshold: Float
    /// The escalation budget this point was chosen for, if it was chosen by budget.
    public var budget: Double?
    /// Fraction of windows escalated.
    public var escalationRate: Double
    /// Accuracy when escalated windows take the full model's answer and the rest the edge's.
    public var cascadeAccuracy: Double
    /// Bytes sent upstream (escalated windows only).
    public var uplinkBytes: Int
    /// `1 − uplinkBytes / cloudOnlyBytes`.
    public var uplinkSaving: Double
}

/// Escalation rate, accuracy and uplink of an edge model backed by a full model, over thresholds.
public struct CascadeReport: Codable, Sendable {
    /// Windows evaluated.
    public var windows: Int
    /// The confidence measure thresholds apply to.
    public var measure: ConfidenceMeasure
    /// Accuracy of the edge model alone.
    public var edgeAccuracy: Double
    /// Accuracy of the full model alone (every window sent to the cloud).
    public var fullAccuracy: Double
    /// Bytes a cloud-only deployment sends: every window.
    public var cloudOnlyBytes: Int
    /// Operating points, by increasing escalation rate.
    public var points: [CascadePoint]
    /// Novelty escalation on the same windows and windows of classes the models do not know, when the edge
    /// model has novelty statistics.
    public var novelty: NoveltyReport?

    /// Scores the cascade at explicit thresholds and at thresholds that meet escalation budgets.
    ///
    /// - Parameters:
    ///   - edge: the edge model's prediction and confidences for each window.
    ///   - fullPredictions: the full model's predicted class for each window.
    ///   - labels: true classes.
    ///   - thresholds: explicit thresholds to score.
    ///   - budgets: target escalation fractions; each becomes the threshold that escalates the least
    ///     confident `budget` share of windows (the budget's quantile of the confidences).
    ///   - bytesPerWindow: what sending one window upstream costs (escalation payload size).
    public init(
        edge: [PredictionConfidence], fullPredictions: [Int], labels: [Int], measure: ConfidenceMeasure,
        thresholds: [Float], budgets: [Double], bytesPerWindow: Int
    ) {
        precondition(edge.count == labels.count && fullPredictions.count == labels.count, "one prediction per window")
        let n = labels.count
        windows = n
        self.measure = measure
        let edgeCorrect = zip(edge, labels).map { $0.label == $1 }
        let fullCorrect = zip(fullPredictions, labels).map { $0 == $1 }
        edgeAccuracy = Double(edgeCorrect.filter { $0 }.count) / Double(max(n, 1))
        fullAccuracy = Double(fullCorrect.filter { $0 }.count) / Double(max(n, 1))
        cloudOnlyBytes = n * bytesPerWindow
        let values = edge.map { $0.value(of: measure) }
        let sorted = values.sorted()
        var chosen = thresholds.map { ($0, Double?.none) }
        for budget in budgets {
            let k = min(max(Int((budget * Double(n)).rounded()), 0), n)
            // Escalate below the k-th smallest value: exactly k windows when values are distinct.
            let threshold = k == 0 ? (sorted.first ?? 0) : (k >= n ? (sorted.last ?? 0).nextUp : sorted[k])
            chosen.append((threshold, budget))
        }
        points = chosen.map { threshold, budget in
            var escalated = 0
            var correct = 0
            for i in 0..<n {
                if values[i] < threshold {
                    escalated += 1
                    if fullCorrect[i] { correct += 1 }
                } else if edgeCorrect[i] {
                    correct += 1
                }
            }
            let bytes = escalated * bytesPerWindow
            return CascadePoint(
                threshold: threshold, budget: budget, escalationRate: Double(escalated) / Double(max(n, 1)),
                cascadeAccuracy: Double(correct) / Double(max(n, 1)), uplinkBytes: bytes,
                uplinkSaving: n == 0 ? 0 : 1 - Double(bytes) / Double(max(n * bytesPerWindow, 1)))
        }.sorted { $0.escalationRate < $1.escalationRate }
    }
}
