import TandemCore

/// Perturbed copies of a few training windows, for the teacher to label during distillation.
///
/// Distillation teaches a student the teacher's function on the windows it is shown. On a few dozen windows
/// (GunPoint: 50) the student can match the teacher's soft targets exactly on those and still disagree with it
/// between them, which the test split then finds. Copies that are scaled, jittered and shifted a little, labeled
/// by the teacher alone (they train as unlabeled windows: soft targets, no label), show the student the teacher's
/// function around each window — the transfer-set augmentation of knowledge distillation. With the small-data
/// rules the number of optimizer steps stays the same (``TrainingConfiguration/minimumSteps``); only the teacher's
/// one pass over the windows grows.
///
/// The perturbations are small against standardized windows (unit variance per channel): a factor of 1 ± 10 %
/// per window and channel, Gaussian noise of 0.05, a shift of at most 10 % of the window (edge samples repeated).
public struct TransferAugmentation: Sendable, Equatable {
    /// Perturbed copies made of each window. Default 4.
    public var copies = 4
    /// Standard deviation of the amplitude factor around 1, per window and channel. Default 0.1.
    public var amplitudeDeviation: Float = 0.1
    /// Standard deviation of the additive noise, per sample. Default 0.05.
    public var noiseDeviation: Float = 0.05
    /// Largest shift, as a fraction of the window length. Default 0.1.
    public var maximumShiftFraction: Float = 0.1

    /// The default perturbations.
    public init() {}

    /// `copies` perturbed copies of every window of `windows` (`[n, length, channels]`), deterministic for a seed.
    ///
    /// - Returns: `[copies · n, length, channels]`, copy by copy.
    public func perturbedCopies(of windows: Tensor, seed: UInt64) -> Tensor {
        precondition(windows.rank == 3, "windows are [n, length, channels], got \(windows.shape)")
        let (count, length, channels) = (windows.shape[0], windows.shape[1], windows.shape[2])
        let maximumShift = Int(Float(length) * maximumShiftFraction)
        var generator = SeededGenerator(seed: seed ^ 0xA06_3E47)
        var out = Tensor(shape: [max(copies, 0) * count, length, channels])
        let size = length * channels
        windows.scalars.withUnsafeBufferPointer { x in
            out.scalars.withUnsafeMutableBufferPointer { y in
                for copy in 0..<max(copies, 0) {
                    for n in 0..<count {
                        let source = n * size
                        let target = (copy * count + n) * size
                        let shift =
                            maximumShift > 0
                            ? Int(generator.nextUnitFloat() * Float(2 * maximumShift + 1)) - maximumShift : 0
                        for c in 0..<channels {
                            let factor = 1 + amplitudeDeviation * generator.nextGaussian()
                            for t in 0..<length {
                                let from = Swift.min(Swift.max(t - shift, 0), length - 1)
                                y[target + t * channels + c] =
                                    factor * x[source + from * channels + c] + noiseDeviation * generator.nextGaussian()
                            }
                        }
                    }
                }
            }
        }
        return out
    }
}
