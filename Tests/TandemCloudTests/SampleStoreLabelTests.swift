import Foundation
import TandemCloud
import TandemEdge
import TandemProtocol
import TandemTestSupport
import Testing

/// Ground-truth labels and the training-example query, on a real SQLite file.
struct SampleStoreLabelTests {
    static func escalation(
        _ id: UUID, window: [Float], edgeModel: String = "edge-1", receivedAt: Double, device: String = "d1"
    ) throws -> SampleStore.Escalation {
        let payload = EscalationPayload(
            id: id, device: device, stream: "s", modelVersion: edgeModel, windowStart: 0, windowEnd: 1,
            sampleRateHz: 100, channels: 2, length: window.count / 2, window: window,
            topK: [.init(label: 0, probability: 0.4)], confidence: 0.4)
        return SampleStore.Escalation(
            id: id, device: device, stream: "s", payload: try payload.encoded(), responseTopic: "t", edgeLabel: 0,
            edgeConfidence: 0.4, edgeModel: edgeModel, receivedAt: receivedAt)
    }

    @Test("labels round trip: recorded before or after the escalation, replaced, kept across reopening")
    func labelsRoundTrip() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let path = scratch.url.appendingPathComponent("tandem.sqlite").path
        let early = UUID(), late = UUID(), verdictOnly = UUID(), unanswered = UUID(), corrupt = UUID()
        do {
            let store = try SampleStore(path: path)
            // A label that arrives before its escalation waits for it.
            try store.recordLabel(id: early, label: 3, at: 10)
            try store.insert(try Self.escalation(early, window: [0.5, -0.5, 1, -1], receivedAt: 20))
            try store.insert(try Self.escalation(late, window: [0.25, 0.25, 2, 2], receivedAt: 21))
            try store.insert(try Self.escalation(verdictOnly, window: [1, 1, 1, 1], receivedAt: 22))
            try store.insert(try Self.escalation(unanswered, window: [0, 0, 0, 0], receivedAt: 23))
            var broken = try Self.escalation(corrupt, window: [0, 0, 0, 0], receivedAt: 24)
            broken.payload[broken.payload.count - 1] ^= 0xFF
            try store.insert(broken)
            try store.answer(
                [
                    (late, .init(label: 1, probabilities: [0.2, 0.8], model: "full-1")),
                    (verdictOnly, .init(label: 4, probabilities: [0.1, 0.9], model: "full-1")),
                    (corrupt, .init(label: 0, probabilities: [0.9, 0.1], model: "full-1")),
                ], at: 30)
            try store.recordLabel(id: late, label: 2, at: 31)
            try store.recordLabel(id: late, label: 0, at: 32)
            #expect(
                try store.labelCount(recordedAfter: 10.5) == 2,
                "the replaced label counts once, the early one from when its escalation arrived (20)")
            #expect(try store.labelCount(recordedAfter: 25) == 1)
        }
        let reopened = try SampleStore(path: path)
        #expect(try reopened.label(for: early) == 3)
        #expect(try reopened.label(for: late) == 0, "the later label replaces the earlier one")
        #expect(try reopened.label(for: verdictOnly) == nil)
        let (examples, undecodable) = try reopened.trainingExamples()
        #expect(undecodable == 1, "the corrupted payload is counted and skipped")
        #expect(examples.map(\.id) == [early, late, verdictOnly], "oldest first, unanswered unlabeled left out")
        #expect(examples.map(\.label) == [3, 0, 4])
        #expect(examples.map(\.source) == [.groundTruth, .groundTruth, .verdict])
        #expect(examples[0].window == [0.5, -0.5, 1, -1] && examples[0].channels == 2 && examples[0].length == 2)
        #expect(try reopened.trainingExamples(receivedAfter: 21).examples.map(\.id) == [verdictOnly])
        #expect(try reopened.trainingExamples(limit: 1).examples.map(\.id) == [early])
        #expect(try reopened.hardExampleCount(receivedAfter: 21.5) == 3)
    }
}
