#if canImport(Glibc)
    import Glibc
#endif

/// What the windows a model was built from look like, and the distance beyond which a window is called novel.
///
/// A window is described by eleven numbers per channel, taken from the standardized window the model reads:
/// mean, log standard deviation, skewness, log kurtosis, log crest factor (peak over standard deviation), the log
/// mean squared first and second differences relative to the variance, and the log share of the energy in each of
/// three octave bands and below them (an orthonormal Haar transform, three levels: ½–¼, ¼–⅛, ⅛–¹⁄₁₆ of the sample
/// rate, and the rest). Together they see the shape of the waveform — one-sided truncation, impacts, new
/// harmonics, energy moving between bands — independently of what the classifier learned to look at. (The
/// classifier's own penultimate features were tried first: they place an unseen condition on top of a known one
/// and caught almost none of it, since training makes them ignore everything that does not separate the classes
/// they know.)
///
/// The score of a window predicted as class `c` is its squared Mahalanobis distance to that class's mean,
/// under one covariance shared by the classes (pooled within-class, shrunk towards its mean variance by 5 %),
/// divided by the number of features:
///
///     score = ‖L⁻¹ (x − μ_c)‖² / D,     Σ = L Lᵀ.
///
/// The statistics are fitted on three quarters of the training windows and `threshold` is set on the other
/// quarter, taken in blocks of consecutive windows — windows the fit did not see, nor their overlapping
/// neighbours, so the rate holds on new data (set on the fitted windows, or on windows interleaved with them,
/// the same rate put the threshold too low and multiplied the false alarms on test data).
///
/// Recorded in the manifest by `tandem compress` (``ModelManifest/novelty``); absent from older artifacts and
/// from float32 models, which then have no novelty escalation. Scored on a device by ``NoveltyScorer``.
public struct NoveltyStatistics: Codable, Sendable, Equatable {
    /// The name of the statistics this build computes; an artifact naming others is refused.
    public static let currentKind = "waveform-v1"
    /// Numbers per channel.
    public static let perChannel = 11
    /// Shrinkage of the pooled covariance towards its mean variance.
    public static let shrinkage = 0.05

    /// Which statistics (``currentKind``).
    public var kind: String
    /// Class means of the window statistics, `[classes][features]`, in the model's output order.
    public var means: [[Float]]
    /// The lower-triangular Cholesky factor `L` of the shared covariance, `features × features` row-major (the
    /// upper triangle is ignored).
    public var factor: [Float]
    /// Scores above this are novel.
    public var threshold: Float
    /// The share of calibration windows whose score exceeds ``threshold``, the target false-alarm rate.
    public var falseAlarmRate: Double
    /// How many windows the statistics and the threshold come from.
    public var calibrationWindows: Int

    /// Creates statistics.
    public init(
        kind: String = NoveltyStatistics.currentKind, means: [[Float]], factor: [Float], threshold: Float,
        falseAlarmRate: Double, calibrationWindows: Int
    ) {
        self.kind = kind
        self.means = means
        self.factor = factor
        self.threshold = threshold
        self.falseAlarmRate = falseAlarmRate
        self.calibrationWindows = calibrationWindows
    }

    /// The number of window statistics.
    public var features: Int { means.first?.count ?? 0 }

    /// Checks that the statistics fit a model of `classes` outputs reading `channels` channels, and that every
    /// number is usable.
    ///
    /// An artifact is outside input until verified: a NaN mean would make every window novel, a zero on the
    /// factor's diagonal would divide by zero.
    ///
    /// - Throws: ``QuantizationError`` with code `invalidParameters` naming the field.
    public func validate(classes: Int, channels: Int) throws(QuantizationError) {
        guard kind == Self.currentKind else {
            throw QuantizationError(
                .invalidParameters, "novelty statistics are `\(kind)`; this build reads `\(Self.currentKind)`")
        }
        let d = channels * Self.perChannel
        guard means.count == classes, means.allSatisfy({ $0.count == d }), factor.count == d * d else {
            throw QuantizationError(
                .invalidParameters,
                "novelty statistics have \(means.count) means of \(features) values and a \(factor.count)-value "
                    + "factor; the model has \(classes) classes and \(channels) channels (\(d) values each)")
        }
        guard means.allSatisfy({ $0.allSatisfy(\.isFinite) }), factor.allSatisfy(\.isFinite),
            (0..<d).allSatisfy({ factor[$0 * d + $0] > 0 })
        else {
            throw QuantizationError(
                .invalidParameters, "novelty statistics hold a non-finite number or a factor that is not positive")
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

    /// The score of one window's statistics `x` predicted as `predicted` (see the type's description); `work`
    /// has room for ``features`` values.
    ///
    /// - Precondition: `x.count == features`, `predicted` is a class index.
    public func score(_ x: UnsafeBufferPointer<Float>, predicted: Int, work: UnsafeMutablePointer<Float>) -> Float {
        let d = features
        var sum: Float = 0
        means[predicted].withUnsafeBufferPointer { mean in
            factor.withUnsafeBufferPointer { l in
                for i in 0..<d {
                    var v = x[i] - mean[i]
                    for k in 0..<i { v -= l[i * d + k] * work[k] }
                    let y = v / l[i * d + i]
                    work[i] = y
                    sum += y * y
                }
            }
        }
        return sum / Float(max(d, 1))
    }

    /// Writes the ``perChannel`` statistics of each channel of a standardized window, channel after channel.
    ///
    /// - Parameters:
    ///   - window: `length × channels` values, sample-major.
    ///   - out: Room for `channels × perChannel` values.
    ///   - scratch: Room for `length` values (the Haar transform runs in it).
    public static func describe(
        _ window: UnsafeBufferPointer<Float>, length: Int, channels: Int, into out: UnsafeMutablePointer<Float>,
        scratch: UnsafeMutablePointer<Float>
    ) {
        let n = Double(max(length, 1))
        for c in 0..<channels {
            var mean = 0.0
            for t in 0..<length { mean += Double(window[t * channels + c]) }
            mean /= n
            var m2 = 0.0, m3 = 0.0, m4 = 0.0, peak = 0.0, d1 = 0.0, d2 = 0.0
            var previous = 0.0, beforePrevious = 0.0
            for t in 0..<length {
                let value = Double(window[t * channels + c])
                let x = value - mean
                let x2 = x * x
                m2 += x2
                m3 += x2 * x
                m4 += x2 * x2
                peak = max(peak, abs(x))
                if t > 0 { d1 += (value - previous) * (value - previous) }
                if t > 1 {
                    let second = value - 2 * previous + beforePrevious
                    d2 += second * second
                }
                beforePrevious = previous
                previous = value
                scratch[t] = Float(x)
            }
            let variance = max(m2 / n, 1e-12)
            let sd = variance.squareRoot()
            let o = out + c * perChannel
            o[0] = Float(mean)
            o[1] = Float(log(sd))
            o[2] = Float(m3 / n / (variance * sd))
            o[3] = Float(log(max(m4 / n / (variance * variance), 1e-12)))
            o[4] = Float(log(max(peak / sd, 1e-12)))
            o[5] = Float(log(max(d1 / Double(max(length - 1, 1)), 1e-12) / variance))
            o[6] = Float(log(max(d2 / Double(max(length - 2, 1)), 1e-12) / variance))
            // Haar, in place: each level halves the approximation and keeps the detail's energy.
            let total = max(m2, 1e-12)
            var count = length
            for level in 0..<3 {
                var detail = 0.0
                let half = count / 2
                for i in 0..<half {
                    let a = Double(scratch[2 * i]), b = Double(scratch[2 * i + 1])
                    detail += (a - b) * (a - b) / 2
                    scratch[i] = Float((a + b) * 0.5.squareRoot())
                }
                count = half
                o[7 + level] = Float(log(detail / total + 1e-6))
            }
            var rest = 0.0
            for i in 0..<count { rest += Double(scratch[i]) * Double(scratch[i]) }
            o[10] = Float(log(rest / total + 1e-6))
        }
    }

    /// Fits the statistics to standardized windows and sets the threshold so that a share `falseAlarmRate` of the
    /// windows held out of the fit is novel.
    ///
    /// - Parameters:
    ///   - windows: `count × length × channels` values, window-major, sample-major within a window.
    ///   - labels: The true class of each window (the class means are taken around them).
    ///   - predictions: The model's predicted class of each window (the calibration scores are taken against them,
    ///     as on a device).
    ///   - classes: The model's class count; a class without windows gets the mean of all windows.
    ///   - falseAlarmRate: The share of held-out windows the threshold calls novel, in (0, 1).
    /// - Returns: nil with fewer than 8 windows, no held-out window, or no more fitted windows than statistics
    ///   (channels × 11).
    public static func fit(
        windows: UnsafeBufferPointer<Float>, length: Int, channels: Int, labels: [Int], predictions: [Int],
        classes: Int, falseAlarmRate: Double
    ) -> NoveltyStatistics? {
        let n = labels.count, d = channels * perChannel, size = length * channels
        guard n >= 8, length > 0, channels > 0, classes > 0, windows.count == n * size, predictions.count == n
        else { return nil }
        var x = [Float](repeating: 0, count: n * d)
        var scratch = [Float](repeating: 0, count: length)
        x.withUnsafeMutableBufferPointer { out in
            scratch.withUnsafeMutableBufferPointer { s in
                for i in 0..<n {
                    describe(
                        UnsafeBufferPointer(rebasing: windows[(i * size)..<((i + 1) * size)]), length: length,
                        channels: channels, into: out.baseAddress! + i * d, scratch: s.baseAddress!)
                }
            }
        }
        // Every fourth block of consecutive windows calibrates the threshold; the others are fitted. Blocks, not
        // single windows: windows of a stream overlap and neighbours look alike, and conditions last; a threshold
        // set on windows interleaved with the fitted ones held only there (on the demo's simulator data 4 % became
        // 12–29 % on the later test stretch), as did blocks taken within each class (16 %); blocks of up to 256
        // windows (at least 8 in all) held it better (BENCHMARKS.md, "novelty escalation"). A class whose windows
        // all fell into held-out blocks is fitted on them too, rather than left without a mean of its own.
        let block = Self.calibrationBlock(windows: n)
        var fitted = [Int](), held = [Int]()
        for i in 0..<n where (0..<classes).contains(labels[i]) {
            if (i / block) % 4 == 0 { held.append(i) } else { fitted.append(i) }
        }
        let fittedClasses = Set(fitted.map { labels[$0] })
        for i in held where !fittedClasses.contains(labels[i]) { fitted.append(i) }
        guard fitted.count > d, !held.isEmpty else { return nil }
        var sums = [Double](repeating: 0, count: classes * d), overall = [Double](repeating: 0, count: d)
        var counts = [Int](repeating: 0, count: classes)
        for i in fitted {
            counts[labels[i]] += 1
            for k in 0..<d {
                sums[labels[i] * d + k] += Double(x[i * d + k])
                overall[k] += Double(x[i * d + k])
            }
        }
        let means: [[Double]] = (0..<classes).map { c in
            (0..<d).map { k in counts[c] > 0 ? sums[c * d + k] / Double(counts[c]) : overall[k] / Double(fitted.count) }
        }
        var covariance = [Double](repeating: 0, count: d * d)
        var centered = [Double](repeating: 0, count: d)
        for i in fitted {
            for k in 0..<d { centered[k] = Double(x[i * d + k]) - means[labels[i]][k] }
            for r in 0..<d { for s in 0...r { covariance[r * d + s] += centered[r] * centered[s] } }
        }
        var trace = 0.0
        for r in 0..<d {
            for s in 0...r { covariance[r * d + s] /= Double(fitted.count - 1) }
            trace += covariance[r * d + r]
        }
        let ridge = shrinkage * trace / Double(d) + 1e-9
        for r in 0..<d { covariance[r * d + r] += ridge }
        guard let factor = cholesky(covariance, d) else { return nil }
        var statistics = NoveltyStatistics(
            means: means.map { $0.map(Float.init) }, factor: factor.map(Float.init), threshold: 1,
            falseAlarmRate: falseAlarmRate, calibrationWindows: n)
        var work = [Float](repeating: 0, count: d)
        var scores = x.withUnsafeBufferPointer { all in
            work.withUnsafeMutableBufferPointer { w in
                held.map { i in
                    statistics.score(
                        UnsafeBufferPointer(rebasing: all[(i * d)..<((i + 1) * d)]),
                        predicted: min(max(predictions[i], 0), classes - 1), work: w.baseAddress!)
                }
            }
        }
        scores.sort()
        let rate = min(max(falseAlarmRate, 0), 1)
        // The score that `rate` of the held-out windows exceed: ⌊m·rate⌋ of them lie above it.
        let index = min(scores.count - 1, max(0, scores.count - 1 - Int((Double(scores.count) * rate).rounded(.down))))
        statistics.threshold = max(scores[index], Float.leastNormalMagnitude)
        return statistics
    }

    /// Consecutive windows per calibration block: 256, or fewer so that `windows` make at least 8 blocks.
    static func calibrationBlock(windows: Int) -> Int { min(256, max(1, windows / 8)) }

    /// The lower Cholesky factor of a symmetric positive-definite `d × d` matrix given by its lower triangle, or nil.
    static func cholesky(_ a: [Double], _ d: Int) -> [Double]? {
        var l = [Double](repeating: 0, count: d * d)
        for i in 0..<d {
            for j in 0...i {
                var s = a[i * d + j]
                for k in 0..<j { s -= l[i * d + k] * l[j * d + k] }
                if i == j {
                    guard s > 0, s.isFinite else { return nil }
                    l[i * d + i] = s.squareRoot()
                } else {
                    l[i * d + j] = s / l[j * d + j]
                }
            }
        }
        return l
    }
}

/// Scores windows against ``NoveltyStatistics`` without allocating: buffers for one window's statistics, the
/// Haar transform and the triangular solve, sized once. One user at a time.
public final class NoveltyScorer {
    /// The statistics it scores against.
    public let statistics: NoveltyStatistics
    private let length: Int
    private let channels: Int
    private let values: UnsafeMutablePointer<Float>
    private let scratch: UnsafeMutablePointer<Float>
    private let work: UnsafeMutablePointer<Float>

    /// Prepares buffers for windows of `length × channels` values.
    ///
    /// - Precondition: `statistics` passed `validate(classes:channels: channels)`.
    public init(statistics: NoveltyStatistics, length: Int, channels: Int) {
        self.statistics = statistics
        self.length = length
        self.channels = channels
        let d = max(channels * NoveltyStatistics.perChannel, 1)
        values = .allocate(capacity: d)
        values.initialize(repeating: 0, count: d)
        scratch = .allocate(capacity: max(length, 1))
        scratch.initialize(repeating: 0, count: max(length, 1))
        work = .allocate(capacity: d)
        work.initialize(repeating: 0, count: d)
    }

    deinit {
        values.deallocate()
        scratch.deallocate()
        work.deallocate()
    }

    /// The novelty score of a standardized window of `length × channels` values predicted as `predicted`.
    public func score(_ window: UnsafeBufferPointer<Float>, predicted: Int) -> Float {
        NoveltyStatistics.describe(window, length: length, channels: channels, into: values, scratch: scratch)
        return statistics.score(
            UnsafeBufferPointer(start: values, count: channels * NoveltyStatistics.perChannel), predicted: predicted,
            work: work)
    }

    /// Whether the window is novel: its score is above the statistics' threshold.
    public func isNovel(_ window: UnsafeBufferPointer<Float>, predicted: Int) -> Bool {
        score(window, predicted: predicted) > statistics.threshold
    }
}
