import Foundation
import TandemCloud
import TandemProtocol
import TandemTestSupport
import Testing

/// Time-range labels (`{device, stream, start, end, class}`): the message's checks, and both stores applying one to
/// exactly the escalations of that device and stream whose window starts in the range.
struct RangeLabelTests {
    /// Escalations around the range 100…200 of press-12's `vib` stream in fleet `plant`, and the ones a time-range
    /// label must leave alone.
    struct Rows {
        let inside: [UUID]
        let legacyInside: UUID
        let otherFleet: UUID
        let outside: [UUID]
        let all: [SampleStore.Escalation]

        init() {
            func row(
                _ device: String = "press-12", stream: String = "vib", window: Double?, received: Double = 1000,
                fleet: String? = "plant"
            ) -> SampleStore.Escalation {
                SampleStore.Escalation(
                    id: UUID(), device: device, stream: stream, payload: [1, 2, 3],
                    responseTopic: "tandem/v1/\(fleet ?? "plant")/\(device)/verdicts", edgeLabel: 0,
                    edgeConfidence: 0.4,
                    edgeModel: "e1", receivedAt: received, fleet: fleet, windowStart: window)
            }
            // The bounds are inclusive.
            let inside = [row(window: 100), row(window: 150.25), row(window: 200)]
            // Stored before window times were kept: matched by arrival time.
            let legacyInside = row(window: nil, received: 160)
            let otherFleet = row(window: 150, fleet: "yard")
            let outside = [
                row(window: 99.999), row(window: 200.001), row(stream: "temp", window: 150),
                row("press-13", window: 150),
                row(window: nil, received: 300), row(window: 1000, received: 150),
            ]
            self.inside = inside.map(\.id)
            self.legacyInside = legacyInside.id
            self.otherFleet = otherFleet.id
            self.outside = outside.map(\.id)
            all = inside + [legacyInside, otherFleet] + outside
        }
    }

    /// Stores ``Rows``, labels one escalation inside as c0 first, then applies ranges and checks every row's label.
    static func check(_ store: any EscalationStore, label: (UUID) throws -> Int?) throws {
        let rows = Rows()
        #expect(try store.insert(rows.all).allSatisfy { $0 })
        _ = try store.recordLabels([(rows.inside[1], 0)], from: .operator, at: 10)

        let plant = try TimeRangeLabel(
            fleet: "plant", device: "press-12", stream: "vib", start: 100, end: 200, label: "c2")
        #expect(try store.labelRange(plant, label: 2, at: 20) == 4)
        for id in rows.inside + [rows.legacyInside] { #expect(try label(id) == 2, "inside the range") }
        for id in rows.outside + [rows.otherFleet] { #expect(try label(id) == nil, "outside the range") }

        // Without a fleet, the device id in every fleet; a later range replaces the earlier label.
        let anyFleet = try TimeRangeLabel(device: "press-12", stream: "vib", start: 100, end: 200, label: "c1")
        #expect(try store.labelRange(anyFleet, label: 1, at: 30) == 5)
        for id in rows.inside + [rows.legacyInside, rows.otherFleet] { #expect(try label(id) == 1) }
        for id in rows.outside { #expect(try label(id) == nil) }
        #expect(try store.labelCount() == 5)

        let empty = try TimeRangeLabel(device: "press-12", stream: "vib", start: 5000, end: 6000, label: "c1")
        #expect(try store.labelRange(empty, label: 1, at: 40) == 0)
    }

    @Test("SQLite: a range labels exactly the escalations of its device and stream whose window starts in it")
    func sqlite() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let store = try SampleStore(path: scratch.url.appendingPathComponent("tandem.sqlite").path)
        try Self.check(store, label: store.label(for:))
    }

    @Test(
        "PostgreSQL: a range labels exactly the escalations of its device and stream whose window starts in it",
        .enabled(if: PostgresCluster.isAvailable, "PostgreSQL server binaries are not installed"))
    func postgres() async throws {
        try await PostgresCluster.with { cluster in
            let store = try PostgresSampleStore(url: cluster.url)
            try Self.check(store, label: store.label(for:))
        }
    }

    @Test(
        "bad time-range labels are refused naming the field",
        arguments: [
            ("{\"stream\":\"vib\",\"start\":1,\"end\":2,\"class\":\"c1\",\"device\":7}", "device"),
            ("{\"device\":\"press/12\",\"stream\":\"vib\",\"start\":1,\"end\":2,\"class\":\"c1\"}", "device"),
            ("{\"device\":\"models\",\"stream\":\"vib\",\"start\":1,\"end\":2,\"class\":\"c1\"}", "reserved"),
            ("{\"device\":\"p\",\"fleet\":\"a b\",\"stream\":\"vib\",\"start\":1,\"end\":2,\"class\":\"c1\"}", "fleet"),
            ("{\"device\":\"p\",\"start\":1,\"end\":2,\"class\":\"c1\"}", "stream"),
            ("{\"device\":\"p\",\"stream\":\"\",\"start\":1,\"end\":2,\"class\":\"c1\"}", "stream"),
            ("{\"device\":\"p\",\"stream\":\"vib\",\"end\":2,\"class\":\"c1\"}", "start"),
            ("{\"device\":\"p\",\"stream\":\"vib\",\"start\":\"1\",\"end\":2,\"class\":\"c1\"}", "start"),
            ("{\"device\":\"p\",\"stream\":\"vib\",\"start\":3,\"end\":2,\"class\":\"c1\"}", "before start"),
            ("{\"device\":\"p\",\"stream\":\"vib\",\"start\":0,\"end\":1e12,\"class\":\"c1\"}", "end"),
            ("{\"device\":\"p\",\"stream\":\"vib\",\"start\":0,\"end\":2678401,\"class\":\"c1\"}", "31 days"),
            ("{\"device\":\"p\",\"stream\":\"vib\",\"start\":1,\"end\":2}", "class"),
            ("{\"device\":\"p\",\"stream\":\"vib\",\"start\":1,\"end\":2,\"class\":\"\"}", "class"),
            ("[1]", "JSON object"),
        ])
    func refused(text: String, field: String) {
        do {
            let label = try TimeRangeLabel(decoding: Array(text.utf8))
            Issue.record("accepted \(label)")
        } catch {
            #expect(error.message.contains(field), "\(text) → \(error.message)")
            #expect([.badRange, .badLabel, .malformed].contains(error.code))
        }
    }

    @Test("the message round-trips; `label` is read as a synonym of `class`; a 31-day range is accepted")
    func roundTrip() throws {
        let label = try TimeRangeLabel(
            fleet: "plant", device: "press-12", stream: "vib", start: 0, end: TimeRangeLabel.maximumRangeSeconds,
            label: "bearing-fault")
        #expect(try TimeRangeLabel(decoding: label.encoded()) == label)
        #expect(TimeRangeLabel.isRangeForm(label.encoded()))
        #expect(!TimeRangeLabel.isRangeForm(Array("{\"escalationId\":\"x\",\"label\":\"c1\"}".utf8)))
        let synonym = try TimeRangeLabel(
            decoding: Array("{\"device\":\"p\",\"stream\":\"s\",\"start\":1,\"end\":1,\"label\":\"c1\"}".utf8))
        #expect(synonym.label == "c1" && synonym.start == 1 && synonym.end == 1 && synonym.fleet == nil)
    }
}
