import Foundation
import TandemCloud
import TandemTestSupport
import Testing

/// A worker's acknowledged verdicts and its next batch's rows, recorded by one store call: on SQLite in one
/// transaction, on PostgreSQL one after the other; the same outcome on both.
struct StoreBatchTests {
    static func escalation(_ id: UUID = UUID(), at time: Double) -> SampleStore.Escalation {
        SampleStore.Escalation(
            id: id, device: "d1", stream: "s", payload: [1, 2, 3], responseTopic: "tandem/v1/f/d1/verdicts",
            edgeLabel: 2, edgeConfidence: 0.4, edgeModel: "e1", receivedAt: time, fleet: "f")
    }

    static func verdictsWithTheNextRows(_ store: any EscalationStore) throws {
        let first = escalation(at: 100)
        #expect(try store.insert([first], answering: [], at: 100) == [true], "no verdicts: rows alone")
        let verdict = SampleStore.StoredVerdict(label: 1, probabilities: [0.25, 0.5, 0.25], model: "full-1")
        let second = escalation(at: 101)
        // The first escalation's verdict and the second's row together; a redelivered first is not new.
        #expect(try store.insert([second, first], answering: [(first.id, verdict)], at: 102) == [true, false])
        #expect(try store.verdict(for: first.id) == verdict && store.verdict(for: second.id) == nil)
        #expect(try store.counts() == (rows: 2, answered: 1))
        // A verdict for an id not stored is a no-op; the first verdict of an id stays; no rows at all is fine.
        let later = SampleStore.StoredVerdict(label: 0, probabilities: [1, 0, 0], model: "full-2")
        #expect(
            try store.insert([], answering: [(UUID(), later), (first.id, later), (second.id, verdict)], at: 103) == [])
        #expect(try store.verdict(for: first.id) == verdict && store.verdict(for: second.id) == verdict)
        #expect(try store.counts() == (rows: 2, answered: 2))
    }

    @Test("SQLite: acknowledged verdicts and the next batch's rows in one transaction")
    func sqlite() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        try Self.verdictsWithTheNextRows(SampleStore(path: scratch.url.appendingPathComponent("tandem.sqlite").path))
    }

    @Test(
        "PostgreSQL: the same outcome",
        .enabled(if: PostgresCluster.isAvailable, "PostgreSQL server binaries are not installed"))
    func postgres() async throws {
        try await PostgresCluster.with { cluster in
            try Self.verdictsWithTheNextRows(PostgresSampleStore(url: cluster.url))
        }
    }
}
