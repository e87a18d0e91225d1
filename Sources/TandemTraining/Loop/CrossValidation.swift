import Foundation
import TandemCore

/// The outcome of stratified k-fold cross-validation.
public struct CrossValidationReport: Codable, Sendable {
    /// Held-out accuracy of each fold's model.
    public var foldAccuracies: [Double]
    /// Held-out macro-F1 of each fold's model.
    public var foldMacroF1: [Double]
    /// Mean fold accuracy.
    public var meanAccuracy: Double { foldAccuracies.reduce(0, +) / Double(max(foldAccuracies.count, 1)) }
    /// Sample standard deviation of the fold accuracies.
    public var accuracyStandardDeviation: Double {
        let n = Double(foldAccuracies.count)
        guard n > 1 else { return 0 }
        let mean = meanAccuracy
        return (foldAccuracies.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / (n - 1)).squareRoot()
    }
}

extension Trainer {
    /// Assigns every window to one of `k` folds, each class spread evenly over the folds.
    public static func stratifiedFolds(labels: [Int], k: Int, seed: UInt64) -> [[Int]] {
        var generator = SeededGenerator(seed: seed ^ 0xF01D)
        var folds = [[Int]](repeating: [], count: k)
        var byClass = [Int: [Int]]()
        for (i, label) in labels.enumerated() { byClass[label, default: []].append(i) }
        var next = 0
        for label in byClass.keys.sorted() {
            var members = byClass[label]!
            generator.shuffle(&members)
            for i in members {
                folds[next % k].append(i)
                next += 1
            }
        }
        return folds.map { $0.sorted() }
    }

    /// Trains one fresh network per fold on the other folds and scores it on the held-out fold.
    ///
    /// - Parameters:
    ///   - layers: the architecture; each fold builds a new network seeded from the configuration's seed.
    ///   - progress: called with the fold number (1-based) and each epoch's report.
    public func crossValidate(
        layers: [LayerSpec], on data: LabeledWindows, folds k: Int, progress: (Int, EpochReport) -> Void = { _, _ in }
    ) throws -> CrossValidationReport {
        guard k >= 2, k <= data.count else {
            throw ModelSpecError(key: "folds", message: "need 2 ≤ k ≤ \(data.count) windows, got \(k)")
        }
        let folds = Self.stratifiedFolds(labels: data.labels, k: k, seed: configuration.seed)
        var report = CrossValidationReport(foldAccuracies: [], foldMacroF1: [])
        for (f, heldOut) in folds.enumerated() {
            let training = folds.enumerated().filter { $0.offset != f }.flatMap(\.element).sorted()
            let network = try Network(
                layers: layers, window: data.length, channels: data.channels, classes: data.classNames.count,
                seed: configuration.seed &+ UInt64(f))
            _ = try train(network, on: data.subset(training)) { progress(f + 1, $0) }
            let scored = Self.evaluate(network, on: data.subset(heldOut)).report
            report.foldAccuracies.append(scored.accuracy)
            report.foldMacroF1.append(scored.macroF1)
        }
        return report
    }
}
