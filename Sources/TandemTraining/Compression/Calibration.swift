import TandemCore

/// How the range of an activation tensor is chosen from the values it took on the calibration set.
public enum CalibrationMethod: Sendable, Equatable, CustomStringConvertible {
    /// The observed minimum and maximum: nothing clips, but one outlier widens every step.
    case minMax
    /// The given lower and upper percentiles (e.g. 99.99 keeps `[q(0.01 %), q(99.99 %)]`): outliers clip.
    case percentile(Double)
    /// The clipping range that minimizes the mean squared quantization error (clipping plus rounding)
    /// over the observed values, searched over ranges shrunk from the min/max one.
    case mse

    /// Parses `minmax`, `percentile[:P]` (default 99.99) or `mse`.
    ///
    /// - Throws: `QuantizationError.badCalibration` for anything else.
    public init(parsing text: String) throws {
        let parts = text.lowercased().split(separator: ":").map(String.init)
        switch parts.first {
        case "minmax", "min-max": self = .minMax
        case "mse": self = .mse
        case "percentile":
            let p = parts.count > 1 ? Double(parts[1]) : 99.99
            guard let p, p > 50, p <= 100 else {
                throw QuantizationError(.badCalibration, "percentile in `\(text)` must be a number in (50, 100]")
            }
            self = .percentile(p)
        default:
            throw QuantizationError(
                .badCalibration, "unknown calibration method `\(text)`; use minmax, percentile[:P] or mse")
        }
    }

    /// `minmax`, `percentile:P` or `mse`, the form `init(parsing:)` reads.
    public var description: String {
        switch self {
        case .minMax: "minmax"
        case .percentile(let p): "percentile:\(p)"
        case .mse: "mse"
        }
    }
}

/// Chooses int8 activation parameters from observed values.
public enum RangeCalibrator {
    /// Activation parameters for `values` under `method`.
    ///
    /// The chosen range always contains zero, so real zero (padding, ReLU output) is exact.
    public static func quantization(of values: [Float], method: CalibrationMethod) -> ActivationQuantization {
        guard !values.isEmpty else { return ActivationQuantization(covering: 0, 0) }
        var lo = Float.infinity, hi = -Float.infinity
        for v in values where v.isFinite {
            lo = Swift.min(lo, v)
            hi = Swift.max(hi, v)
        }
        guard lo <= hi else { return ActivationQuantization(covering: 0, 0) }
        switch method {
        case .minMax:
            return ActivationQuantization(covering: lo, hi)
        case .percentile(let p):
            let sorted = values.filter(\.isFinite).sorted()
            func quantile(_ q: Double) -> Float {
                let position = q * Double(sorted.count - 1)
                let below = Int(position.rounded(.down))
                let above = Swift.min(below + 1, sorted.count - 1)
                let fraction = Float(position - Double(below))
                return sorted[below] + (sorted[above] - sorted[below]) * fraction
            }
            return ActivationQuantization(covering: quantile(1 - p / 100), quantile(p / 100))
        case .mse:
            return mseOptimal(values, lo: Swift.min(lo, 0), hi: Swift.max(hi, 0))
        }
    }

    /// Searches ranges `[α·lo, α·hi]` (α from 1 down to 0.2) for the least expected squared error,
    /// evaluated on a 2048-bin histogram of the values.
    static func mseOptimal(_ values: [Float], lo: Float, hi: Float) -> ActivationQuantization {
        let bins = 2048
        let width = (hi - lo) / Float(bins)
        guard width > 0 else { return ActivationQuantization(covering: lo, hi) }
        var counts = [Double](repeating: 0, count: bins)
        for v in values where v.isFinite {
            let b = Swift.min(Swift.max(Int((v - lo) / width), 0), bins - 1)
            counts[b] += 1
        }
        var best = ActivationQuantization(covering: lo, hi)
        var bestError = Double.infinity
        for step in 0...80 {
            let alpha = 1 - Float(step) * 0.01
            let candidate = ActivationQuantization(covering: lo * alpha, hi * alpha)
            var error = 0.0
            for b in 0..<bins where counts[b] > 0 {
                let center = lo + (Float(b) + 0.5) * width
                let d = Double(candidate.dequantize(candidate.quantize(center)) - center)
                error += counts[b] * d * d
            }
            if error < bestError {
                bestError = error
                best = candidate
            }
        }
        return best
    }
}
