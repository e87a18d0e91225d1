import Foundation
import TandemProtocol
import Testing

@testable import TandemEdge

struct VerdictTrackerTests {
    let classes = ["ok", "bearing", "misalign"]

    func record(_ label: Int, reason: EscalationReason = .uncertain) -> PredictionRecord {
        PredictionRecord(
            stream: "s", windowStart: 0, windowEnd: 1, label: classes[label], labelIndex: label, probability: 0.4,
            confidence: 0.4, provisional: true, escalated: true, reason: reason, modelVersion: "edge-1",
            latencyMilliseconds: 1)
    }

    func verdict(_ id: UUID, _ label: Int) -> Verdict {
        var p: [Float] = [0.1, 0.1, 0.1]
        p[label] = 0.8
        return Verdict(escalationId: id, label: label, probabilities: p, modelVersion: "full-3")
    }

    @Test("a verdict in time makes the cloud's answer final")
    func inTime() {
        var tracker = VerdictTracker(deadlineSeconds: 0.5)
        let id = UUID()
        #expect(tracker.escalated(record(0), id: id, now: 10).isEmpty)
        #expect(tracker.expire(now: 10.4).isEmpty)
        let final = tracker.received(verdict(id, 1), classNames: classes, now: 10.45)
        #expect(final?.origin == .cloud && final?.provisional == false && final?.label == "bearing")
        #expect(final?.kind == .prediction && final?.modelVersion == "full-3")
        #expect(tracker.expire(now: 11).isEmpty, "nothing left to release")
        #expect(
            tracker.received(verdict(id, 1), classNames: classes, now: 10.5) == nil, "a duplicate verdict is ignored")
        #expect(tracker.ignoredVerdicts == 1)
    }

    @Test("no verdict by the deadline: the edge record goes out provisional; a later different verdict corrects it")
    func lateCorrection() {
        var tracker = VerdictTracker(deadlineSeconds: 0.5, correctionWindowSeconds: 5)
        let a = UUID(), b = UUID(), c = UUID()
        _ = tracker.escalated(record(0, reason: .audit), id: a, now: 0)
        _ = tracker.escalated(record(2), id: b, now: 0.1)
        _ = tracker.escalated(record(1), id: c, now: 0.2)
        let released = tracker.expire(now: 0.65)
        #expect(released.count == 2 && released.allSatisfy { $0.provisional && $0.origin == .edge })
        #expect(tracker.pendingCount == 1)
        let correction = tracker.received(verdict(a, 1), classNames: classes, now: 1)
        #expect(correction?.kind == .correction && correction?.label == "bearing" && correction?.origin == .cloud)
        #expect(correction?.reason == .audit, "a correction names why the window was escalated, as its record did")
        #expect(tracker.received(verdict(b, 2), classNames: classes, now: 1) == nil, "same class: nothing to correct")
        #expect(tracker.expire(now: 0.7).count == 1)
        #expect(tracker.received(verdict(c, 0), classNames: classes, now: 100) == nil, "too late to correct")
        _ = tracker.expire(now: 100)
        #expect(tracker.corrections == 1 && tracker.expired == 3)
    }

    @Test("a full tracker releases its oldest window provisional at once")
    func bounded() {
        var tracker = VerdictTracker(deadlineSeconds: 10, maximumPending: 2)
        _ = tracker.escalated(record(0), id: UUID(), now: 0)
        _ = tracker.escalated(record(1), id: UUID(), now: 0)
        let released = tracker.escalated(record(2), id: UUID(), now: 0)
        #expect(released.map(\.labelIndex) == [0])
        #expect(tracker.pendingCount == 2)
    }

    @Test("beyond its bound the tracker forgets the oldest provisional records; the newest can still be corrected")
    func provisionalBounded() {
        var tracker = VerdictTracker(deadlineSeconds: 0.5, correctionWindowSeconds: 60, maximumProvisional: 3)
        let ids = (0..<5).map { _ in UUID() }
        for (i, id) in ids.enumerated() { _ = tracker.escalated(record(0), id: id, now: Double(i) * 0.01) }
        #expect(tracker.expire(now: 1).count == 5)
        #expect(tracker.forgottenProvisional == 2)
        #expect(tracker.received(verdict(ids[0], 1), classNames: classes, now: 2) == nil, "forgotten")
        #expect(tracker.received(verdict(ids[1], 1), classNames: classes, now: 2) == nil, "forgotten")
        #expect(tracker.received(verdict(ids[2], 1), classNames: classes, now: 2)?.kind == .correction)
        #expect(tracker.received(verdict(ids[4], 1), classNames: classes, now: 2)?.kind == .correction)
        #expect(tracker.corrections == 2 && tracker.ignoredVerdicts == 2)
    }
}
