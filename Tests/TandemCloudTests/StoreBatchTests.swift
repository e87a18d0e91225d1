import Foundation
import TandemCloud
import TandemTestSupport
import Testing

/// A worker's next batch's rows and its acknowledged verdicts, recorded by one store call: on SQLite in one
/// transaction, on PostgreSQL one after the other (`PostgresStoreTests` runs the same checks there).
struct StoreBatchTests {
    static func escalation(_ id: UUID = UUID(), at time: Double) -> SampleStore.Escalation {
        SampleStore.Escalation(
            id: id, device: "d1", stream: "s", payload: [1, 2, 3], responseTopic: "tandem/v1/f/d1/verdicts",
            edgeLabel: 2, edgeConfidence: 0.4, edgeModel: "e1", receivedAt: time, fleet: "f")
    }

    /// The checks, on a store that may hold other rows already.
    static func rowsWithVerdicts(_ store: any EscalationStore) throws {
        let (rows, answered) = try store.counts()
        let first = escalation(at: 100)
        #expect(try store.insert([first], answering: [], at: 100) == [true], "no verdicts: rows alone")
        let verdict = SampleStore.StoredVerdict(label: 1, probabilities: [0.25, 0.5, 0.25], model: "full-1")
        let second = escalation(at: 101)
        // The second's row and the first's verdict together; a redelivered first is not new.
        #expect(try store.insert([second, first], answering: [(first.id, verdict)], at: 102) == [true, false])
        #expect(try store.verdict(for: first.id) == verdict && store.verdict(for: second.id) == nil)
        #expect(try store.counts() == (rows: rows + 2, answered: answered + 1))
        // A verdict for an id not stored is a no-op; the first verdict of an id stays; no rows at all is fine; a
        // row and its own verdict in one call (the row goes first).
        let later = SampleStore.StoredVerdict(label: 0, probabilities: [1, 0, 0], model: "full-2")
        #expect(
            try store.insert([], answering: [(UUID(), later), (first.id, later), (second.id, verdict)], at: 103) == [])
        #expect(try store.verdict(for: first.id) == verdict && store.verdict(for: second.id) == verdict)
        let third = escalation(at: 104)
        #expect(try store.insert([third], answering: [(third.id, later)], at: 105) == [true])
        #expect(try store.verdict(for: third.id) == later)
        #expect(try store.counts() == (rows: rows + 3, answered: answered + 3))
    }

    @Test("SQLite: a batch's rows and the acknowledged verdicts in one transaction")
    func sqlite() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        try Self.rowsWithVerdicts(SampleStore(path: scratch.url.appendingPathComponent("tandem.sqlite").path))
    }
}
