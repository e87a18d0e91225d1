import Foundation
import TandemCore

extension ScratchDirectory {
    /// Writes `text` to a file called `name` in this directory and returns its URL.
    @discardableResult
    public func write(_ text: String, named name: String) throws -> URL {
        let url = url.appendingPathComponent(name)
        try Data(text.utf8).write(to: url)
        return url
    }
}

/// Spectral features of windows, for tests that check what the simulator's classes look like.
public enum SpectralFeatures {
    /// The DFT magnitude of channel `channel` of window `index`, bins `0...length/2`, mean removed.
    ///
    /// A direct DFT: windows in tests are short, and a reference this plain cannot be wrong.
    public static func magnitudes(_ set: LabeledWindows, window index: Int, channel: Int) -> [Double] {
        let length = set.length, channels = set.channels
        let x = set.windows.scalars
        let base = index * length * channels + channel
        var mean = 0.0
        for t in 0..<length { mean += Double(x[base + t * channels]) }
        mean /= Double(length)
        return (0...(length / 2)).map { k in
            var re = 0.0, im = 0.0
            for t in 0..<length {
                let v = Double(x[base + t * channels]) - mean
                let angle = -2 * Double.pi * Double(k * t) / Double(length)
                re += v * cos(angle)
                im += v * sin(angle)
            }
            return (re * re + im * im).squareRoot()
        }
    }

    /// The share of a channel's spectral energy (bins 1…) at or above `hertz`.
    public static func highBandShare(
        _ set: LabeledWindows, window index: Int, channel: Int, sampleRateHz: Double, hertz: Double
    ) -> Double {
        let magnitudes = magnitudes(set, window: index, channel: channel)
        let binHz = sampleRateHz / Double(set.length)
        var high = 0.0, total = 0.0
        for (k, m) in magnitudes.enumerated() where k > 0 {
            total += m * m
            if Double(k) * binHz >= hertz { high += m * m }
        }
        return total > 0 ? high / total : 0
    }

    /// The root-mean-square of a channel in a window, mean removed.
    public static func rms(_ set: LabeledWindows, window index: Int, channel: Int) -> Double {
        let length = set.length, channels = set.channels
        let x = set.windows.scalars
        let base = index * length * channels + channel
        var mean = 0.0
        for t in 0..<length { mean += Double(x[base + t * channels]) }
        mean /= Double(length)
        var sum = 0.0
        for t in 0..<length {
            let d = Double(x[base + t * channels]) - mean
            sum += d * d
        }
        return (sum / Double(length)).squareRoot()
    }

    /// Accuracy of a nearest-centroid classifier on standardized DFT magnitudes of every channel,
    /// fitted on `train` and scored on `test`: a quick check that classes are separable but not trivially.
    public static func nearestCentroidAccuracy(train: LabeledWindows, test: LabeledWindows) -> Double {
        func features(_ set: LabeledWindows) -> [[Double]] {
            (0..<set.count).map { i in (0..<set.channels).flatMap { magnitudes(set, window: i, channel: $0) } }
        }
        let trainFeatures = features(train), testFeatures = features(test)
        let width = trainFeatures.first?.count ?? 0
        var mean = [Double](repeating: 0, count: width), std = [Double](repeating: 0, count: width)
        for f in trainFeatures { for j in 0..<width { mean[j] += f[j] / Double(trainFeatures.count) } }
        for f in trainFeatures {
            for j in 0..<width { std[j] += (f[j] - mean[j]) * (f[j] - mean[j]) / Double(trainFeatures.count) }
        }
        std = std.map { max($0.squareRoot(), 1e-9) }
        let classes = train.classNames.count
        var centroids = [[Double]](repeating: [Double](repeating: 0, count: width), count: classes)
        var counts = [Double](repeating: 0, count: classes)
        for (f, label) in zip(trainFeatures, train.labels) {
            counts[label] += 1
            for j in 0..<width { centroids[label][j] += (f[j] - mean[j]) / std[j] }
        }
        for c in 0..<classes where counts[c] > 0 { centroids[c] = centroids[c].map { $0 / counts[c] } }
        var correct = 0
        for (f, label) in zip(testFeatures, test.labels) {
            var best = 0, bestDistance = Double.infinity
            for c in 0..<classes where counts[c] > 0 {
                var d = 0.0
                for j in 0..<width {
                    let z = (f[j] - mean[j]) / std[j] - centroids[c][j]
                    d += z * z
                }
                if d < bestDistance { bestDistance = d; best = c }
            }
            if best == label { correct += 1 }
        }
        return test.count == 0 ? 0 : Double(correct) / Double(test.count)
    }
}
