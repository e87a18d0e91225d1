/// How class imbalance is handled in the loss.
public enum ClassWeighting: String, Codable, Sendable, CaseIterable {
    /// Every window counts the same.
    case none
    /// Each class weighs `count / (classes · classCount)`, so rare classes count as much as common ones.
    case balanced
}

/// Every setting of a training run, with defaults meant to hold on data nobody has tuned for.
///
/// The defaults follow the FCN reference setup (Adam, learning rate 1e-3) with early stopping on the
/// validation loss, so the epoch count is an upper bound rather than something to tune.
public struct TrainingConfiguration: Codable, Sendable, Equatable {
    /// Upper bound on passes over the training data (early stopping usually ends sooner). Default 100.
    ///
    /// Small data sets get more: see `minimumSteps`.
    public var epochs = 100
    /// The epoch bound is raised (up to 2,000 epochs) until training may take at least this many optimizer
    /// steps, so a set of a few dozen windows (two steps an epoch) still trains long enough. 0 keeps
    /// `epochs` exact. Default 3,000.
    public var minimumSteps = 3000
    /// Below this many validation windows the stratified split is not made: every window trains and
    /// early stopping watches the training loss (a handful of validation windows would make it stop on
    /// noise). Default 30.
    public var minimumValidationWindows = 30
    /// Windows per mini-batch. Default 16.
    public var batchSize = 16
    /// Update rule. Default Adam.
    public var optimizer = OptimizerKind.adam
    /// Base learning rate. Default 1e-3.
    public var learningRate: Float = 1e-3
    /// SGD momentum / Adam β₁. Default 0.9.
    public var momentum: Float = 0.9
    /// Weight decay on weights (not biases or batch-norm parameters). Default 1e-4.
    public var weightDecay: Float = 1e-4
    /// Learning-rate schedule over `epochs`. Default cosine annealing to 1 % of the base rate.
    public var schedule = LearningRateSchedule.cosine(floor: 1e-5)
    /// Fraction of the training windows held out, per class, for validation and early stopping. Default 0.15.
    public var validationFraction: Float = 0.15
    /// Epochs without a validation-loss improvement before training stops; 0 disables. Default 10.
    public var patience = 10
    /// Smallest validation-loss decrease that counts as an improvement. Default 1e-4.
    public var minimumImprovement: Float = 1e-4
    /// Loss weighting per class. Default none.
    public var classWeighting = ClassWeighting.none
    /// Seed for initialization, splits, shuffling and dropout. Default 42.
    public var seed: UInt64 = 42

    /// The defaults.
    public init() {}

    enum CodingKeys: String, CodingKey {
        case epochs, batchSize = "batch_size", optimizer, learningRate = "learning_rate", momentum
        case weightDecay = "weight_decay", schedule, validationFraction = "validation_fraction", patience
        case minimumImprovement = "minimum_improvement", classWeighting = "class_weighting", seed
        case minimumSteps = "minimum_steps", minimumValidationWindows = "minimum_validation_windows"
    }

    /// The epoch bound for a data set that gives `stepsPerEpoch` optimizer steps an epoch.
    public func epochBound(stepsPerEpoch: Int) -> Int {
        guard minimumSteps > 0 else { return epochs }
        let needed = (minimumSteps + max(stepsPerEpoch, 1) - 1) / max(stepsPerEpoch, 1)
        return max(epochs, min(needed, 2000))
    }

    /// How one run uses its data: which windows train and which validate, the epoch bound and the patience.
    ///
    /// Training and distillation both follow it, so the small-data rules hold for both: the stratified split is
    /// made only when it yields at least ``minimumValidationWindows`` windows, the epoch bound is raised to
    /// ``minimumSteps`` optimizer steps (``epochBound(stepsPerEpoch:)``), and without a validation split the
    /// training loss decides with a patience of at least a tenth of the epochs.
    ///
    /// - Parameters:
    ///   - labels: the labels of the labeled windows, in order.
    ///   - unlabeledWindows: extra windows that only ever train (distillation's unlabeled data).
    public func plan(labels: [Int], unlabeledWindows: Int = 0) -> TrainingPlan {
        var split = (train: Array(labels.indices), validation: [Int]())
        if validationFraction > 0 {
            let stratified = Trainer.stratifiedSplit(labels: labels, fraction: validationFraction, seed: seed)
            if stratified.validation.count >= minimumValidationWindows { split = stratified }
        }
        let windows = split.train.count + unlabeledWindows
        let epochs = epochBound(stepsPerEpoch: max(1, windows / batchSize))
        let patience = split.validation.isEmpty && self.patience > 0 ? max(self.patience, epochs / 10) : self.patience
        return TrainingPlan(training: split.train, validation: split.validation, epochs: epochs, patience: patience)
    }

    /// Decodes a `training:` section; absent keys keep their defaults.
    public init(from decoder: any Decoder) throws {
        self.init()
        let c = try decoder.container(keyedBy: CodingKeys.self)
        epochs = try c.decodeIfPresent(Int.self, forKey: .epochs) ?? epochs
        batchSize = try c.decodeIfPresent(Int.self, forKey: .batchSize) ?? batchSize
        optimizer = try c.decodeIfPresent(OptimizerKind.self, forKey: .optimizer) ?? optimizer
        learningRate = try c.decodeIfPresent(Float.self, forKey: .learningRate) ?? learningRate
        momentum = try c.decodeIfPresent(Float.self, forKey: .momentum) ?? momentum
        weightDecay = try c.decodeIfPresent(Float.self, forKey: .weightDecay) ?? weightDecay
        if let text = try c.decodeIfPresent(String.self, forKey: .schedule) {
            do {
                schedule = try LearningRateSchedule(parsing: text)
            } catch let error as ModelSpecError {
                throw DecodingError.dataCorruptedError(forKey: .schedule, in: c, debugDescription: error.message)
            }
        }
        validationFraction = try c.decodeIfPresent(Float.self, forKey: .validationFraction) ?? validationFraction
        patience = try c.decodeIfPresent(Int.self, forKey: .patience) ?? patience
        minimumImprovement = try c.decodeIfPresent(Float.self, forKey: .minimumImprovement) ?? minimumImprovement
        classWeighting = try c.decodeIfPresent(ClassWeighting.self, forKey: .classWeighting) ?? classWeighting
        seed = try c.decodeIfPresent(UInt64.self, forKey: .seed) ?? seed
        minimumSteps = try c.decodeIfPresent(Int.self, forKey: .minimumSteps) ?? minimumSteps
        minimumValidationWindows =
            try c.decodeIfPresent(Int.self, forKey: .minimumValidationWindows) ?? minimumValidationWindows
    }

    /// Checks ranges; the error names the key.
    public func validate() throws {
        func fail(_ key: String, _ why: String) -> ModelSpecError {
            ModelSpecError(key: "training.\(key)", message: why)
        }
        guard epochs >= 1 else { throw fail("epochs", "must be at least 1, got \(epochs)") }
        guard batchSize >= 1 else { throw fail("batch_size", "must be at least 1, got \(batchSize)") }
        guard learningRate > 0, learningRate.isFinite else { throw fail("learning_rate", "must be positive") }
        guard (0..<1).contains(momentum) else { throw fail("momentum", "must be in [0, 1)") }
        guard weightDecay >= 0 else { throw fail("weight_decay", "must not be negative") }
        guard (0..<1).contains(validationFraction) else { throw fail("validation_fraction", "must be in [0, 1)") }
        guard patience >= 0 else { throw fail("patience", "must not be negative") }
        guard minimumSteps >= 0 else { throw fail("minimum_steps", "must not be negative") }
        guard minimumValidationWindows >= 0 else { throw fail("minimum_validation_windows", "must not be negative") }
    }
}

extension LearningRateSchedule {
    /// Parses `constant`, `step:EVERY:FACTOR`, `cosine[:FLOOR]` or `inverse_time:DECAY`.
    public init(parsing text: String) throws {
        let parts = text.split(separator: ":").map(String.init)
        func number(_ i: Int) throws -> Float {
            guard i < parts.count, let v = Float(parts[i]) else {
                throw ModelSpecError(
                    key: "training.schedule",
                    message:
                        "cannot read `\(text)`; use constant, step:EVERY:FACTOR, cosine[:FLOOR] or inverse_time:DECAY")
            }
            return v
        }
        switch parts.first {
        case "constant": self = .constant
        case "step": self = .step(every: Int(try number(1)), factor: try number(2))
        case "cosine": self = .cosine(floor: parts.count > 1 ? try number(1) : 1e-5)
        case "inverse_time": self = .inverseTime(decay: try number(1))
        default:
            throw ModelSpecError(
                key: "training.schedule",
                message:
                    "unknown schedule `\(text)`; use constant, step:EVERY:FACTOR, cosine[:FLOOR] or inverse_time:DECAY")
        }
    }
}

/// What ``TrainingConfiguration/plan(labels:unlabeledWindows:)`` decided for one data set.
public struct TrainingPlan: Sendable, Equatable {
    /// Indices of the labeled windows that train, ascending.
    public var training: [Int]
    /// Indices of the labeled windows that validate, ascending; empty when the split was not made.
    public var validation: [Int]
    /// The epoch bound, raised on small data.
    public var epochs: Int
    /// Epochs without improvement before stopping (0: never).
    public var patience: Int
}
