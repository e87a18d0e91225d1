import TandemProtocol

/// Decides which windows go to the cloud: those whose confidence is below a threshold, at most a
/// token bucket's worth per second.
///
/// With a fixed threshold the decision is a comparison. With a target budget (a share of windows
/// to escalate, e.g. 0.10) the threshold starts at the calibration distribution's `budget` quantile
/// and is then adjusted online so the observed share holds the budget when the live confidence
/// distribution drifts: after every window
/// `threshold += gain × (budget − wanted)`, where `wanted` is 1 if the window was below the threshold.
/// The threshold is thus the integral of the escalation-rate error, and it settles where a share
/// `budget` of the current stream is below it (a stochastic-approximation quantile tracker). The
/// rate-cap does not feed the controller: windows the bucket refuses still count as wanted, so a
/// cap never drives the threshold up.
///
/// Two more reasons escalate a window whose confidence is above the threshold (``EscalationReason``): the
/// classifier found it *novel* — its waveform statistics far from the predicted class's on the training windows,
/// where a softmax is often sure and wrong (only with `escalatesNovel`) — or it is drawn for an *audit*, a random
/// share `auditShare` of the remaining confident windows, which gives the cloud an unbiased sample of what the
/// edge answers on its own.
/// Both share the rate cap with the uncertain windows; neither feeds the threshold controller, so a novel
/// regime does not move the confidence threshold.
///
/// Pure and deterministic: the caller passes confidences, novelty and times; audits are drawn from a
/// generator seeded at creation.
public struct EscalationPolicy: Sendable {
    /// How the threshold is set.
    public enum Mode: Sendable, Equatable {
        /// A fixed confidence threshold.
        case threshold(Double)
        /// A target share of windows to escalate, starting from calibration quantiles.
        case budget(Double, calibration: CalibrationQuantiles)
    }

    /// One decision.
    public struct Decision: Sendable, Equatable {
        /// Whether to escalate this window.
        public var escalate: Bool
        /// The window had a reason to be escalated (``reason`` is set), whether or not the cap allowed it.
        public var wanted: Bool
        /// The threshold the confidence was compared with.
        public var threshold: Double
        /// Why the window was wanted: below the threshold, novel, or drawn for an audit; nil when it was not.
        public var reason: EscalationReason? = nil
    }

    /// The confidence measure decisions use.
    public let measure: ConfidenceMeasure
    /// The mode.
    public let mode: Mode
    /// Controller gain: threshold change per window per unit of rate error.
    public let gain: Double
    /// The current threshold.
    public private(set) var threshold: Double
    private var bucket: TokenBucket
    private var recent: [Bool]
    private var recentPosition = 0
    private var recentFilled = 0
    private var recentWanted = 0

    /// Windows decided.
    public private(set) var decisions = 0
    /// Windows escalated.
    public private(set) var escalations = 0
    /// Windows wanted for any reason that the rate cap held back.
    public private(set) var capped = 0
    /// The share of confident windows that are not novel escalated for an audit.
    public let auditShare: Double
    /// Whether novel windows are escalated (else `novel` is ignored).
    public let escalatesNovel: Bool
    /// State of the generator audits are drawn from (SplitMix64).
    private var auditState: UInt64

    /// Creates a policy.
    ///
    /// - Parameters:
    ///   - measure: The confidence measure.
    ///   - mode: A fixed threshold or a budget.
    ///   - maxEscalationsPerSecond: The token bucket's rate (`.infinity`: no cap).
    ///   - burst: The bucket's capacity (default: one second's worth).
    ///   - gain: Controller gain for budget mode.
    ///   - rateWindow: Decisions the reported ``observedRate`` covers.
    ///   - auditShare: The share of confident, familiar windows escalated for an audit, in [0, 1] (default none).
    ///   - auditSeed: Seeds the draws of the audits (the agent passes a random one).
    ///   - escalatesNovel: Whether confident novel windows are escalated (default false, as `policy.escalateNovel`).
    /// - Throws: ``PolicyError`` naming the parameter out of range.
    public init(
        measure: ConfidenceMeasure, mode: Mode, maxEscalationsPerSecond: Double = .infinity, burst: Double? = nil,
        gain: Double = 0.002, rateWindow: Int = 1000, auditShare: Double = 0, auditSeed: UInt64 = 0,
        escalatesNovel: Bool = false
    ) throws(PolicyError) {
        switch mode {
        case .threshold(let t):
            guard t.isFinite, t >= 0, t <= 1 else {
                throw PolicyError(.invalidParameter, "threshold \(t) must be within [0, 1]")
            }
            threshold = t
        case .budget(let b, let calibration):
            guard b.isFinite, b >= 0, b <= 1 else {
                throw PolicyError(.invalidParameter, "budget \(b) must be within [0, 1]")
            }
            threshold = calibration.value(at: b)
        }
        guard maxEscalationsPerSecond >= 0, !maxEscalationsPerSecond.isNaN else {
            throw PolicyError(.invalidParameter, "maxEscalationsPerSecond \(maxEscalationsPerSecond) must be ≥ 0")
        }
        guard gain.isFinite, gain >= 0 else { throw PolicyError(.invalidParameter, "gain \(gain) must be ≥ 0") }
        guard rateWindow > 0 else { throw PolicyError(.invalidParameter, "rateWindow \(rateWindow) must be positive") }
        guard auditShare.isFinite, auditShare >= 0, auditShare <= 1 else {
            throw PolicyError(.invalidParameter, "auditShare \(auditShare) must be within [0, 1]")
        }
        self.auditShare = auditShare
        self.escalatesNovel = escalatesNovel
        auditState = auditSeed
        self.measure = measure
        self.mode = mode
        self.gain = gain
        bucket = TokenBucket(ratePerSecond: maxEscalationsPerSecond, capacity: burst)
        recent = [Bool](repeating: false, count: rateWindow)
    }

    /// Decides about one window's probabilities at time `now` (seconds).
    public mutating func decide(probabilities: UnsafeBufferPointer<Float>, now: Double) -> Decision {
        decide(confidence: measure.confidence(probabilities), now: now)
    }

    /// Decides about one window of confidence `confidence` at time `now` (seconds).
    ///
    /// - Parameter novel: The classifier called the window novel (a reason to escalate it even when confident).
    public mutating func decide(confidence: Double, novel: Bool = false, now: Double) -> Decision {
        let used = threshold
        let uncertain = confidence < used
        let reason: EscalationReason?
        if uncertain {
            reason = .uncertain
        } else if novel && escalatesNovel {
            reason = .novel
        } else if auditShare > 0 && nextAuditDraw() < auditShare {
            reason = .audit
        } else {
            reason = nil
        }
        let wanted = reason != nil
        let escalate = wanted && bucket.take(now: now)
        decisions += 1
        if escalate { escalations += 1 }
        if wanted && !escalate { capped += 1 }
        if recentFilled == recent.count, recent[recentPosition] { recentWanted -= 1 }
        recent[recentPosition] = uncertain
        if uncertain { recentWanted += 1 }
        recentPosition = (recentPosition + 1) % recent.count
        recentFilled = min(recentFilled + 1, recent.count)
        if case .budget(let target, _) = mode {
            threshold = min(1, max(0, threshold + gain * (target - (uncertain ? 1 : 0))))
        }
        return Decision(escalate: escalate, wanted: wanted, threshold: used, reason: reason)
    }

    /// A uniform draw in [0, 1) from SplitMix64.
    private mutating func nextAuditDraw() -> Double {
        auditState &+= 0x9E37_79B9_7F4A_7C15
        var z = auditState
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return Double(z >> 11) * 0x1.0p-53
    }

    /// The share of the last `rateWindow` decisions whose confidence was below the threshold.
    public var observedRate: Double { recentFilled == 0 ? 0 : Double(recentWanted) / Double(recentFilled) }
}
