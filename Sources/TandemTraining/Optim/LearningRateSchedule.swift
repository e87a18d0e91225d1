import Foundation

/// How the learning rate changes over training.
public enum LearningRateSchedule: Codable, Sendable, Equatable {
    /// The base rate throughout.
    case constant
    /// Multiply by `factor` every `every` epochs.
    case step(every: Int, factor: Float)
    /// Cosine annealing from the base rate to `floor` over the planned epochs (Loshchilov & Hutter 2017).
    case cosine(floor: Float)
    /// Inverse-time decay `rate / (1 + decay · epoch)`.
    case inverseTime(decay: Float)

    /// The rate for `epoch` (0-based) of `epochs`.
    public func rate(base: Float, epoch: Int, epochs: Int) -> Float {
        switch self {
        case .constant:
            return base
        case .step(let every, let factor):
            return base * powf(factor, Float(epoch / max(every, 1)))
        case .cosine(let floor):
            let progress = Float(epoch) / Float(max(epochs - 1, 1))
            return floor + (base - floor) * 0.5 * (1 + cosf(.pi * progress))
        case .inverseTime(let decay):
            return base / (1 + decay * Float(epoch))
        }
    }
}
