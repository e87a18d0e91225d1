import Foundation
import Testing

@testable import TandemCore

/// Novelty statistics: what they describe a window with, the fit, the threshold's false-alarm rate, validation of
/// what an artifact holds, and the scorer a device runs.
struct NoveltyStatisticsTests {
    /// `count` one-channel windows of 128 samples: class 0 a sine of period 16, class 1 of period 8, random phase
    /// and amplitude, with noise.
    func windows(count: Int, seed: UInt64, kind: (Int) -> Int = { $0 % 2 }) -> (values: [Float], labels: [Int]) {
        var g = SeededGenerator(seed: seed)
        var values = [Float](), labels = [Int]()
        for i in 0..<count {
            let c = kind(i)
            labels.append(c)
            let phase = Float.random(in: 0..<(2 * .pi), using: &g)
            let amplitude = Float.random(in: 0.8...1.2, using: &g)
            for t in 0..<128 {
                let period: Float = c == 0 ? 16 : 8
                var v = amplitude * sin(2 * .pi * Float(t) / period + phase)
                if c == 2 { v = min(v, 0) }  // a kind never fitted: one side cut off
                values.append(v + 0.2 * g.nextGaussian())
            }
        }
        return (values, labels)
    }

    func describe(_ window: [Float], channels: Int = 1) -> [Float] {
        var out = [Float](repeating: .nan, count: channels * NoveltyStatistics.perChannel)
        var scratch = [Float](repeating: 0, count: window.count / channels)
        window.withUnsafeBufferPointer { w in
            NoveltyStatistics.describe(
                w, length: window.count / channels, channels: channels, into: &out, scratch: &scratch)
        }
        return out
    }

    @Test("the window statistics of known waveforms")
    func knownWaveforms() {
        // A pure sine (period 32, whole periods): skewness 0, kurtosis 1.5, crest √2, energy low in frequency.
        let sine = (0..<128).map { Float(sin(2 * Double.pi * Double($0) / 32)) }
        let s = describe(sine)
        let halfRoot = Float(0.5).squareRoot()
        #expect(abs(s[0]) < 1e-5 && abs(s[1] - log(halfRoot)) < 1e-4)
        #expect(abs(s[2]) < 1e-4 && abs(s[3] - log(Float(1.5))) < 1e-3 && abs(s[4] + log(halfRoot)) < 1e-3)
        #expect(s[7] < s[8] && s[8] < s[9], "a slow sine has less energy in each higher octave")
        // Alternating samples: all the energy in the top octave, none below.
        let alternating = (0..<128).map { Float($0 % 2 == 0 ? 1 : -1) }
        let a = describe(alternating)
        #expect(abs(a[7]) < 1e-4 && a[8] < -13 && a[9] < -13 && a[10] < -13)
        // One side truncated: skewed.
        #expect(describe(sine.map { min($0, 0.3) })[2] < -0.3)
        // A channel that never moves and a short window give finite numbers, channels kept apart.
        let two = (0..<6).flatMap { t -> [Float] in [Float(t), 0.25] }
        let d = describe(two, channels: 2)
        #expect(d.allSatisfy { $0.isFinite })
        #expect(abs(d[NoveltyStatistics.perChannel] - 0.25) < 1e-6, "second channel's mean")
    }

    @Test("the threshold calls the asked share of new windows novel, and a kind never fitted novel")
    func thresholdAtFalseAlarmRate() throws {
        let (train, labels) = windows(count: 2000, seed: 1)
        let statistics = try #require(
            train.withUnsafeBufferPointer {
                NoveltyStatistics.fit(
                    windows: $0, length: 128, channels: 1, labels: labels, predictions: labels, classes: 2,
                    falseAlarmRate: 0.04)
            })
        try statistics.validate(classes: 2, channels: 1)
        #expect(statistics.calibrationWindows == 2000)
        func share(_ data: [Float], _ labels: [Int]) -> Double {
            let scorer = NoveltyScorer(statistics: statistics, length: 128, channels: 1)
            return data.withUnsafeBufferPointer { w in
                Double(
                    labels.indices.filter {
                        scorer.isNovel(
                            UnsafeBufferPointer(rebasing: w[($0 * 128)..<($0 * 128 + 128)]), predicted: labels[$0])
                    }.count) / Double(labels.count)
            }
        }
        let (fresh, freshLabels) = windows(count: 4000, seed: 2)
        let rate = share(fresh, freshLabels)
        #expect(abs(rate - 0.04) < 0.02, "new windows of the fitted classes")
        let (truncated, _) = windows(count: 200, seed: 3, kind: { _ in 2 })
        let asFirst = share(truncated, [Int](repeating: 0, count: 200))
        let asSecond = share(truncated, [Int](repeating: 1, count: 200))
        #expect(asFirst > 0.9, "truncated windows")
        #expect(asSecond > 0.9, "whichever class they are taken for")
    }

    @Test("the score is the Mahalanobis distance per feature, and the scorer gives the same")
    func score() throws {
        let d = NoveltyStatistics.perChannel
        // A diagonal factor: the score is the mean squared standardized difference.
        var factor = [Float](repeating: 0, count: d * d)
        for i in 0..<d { factor[i * d + i] = Float(i + 1) }
        let means: [[Float]] = [(0..<d).map { Float($0) }, [Float](repeating: 0, count: d)]
        let statistics = NoveltyStatistics(
            means: means, factor: factor, threshold: 1, falseAlarmRate: 0.02, calibrationWindows: 10)
        let window = (0..<64).map { Float(sin(Double($0))) + (($0 % 5 == 0) ? 1 : 0) }
        let x = describe(window)
        var expected: Float = 0
        for k in 0..<d {
            let z = (x[k] - means[1][k]) / Float(k + 1)
            expected += z * z
        }
        expected /= Float(d)
        var work = [Float](repeating: 0, count: d)
        let direct = x.withUnsafeBufferPointer { statistics.score($0, predicted: 1, work: &work) }
        #expect(abs(direct - expected) <= 1e-5 * expected)
        let scorer = NoveltyScorer(statistics: statistics, length: 64, channels: 1)
        #expect(window.withUnsafeBufferPointer { scorer.score($0, predicted: 1) } == direct)
        // A lower triangle couples features: L = [[1, 0], [1, 1]] on the first two turns x − μ = (1, 1) into (1, 0).
        var coupled = factor
        for i in 0..<d { coupled[i * d + i] = 1 }
        coupled[1 * d + 0] = 1
        let c = NoveltyStatistics(
            means: [[Float](repeating: 0, count: d)], factor: coupled, threshold: 1, falseAlarmRate: 0.02,
            calibrationWindows: 1)
        let ones = [Float](repeating: 0, count: d).enumerated().map { $0.offset < 2 ? Float(1) : 0 }
        #expect(ones.withUnsafeBufferPointer { c.score($0, predicted: 0, work: &work) } == 1 / Float(d))
    }

    @Test("statistics that do not fit the model or hold unusable numbers are refused")
    func validation() throws {
        let d = NoveltyStatistics.perChannel
        var identity = [Float](repeating: 0, count: d * d)
        for i in 0..<d { identity[i * d + i] = 1 }
        let good = NoveltyStatistics(
            means: [[Float](repeating: 0, count: d), [Float](repeating: 1, count: d)], factor: identity, threshold: 2,
            falseAlarmRate: 0.02, calibrationWindows: 10)
        try good.validate(classes: 2, channels: 1)
        #expect(throws: QuantizationError.self) { try good.validate(classes: 3, channels: 1) }
        #expect(throws: QuantizationError.self) { try good.validate(classes: 2, channels: 2) }
        var bad = good
        bad.means[1][0] = .nan
        #expect(throws: QuantizationError.self) { try bad.validate(classes: 2, channels: 1) }
        bad = good
        bad.factor[3 * d + 3] = 0
        #expect(throws: QuantizationError.self, "a zero on the diagonal") { try bad.validate(classes: 2, channels: 1) }
        bad = good
        bad.factor[5] = .infinity
        #expect(throws: QuantizationError.self) { try bad.validate(classes: 2, channels: 1) }
        bad = good
        bad.threshold = .infinity
        #expect(throws: QuantizationError.self) { try bad.validate(classes: 2, channels: 1) }
        bad = good
        bad.means[0] = [0]
        #expect(throws: QuantizationError.self) { try bad.validate(classes: 2, channels: 1) }
        bad = good
        bad.kind = "penultimate-v0"
        #expect(throws: QuantizationError.self, "statistics of another kind") {
            try bad.validate(classes: 2, channels: 1)
        }
    }

    @Test("a class whose windows all fall into held-out blocks is fitted on them, not given the mean of the others")
    func classInOneRun() throws {
        // 1,100 windows in blocks of 137: the first 100 (class 1) lie in the first, held-out block.
        let (train, labels) = windows(count: 1100, seed: 5, kind: { $0 < 100 ? 1 : 0 })
        let statistics = try #require(
            train.withUnsafeBufferPointer {
                NoveltyStatistics.fit(
                    windows: $0, length: 128, channels: 1, labels: labels, predictions: labels, classes: 2,
                    falseAlarmRate: 0.04)
            })
        let (fresh, _) = windows(count: 200, seed: 6, kind: { _ in 1 })
        let scorer = NoveltyScorer(statistics: statistics, length: 128, channels: 1)
        let novel = fresh.withUnsafeBufferPointer { w in
            (0..<200).filter {
                scorer.isNovel(UnsafeBufferPointer(rebasing: w[($0 * 128)..<($0 * 128 + 128)]), predicted: 1)
            }
            .count
        }
        #expect(novel < 40, "\(novel) of 200 windows of class 1 called novel as class 1")
    }

    @Test("too few windows to fit give no statistics")
    func tooFew() {
        let (train, labels) = windows(count: 12, seed: 4)
        let statistics = train.withUnsafeBufferPointer {
            NoveltyStatistics.fit(
                windows: $0, length: 128, channels: 1, labels: labels, predictions: labels, classes: 2,
                falseAlarmRate: 0.04)
        }
        #expect(statistics == nil, "8 fitted windows for 11 statistics")
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
            means: [[0.5], [1.5]], factor: [0.25], threshold: 4, falseAlarmRate: 0.02, calibrationWindows: 100)
        #expect(try JSONDecoder().decode(ModelManifest.self, from: try JSONEncoder().encode(manifest)) == manifest)
    }
}
