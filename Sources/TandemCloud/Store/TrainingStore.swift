import Foundation
import TandemFleet
import TandemProtocol

/// What the retraining loop needs of a sample store: counts since the last round, the hard examples to train
/// on, the training lease, the record of rounds, and the edge's label accuracy for a canary.
///
/// ``SampleStore`` (SQLite) and ``PostgresSampleStore`` implement it with the same rules: "since" is strictly
/// after a time; training examples are the escalations with a label or a verdict, oldest first, labelled with the
/// ground truth if known, else the verdict, and payloads that do not decode are counted and skipped; one holder
/// at a time has the lease (a holder calling again renews it, another may take it only once it expired, at
/// `now ≥ expiry`); rounds are listed by start, the latest first.
public protocol TrainingStore: Sendable {
    /// Escalations received after `time` (seconds since 1970), answered or not, audits not counted: they are a
    /// random share of the windows the edge was sure of, not hard examples, and must not start rounds.
    func hardExampleCount(receivedAfter time: Double) throws -> Int
    /// Labels recorded after `time` (seconds since 1970).
    func labelCount(recordedAfter time: Double) throws -> Int
    /// Every escalation with a ground-truth label or a verdict received after `receivedAfter` (all if nil),
    /// oldest first, at most `limit` (all if nil); and how many stored payloads could not be decoded.
    func trainingExamples(receivedAfter: Double?, limit: Int?) throws -> (
        examples: [SampleStore.TrainingExample], undecodable: Int
    )
    /// Takes or renews the training lease for `holder` unless another holder's lease runs past `now`;
    /// returns whether `holder` holds it now. The check and the write are one atomic step.
    func acquireTrainingLease(holder: String, durationSeconds: Double, now: Double) throws -> Bool
    /// Gives the lease up if `holder` has it.
    func releaseTrainingLease(holder: String) throws
    /// The lease as stored (it may have expired).
    func trainingLease() throws -> SampleStore.TrainingLease?
    /// Records a finished round.
    func recordRound(_ round: SampleStore.RecordedRound) throws
    /// Recorded rounds, the most recently started first, at most `limit` (all if nil).
    func rounds(limit: Int?) throws -> [SampleStore.RecordedRound]
    /// How many recorded rounds ended each way, by outcome (`unrecorded` for rounds stored without one).
    func roundOutcomeCounts() throws -> [String: Int]
    /// How often each of `models` predicted the ground truth on its labelled escalations received at or after
    /// `time`; versions without any are left out.
    func edgeAccuracy(of models: [String], receivedSince time: Double) throws -> [String: AccuracyComparison.Tally]
    /// How often `model` predicted the ground truth on the labelled escalations received at or after `time` from
    /// `devices` of `fleet` (every device of `fleet` if nil): the devices the cloud gave that model, so a device's
    /// own claim of the version it runs counts only where the cloud knows it could be true. With `auditsOnly`, on
    /// the labelled audit escalations alone. The devices' tallies are pooled (``AccuracyComparison/Tally/pooled(_:)``):
    /// a device counts at most as many windows as the lower-median device with labels.
    func edgeAccuracy(
        of model: String, fleet: String, devices: [String]?, receivedSince time: Double, auditsOnly: Bool
    ) throws -> AccuracyComparison.Tally
}

extension TrainingStore {
    /// The most recently started round, if any.
    public func lastRound() throws -> SampleStore.RecordedRound? {
        try rounds(limit: 1).first
    }

    /// The label accuracy of a canary's candidate against the version it replaces since the canary started: on
    /// their labelled audit escalations when both have the policy's `minimumLabelledWindows` of them, else on all
    /// their labelled escalations, or nil unless both rest on that many.
    ///
    /// The version an escalation names is its device's word; what the cloud knows is whom it gave each version. The
    /// candidate's escalations count only from the rollout's cohort, the previous version's from any device of the
    /// rollout's fleet (all ran it, the cohort before it switched), so a device outside the cohort cannot speak for
    /// the candidate, nor a device of another fleet for either.
    ///
    /// Only escalated windows carry the edge's prediction and can get a label, so this is accuracy on the
    /// windows each model was unsure of, not the models' overall accuracy. A candidate that escalates fewer,
    /// harder windows may score lower here while being better overall; the policy's `maximumAccuracyDrop` is
    /// the slack for that. Audits (docs/CLOUD.md "Audit escalations") have no such bias: a random share of the
    /// windows each version answered alone, so they are preferred as soon as there are enough labelled ones.
    public func accuracyComparison(for rollout: Rollout) throws -> AccuracyComparison? {
        guard rollout.phase == .canary, let started = rollout.canaryStartedAt else { return nil }
        let since = started.timeIntervalSince1970
        for auditsOnly in [true, false] {
            let candidate = try edgeAccuracy(
                of: rollout.version, fleet: rollout.fleet, devices: rollout.cohort, receivedSince: since,
                auditsOnly: auditsOnly)
            let baseline = try edgeAccuracy(
                of: rollout.previousVersion, fleet: rollout.fleet, devices: nil, receivedSince: since,
                auditsOnly: auditsOnly)
            if let comparison = AccuracyComparison(
                candidate: candidate, baseline: baseline, minimumWindows: rollout.policy.minimumLabelledWindows,
                onAudits: auditsOnly)
            {
                return comparison
            }
        }
        return nil
    }
}

extension SampleStore: TrainingStore {}

extension SampleStore.TrainingExample {
    /// A stored escalation as a training example, labelled with its ground truth if known, else its verdict;
    /// nil if its payload does not decode or it has neither.
    init?(
        id: UUID, device: String, edgeModel: String, receivedAt: Double, payload: [UInt8], groundTruth: Int?,
        verdict: Int?
    ) {
        guard let decoded = try? EscalationPayload(decoding: payload), let label = groundTruth ?? verdict else {
            return nil
        }
        self.init(
            id: id, device: device, edgeModel: edgeModel, receivedAt: receivedAt, channels: decoded.channels,
            length: decoded.length, window: decoded.window, label: label,
            source: groundTruth != nil ? .groundTruth : .verdict)
    }
}
