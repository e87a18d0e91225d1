import TandemCore
import Testing

@testable import TandemTraining

struct CascadeEvaluationTests {
    func confidence(_ label: Int, _ p: Float) -> PredictionConfidence {
        PredictionConfidence(label: label, maxProbability: p, margin: p, entropyConfidence: p)
    }

    @Test("escalating the unsure windows takes the full model's answer exactly for them")
    func escalatesBelowThreshold() {
        // Edge is wrong on the two least confident windows; the full model is right everywhere but window 3.
        let edge = [
            confidence(1, 0.3), confidence(1, 0.4), confidence(0, 0.9), confidence(0, 0.95), confidence(1, 0.99),
        ]
        let labels = [0, 0, 0, 0, 1]
        let full = [0, 0, 0, 1, 1]
        let report = CascadeReport(
            edge: edge, fullPredictions: full, labels: labels, measure: .maxProbability, thresholds: [0, 0.5, 1.0],
            budgets: [0.4], bytesPerWindow: 100)
        #expect(abs(report.edgeAccuracy - 0.6) < 1e-12)
        #expect(abs(report.fullAccuracy - 0.8) < 1e-12)
        #expect(report.cloudOnlyBytes == 500)
        let none = report.points.first { $0.threshold == 0 }!
        #expect(none.escalationRate == 0 && abs(none.cascadeAccuracy - 0.6) < 1e-12 && none.uplinkSaving == 1)
        let half = report.points.first { $0.threshold == 0.5 && $0.budget == nil }!
        #expect(abs(half.escalationRate - 0.4) < 1e-12)
        #expect(half.cascadeAccuracy == 1.0, "both edge mistakes fixed, the full model's mistake avoided")
        #expect(half.uplinkBytes == 200 && abs(half.uplinkSaving - 0.6) < 1e-12)
        let budget = report.points.first { $0.budget == 0.4 }!
        #expect(abs(budget.escalationRate - 0.4) < 1e-12)
        let all = report.points.first { $0.threshold == 1.0 }!
        #expect(all.escalationRate == 1 && abs(all.cascadeAccuracy - report.fullAccuracy) < 1e-12)
    }
}
