import TandemCore

/// How well novelty escalation separates classes a model was never trained on from those it knows.
///
/// `catchRate` is the share of the unseen classes' windows whose novelty score is above the threshold (escalated
/// as novel); `knownNoveltyRate` the share of the known classes' windows above it. For each escalation budget of
/// the cascade, `extraEscalation` counts only the known windows that are novel *and* confident enough not to be
/// escalated as uncertain anyway: what novelty adds to the uplink.
public struct NoveltyReport: Codable, Sendable, Equatable {
    /// What novelty adds at one confidence operating point.
    public struct Point: Codable, Sendable, Equatable {
        /// The escalation budget the confidence threshold was chosen for.
        public var budget: Double
        /// The confidence threshold.
        public var threshold: Float
        /// Share of known windows escalated as novel that the threshold would not have escalated.
        public var extraEscalation: Double
        /// Share of unseen windows escalated for either reason (novel or below the threshold).
        public var unseenEscalated: Double
    }

    /// The novelty threshold the scores were compared with.
    public var threshold: Float
    /// The classes the model does not know, as the data names them.
    public var unseenClasses: [String]
    /// Windows of known classes.
    public var knownWindows: Int
    /// Windows of unseen classes.
    public var unseenWindows: Int
    /// Share of unseen windows above the threshold.
    public var catchRate: Double
    /// Share of known windows above the threshold (an upper bound of the extra escalation at any budget).
    public var knownNoveltyRate: Double
    /// Extra escalation and unseen windows escalated at each budget.
    public var points: [Point]

    /// Scores novelty escalation.
    ///
    /// - Parameters:
    ///   - threshold: The novelty threshold.
    ///   - known: Novelty score and confidence of each known-class window.
    ///   - unseen: Novelty score and confidence of each unseen-class window.
    ///   - unseenClasses: Names of the unseen classes.
    ///   - budgets: Escalation budgets whose confidence thresholds (quantiles of the known windows' confidences,
    ///     as ``CascadeReport`` chooses them) the extra escalation is measured at.
    public init(
        threshold: Float, known: [(score: Float, confidence: Float)], unseen: [(score: Float, confidence: Float)],
        unseenClasses: [String], budgets: [Double]
    ) {
        self.threshold = threshold
        self.unseenClasses = unseenClasses
        knownWindows = known.count
        unseenWindows = unseen.count
        func share(_ part: Int, _ whole: Int) -> Double { Double(part) / Double(max(whole, 1)) }
        catchRate = share(unseen.filter { $0.score > threshold }.count, unseen.count)
        knownNoveltyRate = share(known.filter { $0.score > threshold }.count, known.count)
        let sorted = known.map(\.confidence).sorted()
        points = budgets.map { budget in
            let n = sorted.count
            let k = min(max(Int((budget * Double(n)).rounded()), 0), n)
            let cut = n == 0 ? 0 : (k == 0 ? sorted[0] : (k >= n ? sorted[n - 1].nextUp : sorted[k]))
            let extra = known.filter { $0.score > threshold && $0.confidence >= cut }.count
            let escalated = unseen.filter { $0.score > threshold || $0.confidence < cut }.count
            return Point(
                budget: budget, threshold: cut, extraEscalation: share(extra, known.count),
                unseenEscalated: share(escalated, unseen.count))
        }
    }
}
