/// Per-channel standardization, `(x − mean) / std`, fitted on training windows.
///
/// It is part of a model's input spec: the same values must be applied at training, evaluation
/// and on the edge, so it is stored in the model manifest.
public struct Standardization: Codable, Sendable, Equatable {
    /// The mean of every channel.
    public var mean: [Float]
    /// The standard deviation of every channel, never below ``minimumStd``.
    public var std: [Float]

    /// A standard deviation below this marks a channel as constant; it is then only centred
    /// (its std is stored as 1) instead of blown up by a near-zero divisor.
    public static let minimumStd: Float = 1e-6

    /// Creates a standardization from its values.
    ///
    /// - Precondition: one std per mean, every std positive.
    public init(mean: [Float], std: [Float]) {
        precondition(mean.count == std.count, "\(mean.count) means but \(std.count) stds")
        precondition(std.allSatisfy { $0 > 0 }, "every std must be positive")
        self.mean = mean
        self.std = std
    }

    /// A standardization that changes nothing: mean 0 and std 1 on every channel.
    public static func identity(channels: Int) -> Standardization {
        Standardization(mean: [Float](repeating: 0, count: channels), std: [Float](repeating: 1, count: channels))
    }

    /// The number of channels.
    public var channels: Int { mean.count }

    /// Fits mean and std of every channel over all samples of `windows` (the last dimension is
    /// channels: `[count, length, channels]` or `[time, channels]`).
    ///
    /// Sums are taken in double precision, in two passes, so long recordings with a large offset
    /// keep an accurate variance.
    public static func fit(_ windows: Tensor) -> Standardization {
        precondition(windows.rank >= 1, "need at least one dimension")
        let channels = windows.shape[windows.rank - 1]
        let rows = channels == 0 ? 0 : windows.count / channels
        var sum = [Double](repeating: 0, count: channels)
        var squares = [Double](repeating: 0, count: channels)
        windows.scalars.withUnsafeBufferPointer { x in
            for r in 0..<rows {
                for c in 0..<channels { sum[c] += Double(x[r * channels + c]) }
            }
            let means = sum.map { rows > 0 ? $0 / Double(rows) : 0 }
            for r in 0..<rows {
                for c in 0..<channels {
                    let d = Double(x[r * channels + c]) - means[c]
                    squares[c] += d * d
                }
            }
            sum = means
        }
        let std = squares.map { squares -> Float in
            let s = Float(rows > 0 ? (squares / Double(rows)).squareRoot() : 0)
            return s < minimumStd ? 1 : s
        }
        return Standardization(mean: sum.map { Float($0) }, std: std)
    }

    /// Standardizes `tensor` in place; its last dimension must be ``channels``.
    public func apply(to tensor: inout Tensor) {
        precondition(
            tensor.rank >= 1 && tensor.shape[tensor.rank - 1] == channels,
            "tensor \(tensor.shape) does not have \(channels) channels")
        let channels = channels
        let scale = std.map { 1 / $0 }
        let mean = mean
        tensor.scalars.withUnsafeMutableBufferPointer { x in
            let rows = x.count / max(channels, 1)
            for r in 0..<rows {
                for c in 0..<channels { x[r * channels + c] = (x[r * channels + c] - mean[c]) * scale[c] }
            }
        }
    }

    /// A standardized copy of `tensor`.
    public func applied(to tensor: Tensor) -> Tensor {
        var copy = tensor
        apply(to: &copy)
        return copy
    }

    /// Undoes ``apply(to:)`` in place.
    public func invert(_ tensor: inout Tensor) {
        precondition(
            tensor.rank >= 1 && tensor.shape[tensor.rank - 1] == channels,
            "tensor \(tensor.shape) does not have \(channels) channels")
        let channels = channels
        let std = std
        let mean = mean
        tensor.scalars.withUnsafeMutableBufferPointer { x in
            let rows = x.count / max(channels, 1)
            for r in 0..<rows {
                for c in 0..<channels { x[r * channels + c] = x[r * channels + c] * std[c] + mean[c] }
            }
        }
    }
}
