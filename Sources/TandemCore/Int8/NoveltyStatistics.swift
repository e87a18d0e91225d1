/// What a model's penultimate features look like on the data it was built from: one centroid per class, one
/// pooled spread per feature, and the distance beyond which a window is called novel.
///
/// The features are the input of the final dense layer (for the edge FCN, the global-average-pool output):
/// what the classifier separates classes with. A window of a kind the model never saw tends to land far from
/// every class's centroid even when the softmax is sure — the logits are a linear function of the features
/// and extrapolate confidently. The score of a window predicted as class `c` is the mean squared standardized
/// distance to that class's centroid,
///
///     score = (1 / D) Σₖ ((fₖ − μ_c,ₖ) / σₖ)²,
///
/// a Mahalanobis distance with a diagonal covariance shared by the classes (pooled within-class variance),
/// divided by the feature count so thresholds read the same for any width. `threshold` is the score that
/// a share `falseAlarmRate` of the calibration windows exceeds.
///
/// Recorded in the manifest by `tandem compress` (``ModelManifest/novelty``); absent from older artifacts and
/// from float32 models, which then have no novelty escalation.
public struct NoveltyStatistics: Codable, Sendable, Equatable {
    /// Class centroids of the features, `[classes][features]`, in the model's output order.
    public var means: [[Float]]
    /// Pooled within-class standard deviation of each feature (floored, see ``minimumStd(_:quantizationStep:)``).
    public var std: [Float]
    /// Scores above this are novel.
    public var threshold: Float
    /// The share of calibration windows whose score exceeds ``threshold``, the target false-alarm rate.
    public var falseAlarmRate: Double
    /// How many windows the statistics and the threshold come from.
    public var calibrationWindows: Int

    /// Creates statistics.
    public init(means: [[Float]], std: [Float], threshold: Float, falseAlarmRate: Double, calibrationWindows: Int) {
        self.means = means
        self.std = std
        self.threshold = threshold
        self.falseAlarmRate = falseAlarmRate
        self.calibrationWindows = calibrationWindows
    }

    /// The number of features.
    public var features: Int { std.count }

    /// Checks that the statistics fit a model of `classes` outputs whose final layer reads `features` values,
    /// and that every number is usable.
    ///
    /// An artifact is outside input until verified: a NaN centroid would make every window novel, a zero
    /// spread would divide by zero.
    ///
    /// - Throws: ``QuantizationError`` with code `invalidParameters` naming the field.
    public func validate(classes: Int, features: Int) throws(QuantizationError) {
        guard means.count == classes, std.count == features, means.allSatisfy({ $0.count == features }) else {
            throw QuantizationError(
                .invalidParameters,
                "novelty statistics have \(means.count) centroids of \(means.map(\.count).max() ?? 0) features and "
                    + "\(std.count) spreads; the model has \(classes) classes and \(features) features")
        }
        guard means.allSatisfy({ $0.allSatisfy(\.isFinite) }), std.allSatisfy({ $0.isFinite && $0 > 0 }) else {
            throw QuantizationError(
                .invalidParameters, "novelty statistics hold a non-finite centroid or a spread that is not positive")
        }
        guard threshold.isFinite, threshold > 0, falseAlarmRate.isFinite, (0...1).contains(falseAlarmRate),
            calibrationWindows >= 0
        else {
            throw QuantizationError(
                .invalidParameters,
                "novelty threshold \(threshold) must be finite and positive, the false-alarm rate \(falseAlarmRate) "
                    + "within 0…1")
        }
    }

    /// The score of one window's features predicted as `predicted` (see the type's description).
    ///
    /// - Precondition: `features.count == self.features` and `predicted` is a class index.
    public func score(features: UnsafeBufferPointer<Float>, predicted: Int) -> Float {
        let mean = means[predicted]
        var sum: Float = 0
        for k in 0..<std.count {
            let z = (features[k] - mean[k]) / std[k]
            sum += z * z
        }
        return sum / Float(max(std.count, 1))
    }

    /// The spread a feature is given at least: a tenth of the median spread, and never below half the
    /// quantization step of the codes the features are read from.
    ///
    /// A feature the ReLU keeps at zero on every training window has no spread at all; without a floor the first
    /// window that moves it by one code would be infinitely novel.
    public static func minimumStd(_ std: [Float], quantizationStep: Float) -> Float {
        let sorted = std.sorted()
        let median = sorted.isEmpty ? 0 : sorted[sorted.count / 2]
        return max(median / 10, quantizationStep / 2, 1e-6)
    }

    /// Computes the statistics from features and labels and sets the threshold at the `1 − falseAlarmRate`
    /// quantile of the scores of the same windows under their predicted classes.
    ///
    /// - Parameters:
    ///   - features: `count × featureCount` values, window-major.
    ///   - featureCount: Features per window.
    ///   - labels: The true class of each window (centroids and spreads are taken around them).
    ///   - predictions: The model's predicted class of each window (the scores are taken against them, as on a
    ///     device).
    ///   - classes: The model's class count; a class without windows gets the overall mean as its centroid.
    ///   - quantizationStep: The features' quantization step (the scale of the codes they are read from).
    ///   - falseAlarmRate: The share of these windows the threshold calls novel, in (0, 1).
    /// - Returns: nil when there are no windows.
    public static func fit(
        features: [Float], featureCount: Int, labels: [Int], predictions: [Int], classes: Int,
        quantizationStep: Float, falseAlarmRate: Double
    ) -> NoveltyStatistics? {
        let n = labels.count
        guard n > 0, featureCount > 0, classes > 0, features.count == n * featureCount, predictions.count == n
        else { return nil }
        var sums = [Double](repeating: 0, count: classes * featureCount)
        var overall = [Double](repeating: 0, count: featureCount)
        var counts = [Int](repeating: 0, count: classes)
        for i in 0..<n {
            let c = labels[i]
            guard (0..<classes).contains(c) else { continue }
            counts[c] += 1
            for k in 0..<featureCount {
                let f = Double(features[i * featureCount + k])
                sums[c * featureCount + k] += f
                overall[k] += f
            }
        }
        let total = counts.reduce(0, +)
        guard total > 0 else { return nil }
        let means: [[Float]] = (0..<classes).map { c in
            (0..<featureCount).map { k in
                Float(counts[c] > 0 ? sums[c * featureCount + k] / Double(counts[c]) : overall[k] / Double(total))
            }
        }
        var squares = [Double](repeating: 0, count: featureCount)
        for i in 0..<n where (0..<classes).contains(labels[i]) {
            let mean = means[labels[i]]
            for k in 0..<featureCount {
                let d = Double(features[i * featureCount + k] - mean[k])
                squares[k] += d * d
            }
        }
        var std = squares.map { Float(($0 / Double(max(total - 1, 1))).squareRoot()) }
        let floor = minimumStd(std, quantizationStep: quantizationStep)
        std = std.map { max($0, floor) }
        var statistics = NoveltyStatistics(
            means: means, std: std, threshold: 1, falseAlarmRate: falseAlarmRate, calibrationWindows: n)
        var scores = features.withUnsafeBufferPointer { f in
            (0..<n).map { i in
                statistics.score(
                    features: UnsafeBufferPointer(rebasing: f[(i * featureCount)..<((i + 1) * featureCount)]),
                    predicted: min(max(predictions[i], 0), classes - 1))
            }
        }
        scores.sort()
        let rate = min(max(falseAlarmRate, 0), 1)
        let index = min(n - 1, max(0, Int((Double(n) * (1 - rate)).rounded(.down))))
        statistics.threshold = max(scores[index], Float.leastNormalMagnitude)
        return statistics
    }
}
