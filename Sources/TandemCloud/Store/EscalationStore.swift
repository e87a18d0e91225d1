import Foundation

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
    /// The stored verdict of `id`, if it was answered.
    func verdict(for id: UUID) throws -> SampleStore.StoredVerdict?
    /// Claims up to `limit` unanswered escalations received (or last claimed) more than `staleSeconds` ago.
    func claimStale(worker: String, staleSeconds: Double, now: Double, limit: Int) throws -> [SampleStore.Escalation]
    /// Stored rows and answered rows.
    func counts() throws -> (rows: Int, answered: Int)
    /// Every stored escalation id.
    func ids() throws -> [UUID]
    /// Records ground-truth labels (class indices) in one transaction; a later label for an id replaces an
    /// earlier one, and the escalation need not be stored yet.
    func recordLabels(_ labels: [(id: UUID, label: Int)], at time: Double) throws
    /// Ground-truth labels stored.
    func labelCount() throws -> Int
}

extension EscalationStore {
    /// Stores one escalation unless one with its id is stored already; returns whether this call stored it.
    @discardableResult
    public func insert(_ escalation: SampleStore.Escalation) throws -> Bool {
        try insert([escalation])[0]
    }
}

extension SampleStore: EscalationStore {}

/// Opens the store `url` names: a `postgres://` or `postgresql://` URL opens ``PostgresSampleStore``;
/// anything else is a SQLite file path for ``SampleStore``. Either is a ``TrainingStore`` too.
public func openEscalationStore(_ url: String) throws -> any EscalationStore & TrainingStore {
    if url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") {
        return try PostgresSampleStore(url: url)
    }
    return try SampleStore(path: url)
}
