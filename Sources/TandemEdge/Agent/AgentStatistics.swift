/// What the agent has done since it started: the numbers a status message reports.
public struct AgentStatistics: Sendable, Equatable {
    /// Samples accepted into windows.
    public var samples = 0
    /// Windows classified.
    public var windows = 0
    /// Windows escalated.
    public var escalations = 0
    /// Windows wanted for escalation (for any reason) that the rate cap kept local.
    public var cappedEscalations = 0
    /// Windows the classifier called novel (escalated or not).
    public var novelWindows = 0
    /// Windows escalated because they were novel though confident.
    public var novelEscalations = 0
    /// Confident, familiar windows escalated for an audit.
    public var auditEscalations = 0
    /// Sum of the windows' confidences (for the mean).
    public var confidenceSum = 0.0
    /// Escalated windows whose verdict arrived before the deadline (their record is the cloud's).
    public var verdictsInTime = 0
    /// Correction records emitted for late verdicts that differed from the provisional prediction.
    public var corrections = 0
    /// Windows whose classification failed.
    public var classificationFailures = 0
    /// Windows classified per stream.
    public var windowsByStream: [String: Int] = [:]
    /// Gaps that restarted a stream's windowing, per stream.
    public var gapResetsByStream: [String: Int] = [:]
    /// Re-synchronizations after a run of out-of-order samples (a timestamp from the far future), per stream.
    public var resynchronizationsByStream: [String: Int] = [:]
    /// Streams whose observed sample rate differs from the model's by more than 10 %: the observed rate in Hz.
    public var sampleRateMismatchByStream: [String: Double] = [:]
    /// Rejected input per stream and reason.
    public var inputErrors = InputErrorCounters.Snapshot(byStream: [:])
    /// The policy's current threshold.
    public var threshold = 0.0

    /// Escalations per window.
    public var escalationRate: Double { windows == 0 ? 0 : Double(escalations) / Double(windows) }
    /// Novel windows per window.
    public var noveltyRate: Double { windows == 0 ? 0 : Double(novelWindows) / Double(windows) }
    /// Mean confidence over all windows.
    public var meanConfidence: Double { windows == 0 ? 0 : confidenceSum / Double(windows) }
}
