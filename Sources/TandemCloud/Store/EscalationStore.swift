import Foundation
import TandemProtocol

/// What the escalation workers need of a sample store: one row per escalation id, whoever receives it,
/// the first verdict for an id, a way to take over what a dead worker left unanswered, and ground truth.
///
/// ``SampleStore`` (SQLite, one host) and ``PostgresSampleStore`` (PostgreSQL, workers on several hosts)
/// implement it. Calls are synchronous: workers call them from the MQTT network thread, so an escalation
/// is stored before its PUBACK goes out.
public protocol EscalationStore: Sendable {
    /// Stores each escalation unless one with its id is stored already; returns which were new.
    func insert(_ escalations: [SampleStore.Escalation]) throws -> [Bool]
    /// Records verdicts; the first one for an id wins.
    func answer(_ verdicts: [(id: UUID, verdict: SampleStore.StoredVerdict)], at time: Double) throws
    /// Stores `escalations`, then records `verdicts` (at `time`), in one transaction where the store can: a worker's
    /// next batch's rows and its acknowledged verdicts land on the same table and index pages, written once.
    /// Returns which escalations were new. Both halves are idempotent, so after an error the caller may repeat
    /// either, whichever of them was recorded.
    func insert(
        _ escalations: [SampleStore.Escalation], answering verdicts: [(id: UUID, verdict: SampleStore.StoredVerdict)],
        at time: Double
    ) throws -> [Bool]
    /// The stored verdict of `id`, if it was answered.
    func verdict(for id: UUID) throws -> SampleStore.StoredVerdict?
    /// Claims up to `limit` unanswered escalations, not terminal, received (or last claimed) more than
    /// `staleSeconds` ago; one claimed `maximumClaims` times already is made terminal (`gaveUp`) instead.
    func claimStale(worker: String, staleSeconds: Double, now: Double, limit: Int, maximumClaims: Int) throws
        -> SampleStore.Claim
    /// Makes unanswered escalations terminal (never claimed again); returns the ids this call changed.
    func markTerminal(_ ids: [UUID], reason: SampleStore.TerminalReason, at time: Double) throws -> [UUID]
    /// Terminal escalations by reason.
    func terminalCounts() throws -> [SampleStore.TerminalReason: Int]
    /// Stored rows and answered rows.
    func counts() throws -> (rows: Int, answered: Int)
    /// Every stored escalation id.
    func ids() throws -> [UUID]
    /// Records ground-truth labels (class indices) from `origin` in one transaction; returns what became of each.
    ///
    /// An operator's label is always stored and replaces an earlier one for the id; the escalation need not be
    /// stored yet. A device's label is refused for an escalation of another fleet or device and never replaces
    /// an operator's or another device's label; for an id not stored yet it is kept, pending, and counts only
    /// once an escalation of that id arrives from the same fleet and device.
    func recordLabels(_ labels: [(id: UUID, label: Int)], from origin: SampleStore.LabelOrigin, at time: Double) throws
        -> [SampleStore.LabelOutcome]
    /// Ground-truth labels stored, pending ones included.
    func labelCount() throws -> Int
    /// Records an operator's ground truth `label` (a class index) for every stored escalation of `range`'s device
    /// and stream (and fleet, if it names one) whose window starts within `range.start…range.end` — rows stored
    /// before window times were kept count by their arrival time — replacing earlier labels of those escalations.
    ///
    /// - Returns: How many escalations it labelled.
    func labelRange(_ range: TimeRangeLabel, label: Int, at time: Double) throws -> Int
    /// The most recent answered escalations without a label, newest first, at most `limit` (the label queue's
    /// candidates).
    func unlabelled(limit: Int) throws -> [SampleStore.UnlabelledEscalation]
    /// What the audit escalations received at or after `start` and before `end` say about each edge model
    /// version's accuracy, by version and device.
    func auditEstimatesByDevice(receivedFrom start: Double, before end: Double) throws
        -> AuditEstimate.ByVersionAndDevice
}

extension EscalationStore {
    /// Stores the escalations, then records the verdicts: two transactions.
    public func insert(
        _ escalations: [SampleStore.Escalation], answering verdicts: [(id: UUID, verdict: SampleStore.StoredVerdict)],
        at time: Double
    ) throws -> [Bool] {
        let fresh = try insert(escalations)
        if !verdicts.isEmpty { try answer(verdicts, at: time) }
        return fresh
    }

    /// A store that keeps no audit statistics has none.
    public func auditEstimatesByDevice(receivedFrom start: Double, before end: Double) throws
        -> AuditEstimate.ByVersionAndDevice
    { [:] }

    /// What the audit escalations received at or after `start` and before `end` say about each edge model
    /// version's accuracy, its devices pooled (``AuditEstimate/pooled(_:)``: in the ratios no device weighs more
    /// than the median device).
    public func auditEstimates(receivedFrom start: Double, before end: Double) throws -> [String: AuditEstimate] {
        try auditEstimatesByDevice(receivedFrom: start, before: end).mapValues { AuditEstimate.pooled($0.values) }
    }

    /// What the audit escalations received at or after `time` say about each edge model version's accuracy.
    public func auditEstimates(receivedSince time: Double) throws -> [String: AuditEstimate] {
        try auditEstimates(receivedFrom: time, before: .greatestFiniteMagnitude)
    }

    /// Stores one escalation unless one with its id is stored already; returns whether this call stored it.
    @discardableResult
    public func insert(_ escalation: SampleStore.Escalation) throws -> Bool {
        try insert([escalation])[0]
    }

    /// Claims up to `limit` unanswered escalations received (or last claimed) more than `staleSeconds` ago, however
    /// often they were claimed before.
    public func claimStale(worker: String, staleSeconds: Double, now: Double, limit: Int) throws
        -> [SampleStore.Escalation]
    {
        try claimStale(worker: worker, staleSeconds: staleSeconds, now: now, limit: limit, maximumClaims: .max)
            .escalations
    }

    /// Records operators' ground-truth labels in one transaction (``recordLabels(_:from:at:)`` with `.operator`).
    public func recordLabels(_ labels: [(id: UUID, label: Int)], at time: Double = Date().timeIntervalSince1970)
        throws
    {
        _ = try recordLabels(labels, from: .operator, at: time)
    }

    /// Records an operator's ground truth for an escalation id (before or after the escalation itself arrives; a
    /// later label replaces an earlier one).
    public func recordLabel(id: UUID, label: Int, at time: Double = Date().timeIntervalSince1970) throws {
        try recordLabels([(id, label)], at: time)
    }
}

/// The SQL condition under which label `l` labels escalation `e`: an operator's labels anything, a device's only
/// that device's own escalations (same fleet and device).
let labelMatchesEscalation = "(l.device IS NULL OR (l.fleet = e.fleet AND l.device = e.device))"

extension SampleStore: EscalationStore {}

/// Opens the store `url` names: a `postgres://` or `postgresql://` URL opens ``PostgresSampleStore``;
/// anything else is a SQLite file path for ``SampleStore``. Either is a ``TrainingStore`` too.
public func openEscalationStore(_ url: String) throws -> any EscalationStore & TrainingStore {
    if url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") {
        return try PostgresSampleStore(url: url)
    }
    return try SampleStore(path: url)
}
