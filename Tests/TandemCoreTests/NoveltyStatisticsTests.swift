import Foundation
import Testing

@testable import TandemCore

/// Novelty statistics: the fit, the threshold's false-alarm rate, validation of what an artifact holds, and
/// the engine's features and scores.
struct NoveltyStatisticsTests {
    /// Two classes of 8 Gaussian features around distinct centroids.
    func features(count: Int, seed: UInt64) -> (features: [Float], labels: [Int]) {
        var g = SeededGenerator(seed: seed)
        var features = [Float](), labels = [Int]()
        for i in 0..<count {
            let c = i % 2
            labels.append(c)
            for k in 0..<8 { features.append((c == 0 ? 1 : -1) * Float(k % 3) + 0.5 * g.nextGaussian()) }
        }
        return (features, labels)
    }

    @Test("the threshold calls the asked share of the calibration windows novel, and far windows novel")
    func thresholdAtFalseAlarmRate() throws {
        let (train, labels) = features(count: 2000, seed: 1)
        let statistics = try #require(
            NoveltyStatistics.fit(
                features: train, featureCount: 8, labels: labels, predictions: labels, classes: 2,
                quantizationStep: 0.01, falseAlarmRate: 0.02))
        try statistics.validate(classes: 2, features: 8)
        #expect(statistics.means.count == 2 && statistics.std.allSatisfy { abs($0 - 0.5) < 0.05 })
        func share(_ data: [Float], _ labels: [Int]) -> Double {
            data.withUnsafeBufferPointer { f in
                Double(
                    labels.indices.filter { i in
                        statistics.score(
                            features: UnsafeBufferPointer(rebasing: f[(i * 8)..<(i * 8 + 8)]), predicted: labels[i])
                            > statistics.threshold
                    }.count) / Double(labels.count)
            }
        }
        #expect(abs(share(train, labels) - 0.02) < 0.002, "the calibration windows themselves")
        let (fresh, freshLabels) = features(count: 4000, seed: 2)
        #expect(abs(share(fresh, freshLabels) - 0.02) < 0.01, "new windows of the same classes")
        // A window of neither class: its features sit at 3 everywhere.
        let far = [Float](repeating: 3, count: 8)
        #expect(far.withUnsafeBufferPointer { statistics.score(features: $0, predicted: 0) } > statistics.threshold)
    }

    @Test("a feature that never moved gets a floored spread instead of zero")
    func flooredSpread() throws {
        let features: [Float] = (0..<100).flatMap { i -> [Float] in [Float(i % 7), 0] }
        let statistics = try #require(
            NoveltyStatistics.fit(
                features: features, featureCount: 2, labels: [Int](repeating: 0, count: 100),
                predictions: [Int](repeating: 0, count: 100), classes: 1, quantizationStep: 0.02,
                falseAlarmRate: 0.05))
        #expect(statistics.std[1] > 0 && statistics.std[1] >= 0.01)
        try statistics.validate(classes: 1, features: 2)
    }

    @Test("statistics that do not fit the model or hold unusable numbers are refused")
    func validation() throws {
        let good = NoveltyStatistics(
            means: [[0, 1], [1, 0]], std: [1, 1], threshold: 2, falseAlarmRate: 0.02, calibrationWindows: 10)
        try good.validate(classes: 2, features: 2)
        #expect(throws: QuantizationError.self) { try good.validate(classes: 3, features: 2) }
        #expect(throws: QuantizationError.self) { try good.validate(classes: 2, features: 3) }
        var bad = good
        bad.means[1][0] = .nan
        #expect(throws: QuantizationError.self) { try bad.validate(classes: 2, features: 2) }
        bad = good
        bad.std[0] = 0
        #expect(throws: QuantizationError.self) { try bad.validate(classes: 2, features: 2) }
        bad = good
        bad.threshold = .infinity
        #expect(throws: QuantizationError.self) { try bad.validate(classes: 2, features: 2) }
        bad = good
        bad.means[0] = [0]
        #expect(throws: QuantizationError.self) { try bad.validate(classes: 2, features: 2) }
    }

    @Test("a manifest without novelty statistics (an older artifact) decodes, and one with them round-trips")
    func manifestCompatibility() throws {
        var manifest = ModelManifest(
            name: "edge", version: "e1", createdAt: "2026-01-01T00:00:00Z", architecture: [],
            input: InputSpec(channels: 1, window: 4, hop: 2), classNames: ["a", "b"])
        let old = try JSONEncoder().encode(manifest)
        #expect(!String(decoding: old, as: UTF8.self).contains("novelty"), "an absent field is not written")
        #expect(try JSONDecoder().decode(ModelManifest.self, from: old).novelty == nil)
        manifest.novelty = NoveltyStatistics(
            means: [[0.5], [1.5]], std: [0.25], threshold: 4, falseAlarmRate: 0.02, calibrationWindows: 100)
        #expect(try JSONDecoder().decode(ModelManifest.self, from: try JSONEncoder().encode(manifest)) == manifest)
    }

    @Test("the engine's features are the final dense layer's input codes, dequantized, and its score uses them")
    func engineFeatures() throws {
        let model = try randomQuantizedModel(seed: 5)
        let engine = Int8Engine(model: model)
        let last = model.parameters.layers.count - 1
        #expect(engine.featureCount == model.shapes[last].reduce(1, *))
        var g = SeededGenerator(seed: 6)
        let window = (0..<(model.window * model.channels)).map { _ in g.nextGaussian() }
        let trace = try engine.trace(window)
        let codes = trace.activations[last]
        let q = model.inputQuantizations[last]
        var features = [Float](repeating: -1, count: engine.featureCount)
        features.withUnsafeMutableBufferPointer { engine.penultimateFeatures(into: $0) }
        for k in features.indices {
            #expect(
                abs(features[k] - q.scale * Float(Int32(codes[k]) - q.zeroPoint)) <= 1e-6 * max(1, abs(features[k])))
        }
        let statistics = NoveltyStatistics(
            means: (0..<model.classes).map { c in (0..<engine.featureCount).map { Float($0 + c) * q.scale } },
            std: [Float](repeating: 0.5, count: engine.featureCount), threshold: 1, falseAlarmRate: 0.02,
            calibrationWindows: 1)
        let expected = features.withUnsafeBufferPointer { statistics.score(features: $0, predicted: 2) }
        #expect(engine.noveltyScore(statistics, predicted: 2) == expected)
    }
}
