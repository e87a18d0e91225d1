import Foundation
import TandemCore
import Testing

@testable import TandemTraining

/// Novelty escalation on a real, small run: the reference edge spec trained on simulated machine data with one
/// condition left out, quantized to int8, its novelty statistics fitted on the training windows; then the
/// left-out condition's windows are scored against the known conditions' (issue 16's Must show).
struct NoveltyEscalationTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    @Test(
        "a condition left out of training: novelty catches ≥ 80 % of its windows at ≤ 5 % extra escalation of the others",
        .disabled(
            "not met yet: penultimate-feature distances catch far fewer than 80 % of a left-out condition's windows "
                + "on simulator data; the statistic needs replacing before this can pass"),
        arguments: [MachineCondition.looseness])
    func heldOutCondition(_ left: MachineCondition) throws {
        let spec = try ModelSpecFile.load(contentsOf: Self.root.appendingPathComponent("cloud-config/models/edge.yaml"))
        let unseen: Set<String> = [left.className]
        var train = SensorSimulator.windows(count: 600, window: 128, seed: 41).excluding(classes: unseen)
        let test = SensorSimulator.windows(count: 500, window: 128, seed: 42)
        let standardization = Standardization.fit(train.windows)
        standardization.apply(to: &train.windows)
        var known = test.excluding(classes: unseen)
        var novel = test.subset(test.labels.indices.filter { unseen.contains(test.classNames[test.labels[$0]]) })
        standardization.apply(to: &known.windows)
        standardization.apply(to: &novel.windows)

        var config = try #require(spec.training)
        config.epochs = 12
        config.minimumSteps = 0
        config.patience = 0
        let network = try Network(layers: spec.layers, window: 128, channels: train.channels, classes: 4, seed: 3)
        _ = try Trainer(configuration: config).train(network, on: train)
        let float = try network.exportFloatModel()
        let quantized = try PostTrainingQuantizer().quantize(float, calibration: train.windows.slice(0..<256))
        let engine = Int8Engine(model: quantized)
        let statistics = try #require(
            try CompressionPipeline.noveltyStatistics(engine: engine, windows: train, classes: 4, falseAlarmRate: 0.02))
        try statistics.validate(classes: 4, features: engine.featureCount)

        func scored(_ set: LabeledWindows) throws -> [(score: Float, confidence: Float)] {
            let scores = try CompressionPipeline.noveltyScores(
                engine: engine, statistics: statistics, windows: set.windows)
            let confidences = try engine.classify(windows: set.windows).confidences.map(\.maxProbability)
            return Array(zip(scores, confidences))
        }
        let report = NoveltyReport(
            threshold: statistics.threshold, known: try scored(known), unseen: try scored(novel),
            unseenClasses: [left.className], budgets: [0.1])
        let accuracy = try engine.classify(windows: known.windows).confidences.map(\.label)
        let correct = zip(accuracy, known.labels).filter { $0 == $1 }.count
        #expect(Double(correct) / Double(known.count) > 0.85, "the edge model knows the other conditions")
        #expect(report.unseenWindows == 100 && report.knownWindows == 400)
        #expect(report.catchRate >= 0.8, "caught \(report.catchRate) of \(left.className)")
        #expect(report.knownNoveltyRate <= 0.05, "known windows called novel: \(report.knownNoveltyRate)")
        #expect(report.points[0].extraEscalation <= report.knownNoveltyRate)
    }
}
