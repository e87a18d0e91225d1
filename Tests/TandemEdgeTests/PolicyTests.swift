import TandemCore
import Testing

@testable import TandemEdge

struct PolicyTests {
    @Test("confidence measures on known vectors")
    func measures() {
        let p: [Float] = [0.7, 0.2, 0.1]
        #expect(abs(ConfidenceMeasure.maxProbability.confidence(p) - 0.7) < 1e-6)
        #expect(abs(ConfidenceMeasure.margin.confidence(p) - 0.5) < 1e-6)
        #expect(abs(ConfidenceMeasure.entropy.confidence([1, 0, 0]) - 1) < 1e-9)
        #expect(abs(ConfidenceMeasure.entropy.confidence([0.25, 0.25, 0.25, 0.25])) < 1e-6)
    }

    @Test("a fixed threshold escalates exactly the windows below it")
    func threshold() throws {
        var policy = try EscalationPolicy(measure: .maxProbability, mode: .threshold(0.6))
        #expect(policy.decide(confidence: 0.59, now: 0).escalate)
        #expect(!policy.decide(confidence: 0.6, now: 0).escalate)
        #expect(policy.escalations == 1 && policy.decisions == 2)
    }

    @Test("the token bucket allows rate × time plus the burst, and no more")
    func tokenBucket() {
        var bucket = TokenBucket(ratePerSecond: 5, capacity: 5)
        var granted = 0
        for i in 0..<1000 where bucket.take(now: Double(i) * 0.01) { granted += 1 }  // 10 s, 100 tries/s
        #expect(granted >= 50 && granted <= 56, "\(granted)")
        var unlimited = TokenBucket(ratePerSecond: .infinity)
        #expect((0..<100).allSatisfy { _ in unlimited.take(now: 0) })
    }

    @Test("the rate cap holds escalations per second; capped windows still count as wanted")
    func cap() throws {
        var policy = try EscalationPolicy(
            measure: .maxProbability, mode: .threshold(0.9), maxEscalationsPerSecond: 2, burst: 2)
        for i in 0..<100 { _ = policy.decide(confidence: 0.1, now: Double(i) * 0.01) }  // 1 s
        #expect(policy.escalations >= 2 && policy.escalations <= 5)
        #expect(policy.capped == 100 - policy.escalations)
        #expect(policy.observedRate == 1)
    }

    /// A deterministic stream of confidences: uniform on [lo, hi].
    struct Stream {
        var generator = SeededGenerator(seed: 11)
        mutating func next(_ lo: Double, _ hi: Double) -> Double { Double.random(in: lo..<hi, using: &generator) }
    }

    @Test("a 10 % budget is held within ±2 % when the confidence distribution shifts")
    func budget() throws {
        var stream = Stream()
        let calibration = try CalibrationQuantiles(confidences: (0..<2000).map { _ in stream.next(0.3, 1.0) })
        #expect(abs(calibration.value(at: 0.1) - 0.37) < 0.02)
        var policy = try EscalationPolicy(
            measure: .maxProbability, mode: .budget(0.10, calibration: calibration), rateWindow: 5000)
        func phase(_ lo: Double, _ hi: Double, count: Int) -> Double {
            var wanted = 0
            for i in 0..<count where policy.decide(confidence: stream.next(lo, hi), now: Double(i)).wanted {
                wanted += 1
            }
            return Double(wanted) / Double(count)
        }
        #expect(abs(phase(0.3, 1.0, count: 5000) - 0.10) < 0.02, "calibrated distribution")
        // A better model: every confidence rises; a fixed threshold would escalate almost nothing.
        _ = phase(0.6, 1.0, count: 3000)  // settling
        #expect(abs(phase(0.6, 1.0, count: 10000) - 0.10) < 0.02)
        #expect(abs(policy.threshold - 0.64) < 0.03, "threshold near the new distribution's 10 % quantile")
        // Then a worse one.
        _ = phase(0.1, 0.7, count: 3000)
        #expect(abs(phase(0.1, 0.7, count: 10000) - 0.10) < 0.02)
    }

    @Test("bad parameters are refused with the parameter named")
    func badParameters() {
        #expect(throws: PolicyError.self) { try EscalationPolicy(measure: .margin, mode: .threshold(1.5)) }
        #expect(throws: PolicyError.self) { try CalibrationQuantiles(confidences: []) }
        #expect(throws: PolicyError.self) { try CalibrationQuantiles(levels: [0, 0.5], values: [0.5, 0.4]) }
    }
}

/// Novel and audit escalations: reasons besides low confidence, under the same rate cap, outside the budget.
struct EscalationReasonPolicyTests {
    @Test("a confident novel window is escalated as novel; an unsure one stays uncertain; off when disabled")
    func novel() throws {
        var policy = try EscalationPolicy(measure: .maxProbability, mode: .threshold(0.6), escalatesNovel: true)
        let confident = policy.decide(confidence: 0.95, novel: true, now: 0)
        #expect(confident.escalate && confident.reason == .novel)
        let unsure = policy.decide(confidence: 0.3, novel: true, now: 0)
        #expect(unsure.escalate && unsure.reason == .uncertain)
        let familiar = policy.decide(confidence: 0.95, novel: false, now: 0)
        #expect(!familiar.escalate && !familiar.wanted && familiar.reason == nil)
        var off = try EscalationPolicy(measure: .maxProbability, mode: .threshold(0.6))
        #expect(!off.decide(confidence: 0.95, novel: true, now: 0).escalate, "off by default")
    }

    @Test("novel windows do not move a budget's threshold and share the rate cap")
    func novelOutsideBudget() throws {
        let calibration = try CalibrationQuantiles(levels: [0, 0.1, 1], values: [0, 0.5, 1])
        var policy = try EscalationPolicy(
            measure: .maxProbability, mode: .budget(0.1, calibration: calibration), maxEscalationsPerSecond: 2,
            burst: 2, escalatesNovel: true)
        let start = policy.threshold
        var novel = 0
        for i in 0..<100 where policy.decide(confidence: 0.99, novel: true, now: Double(i) * 0.01).reason == .novel {
            novel += 1
        }
        #expect(novel == 100, "every window wanted as novel")
        #expect(policy.escalations >= 2 && policy.escalations <= 5, "the cap holds: \(policy.escalations)")
        #expect(policy.capped == 100 - policy.escalations)
        #expect(policy.threshold > start, "confident windows push the threshold up as before, novel or not")
        #expect(policy.observedRate == 0, "no window was below the threshold")
    }

    @Test("audits take the configured share of confident familiar windows, deterministically per seed")
    func audits() throws {
        func run(seed: UInt64) throws -> [Bool] {
            var policy = try EscalationPolicy(
                measure: .maxProbability, mode: .threshold(0.5), auditShare: 0.01, auditSeed: seed)
            return (0..<100_000).map { _ in policy.decide(confidence: 0.9, now: 0).reason == .audit }
        }
        let drawn = try run(seed: 7)
        let share = Double(drawn.filter { $0 }.count) / Double(drawn.count)
        #expect(abs(share - 0.01) < 0.0015, "\(share)")  // 0.0015 is about 5 standard errors
        #expect(try run(seed: 7) == drawn && (try run(seed: 8)) != drawn)
        var none = try EscalationPolicy(measure: .maxProbability, mode: .threshold(0.5))
        #expect((0..<10_000).allSatisfy { _ in none.decide(confidence: 0.9, now: 0).reason == nil })
        #expect(throws: PolicyError.self) {
            try EscalationPolicy(measure: .maxProbability, mode: .threshold(0.5), auditShare: 1.5)
        }
    }
}
