/// The distribution of a model's confidence on calibration data, as a quantile table.
///
/// `value(at: q)` is the confidence below which a share `q` of calibration windows fell, linearly
/// interpolated between table entries.
public struct CalibrationQuantiles: Sendable, Equatable, Codable {
    /// Quantile levels in `[0, 1]`, strictly increasing.
    public let levels: [Double]
    /// Confidence at each level, non-decreasing.
    public let values: [Double]

    /// Builds the table from raw confidences (sorted here; need not be sorted).
    ///
    /// - Throws: ``PolicyError`` if `confidences` is empty or holds a non-finite value.
    public init(confidences: [Double]) throws(PolicyError) {
        guard !confidences.isEmpty else { throw PolicyError(.invalidCalibration, "no calibration confidences") }
        guard confidences.allSatisfy(\.isFinite) else {
            throw PolicyError(.invalidCalibration, "a calibration confidence is not finite")
        }
        let sorted = confidences.sorted()
        if sorted.count == 1 {
            levels = [0, 1]
            values = [sorted[0], sorted[0]]
        } else {
            levels = sorted.indices.map { Double($0) / Double(sorted.count - 1) }
            values = sorted
        }
    }

    /// Uses a quantile table as given.
    ///
    /// - Throws: ``PolicyError`` unless levels are strictly increasing in `[0, 1]`, values non-decreasing,
    ///   both the same length (at least 2) and finite.
    public init(levels: [Double], values: [Double]) throws(PolicyError) {
        guard levels.count == values.count, levels.count >= 2 else {
            throw PolicyError(
                .invalidCalibration,
                "quantile table needs ≥ 2 levels and as many values, got \(levels.count) and \(values.count)")
        }
        guard levels.allSatisfy({ $0 >= 0 && $0 <= 1 }), values.allSatisfy(\.isFinite),
            zip(levels, levels.dropFirst()).allSatisfy({ $0 < $1 }),
            zip(values, values.dropFirst()).allSatisfy({ $0 <= $1 })
        else {
            throw PolicyError(
                .invalidCalibration, "quantile levels must increase within [0, 1] and values must not decrease")
        }
        self.levels = levels
        self.values = values
    }

    /// The confidence at quantile level `q` (clamped to the table's range).
    public func value(at q: Double) -> Double {
        if q <= levels[0] { return values[0] }
        if q >= levels[levels.count - 1] { return values[values.count - 1] }
        var lo = 0, hi = levels.count - 1
        while hi - lo > 1 {
            let mid = (lo + hi) / 2
            if levels[mid] <= q { lo = mid } else { hi = mid }
        }
        let t = (q - levels[lo]) / (levels[hi] - levels[lo])
        return values[lo] + t * (values[hi] - values[lo])
    }
}

/// A policy could not be built from the values given.
public struct PolicyError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The kind of failure.
    public enum Code: String, Sendable {
        /// Calibration confidences or quantiles are missing or inconsistent.
        case invalidCalibration
        /// A threshold, budget, rate or gain is out of range.
        case invalidParameter
    }

    /// The kind of failure.
    public var code: Code
    /// What is wrong, naming the value.
    public var message: String

    /// Creates an error.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// `code: message`.
    public var description: String { "\(code.rawValue): \(message)" }
}
