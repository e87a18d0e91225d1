import Synchronization

extension StreamPipeline {
    /// What a stream's pipeline is given: the classifier, the escalation policy, the escalation transport,
    /// the sinks, the counters, a clock and a log. ``EdgeAgent`` assembles one for all its streams and runs
    /// them; a pipeline never sees the agent.
    ///
    /// Data flows one way. A stream classifies each window with ``model``'s current classifier, asks
    /// ``policy`` whether to escalate it, hands an escalated window to ``escalations`` and the window's
    /// record to ``sinks`` (``emit(_:)``). When verdicts come back (``awaitsVerdicts``)
    /// an escalated window's record goes to ``verdictTracker`` instead, and whoever receives the verdicts
    /// emits it from there.
    ///
    /// A class, so that a thousand streams share one copy at a word each. What the streams of several
    /// sources change together sits behind a lock taken once per window (model, policy, statistics) or once
    /// per batch.
    final class Stages: Sendable {
        /// The serving classifier, read before each window (model updates swap it).
        let model: ServingModel
        /// Decides which windows are escalated. One for all streams: the rate cap and a budget's threshold
        /// are the device's.
        let policy: Mutex<EscalationPolicy>
        /// Where escalated windows go.
        let escalations: any EscalationTransport
        /// Where records go.
        let sinks: [any PredictionSink]
        /// Escalated windows' records waiting for a verdict, while ``awaitsVerdicts``.
        let verdictTracker: Mutex<VerdictTracker>
        /// Set by whoever runs the stages once the transport delivers verdicts.
        let verdictsEnabled = Atomic<Bool>(false)
        /// What the streams have done.
        let statistics = Mutex(AgentStatistics())
        /// Rejected input per stream and reason; a stream counts under its index in the configuration.
        let inputErrors: InputErrorCounters
        /// The device escalations name.
        let device: String
        /// Classes (with probabilities) an escalation carries.
        let topK: Int
        /// The origin of ``now``.
        let started: ContinuousClock.Instant
        /// How long an escalated window waits for its verdict, and how long after that a late verdict still corrects
        /// its record: the deadline and last use its escalation carries.
        let verdictSeconds: (deadline: Double, correction: Double)
        /// Where messages go.
        let log: @Sendable (String) -> Void
        private let rejectionLog: Mutex<RateLimitedLog>

        /// Assembles the stages.
        ///
        /// - Parameters:
        ///   - model: The serving classifier.
        ///   - policy: The escalation policy.
        ///   - escalations: Where escalated windows go.
        ///   - sinks: Where records go.
        ///   - verdictTracker: Holds escalated windows' records until their verdict or its deadline.
        ///   - inputErrors: Rejected-input counters for the configured streams.
        ///   - rejectionLog: How many messages about rejected input are written.
        ///   - device: The device escalations name.
        ///   - topK: Classes an escalation carries.
        ///   - started: The origin of ``now``.
        ///   - log: Where messages go.
        init(
            model: ServingModel, policy: EscalationPolicy, escalations: any EscalationTransport,
            sinks: [any PredictionSink], verdictTracker: VerdictTracker, inputErrors: InputErrorCounters,
            rejectionLog: RateLimitedLog, device: String, topK: Int, started: ContinuousClock.Instant = .now,
            log: @escaping @Sendable (String) -> Void
        ) {
            self.model = model
            self.policy = Mutex(policy)
            self.escalations = escalations
            self.sinks = sinks
            self.verdictTracker = Mutex(verdictTracker)
            self.inputErrors = inputErrors
            self.rejectionLog = Mutex(rejectionLog)
            self.device = device
            self.topK = topK
            self.started = started
            self.log = log
            verdictSeconds = (verdictTracker.deadlineSeconds, verdictTracker.correctionWindowSeconds)
        }

        /// The deadline and last use an escalation made at `now` (Unix seconds) carries: when the verdict tracker
        /// releases its record provisional, and when a late verdict can no longer correct it.
        func verdictDeadline(from now: Double) -> (verdict: Double, lastUse: Double) {
            (now + verdictSeconds.deadline, now + verdictSeconds.deadline + verdictSeconds.correction)
        }

        /// Seconds since ``started``: the time the policy, the verdict deadlines and the log limit run on.
        var now: Double {
            let elapsed = ContinuousClock.now - started
            return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        }

        /// Whether escalated windows wait for a verdict (the transport delivers them).
        var awaitsVerdicts: Bool { verdictsEnabled.load(ordering: .relaxed) }

        /// Writes records to every sink.
        func emit(_ records: [PredictionRecord]) {
            for record in records { emit(record) }
        }

        /// Writes one record to every sink.
        func emit(_ record: PredictionRecord) {
            for sink in sinks { sink.write(record) }
            if record.kind == .correction { statistics.withLock { $0.corrections += 1 } }
            if record.origin == .cloud && record.kind == .prediction { statistics.withLock { $0.verdictsInTime += 1 } }
        }

        /// Logs a rejected line, rate-limited.
        func reportRejection(_ reason: InputRejection, stream: String, line: Int, source: String) {
            let decision = rejectionLog.withLock { $0.decide(now: now) }
            switch decision {
            case .write: log("stream \(stream): \(source) line \(line): skipped (\(reason.rawValue))")
            case .writeAfterSuppressed(let k):
                log("stream \(stream): suppressed \(k) messages about bad input")
                log("stream \(stream): \(source) line \(line): skipped (\(reason.rawValue))")
            case .suppress: break
            }
        }
    }
}
