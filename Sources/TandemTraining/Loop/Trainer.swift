import Foundation
import TandemCore

/// One line of training progress, reported after every epoch.
public struct EpochReport: Codable, Sendable {
    /// 1-based epoch number.
    public var epoch: Int
    /// Upper bound on epochs.
    public var epochs: Int
    /// Mean training loss over the epoch.
    public var loss: Double
    /// Validation loss (training loss when there is no validation split).
    public var validationLoss: Double
    /// Validation accuracy, if there is a validation split.
    public var validationAccuracy: Double?
    /// Learning rate used this epoch.
    public var learningRate: Double
    /// Training throughput this epoch.
    public var samplesPerSecond: Double
    /// Estimated time left if every remaining epoch runs; early stopping may end sooner.
    public var secondsRemaining: Double
    /// Whether this epoch set a new best validation loss.
    public var improved: Bool

    /// A one-line human summary.
    public var line: String {
        var s =
            "epoch \(epoch)/\(epochs)  loss \(String(format: "%.4f", loss))  val_loss \(String(format: "%.4f", validationLoss))"
        if let a = validationAccuracy { s += "  val_acc \(String(format: "%.2f%%", a * 100))" }
        s += "  lr \(String(format: "%.2e", learningRate))  \(Int(samplesPerSecond)) samples/s"
        s += "  ETA ≤ \(Self.duration(secondsRemaining))"
        if improved { s += "  *" }
        return s
    }

    static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 60 ? "\(s / 60)m\(String(format: "%02d", s % 60))s" : "\(s)s"
    }
}

/// What a training run produced.
public struct TrainingResult: Sendable {
    /// The epoch whose weights were kept (best validation loss).
    public var bestEpoch: Int
    /// Epochs actually run.
    public var epochsRun: Int
    /// Whether early stopping ended the run.
    public var stoppedEarly: Bool
    /// Every epoch's report.
    public var history: [EpochReport]
    /// Validation metrics of the kept weights, if there was a validation split.
    public var validation: ClassificationReport?
    /// Whether the run ended at its deadline (mid-epoch: that partial epoch was scored like a whole one).
    public var stoppedAtDeadline = false
}

/// Mini-batch training with a stratified validation split, early stopping and best-weight restore.
public struct Trainer {
    /// The settings.
    public var configuration: TrainingConfiguration

    /// Creates a trainer.
    public init(configuration: TrainingConfiguration) {
        self.configuration = configuration
    }

    /// Splits indices per class: about `fraction` of each class goes to validation. Deterministic for a seed.
    public static func stratifiedSplit(labels: [Int], fraction: Float, seed: UInt64) -> (
        train: [Int], validation: [Int]
    ) {
        var generator = SeededGenerator(seed: seed ^ 0x5EED_5EED)
        var byClass = [Int: [Int]]()
        for (i, label) in labels.enumerated() { byClass[label, default: []].append(i) }
        var train = [Int](), validation = [Int]()
        for label in byClass.keys.sorted() {
            var members = byClass[label]!
            generator.shuffle(&members)
            // Keep at least one window of each class for training.
            let held = min(Int((Float(members.count) * fraction).rounded()), max(members.count - 1, 0))
            validation += members[0..<held]
            train += members[held...]
        }
        return (train.sorted(), validation.sorted())
    }

    /// Class weights for the configured weighting, from training labels.
    public func classWeights(labels: [Int], classes: Int) -> [Float]? {
        guard configuration.classWeighting == .balanced else { return nil }
        var counts = [Int](repeating: 0, count: classes)
        for l in labels { counts[l] += 1 }
        return counts.map { $0 == 0 ? 0 : Float(labels.count) / Float(classes * $0) }
    }

    /// Trains `network` on `data` (already normalized) and restores the best epoch's weights.
    ///
    /// - Parameters:
    ///   - deadline: when training must end: the batch under way finishes, that partial epoch is scored as an
    ///     epoch, and the best weights so far are kept. nil: no deadline. Default nil.
    ///   - progress: called after every epoch, on the calling thread.
    public func train(
        _ network: Network, on data: LabeledWindows, until deadline: ContinuousClock.Instant? = nil,
        progress: (EpochReport) -> Void = { _ in }
    ) throws -> TrainingResult {
        try configuration.validate()
        let c = configuration
        let plan = c.plan(labels: data.labels)
        let trainSet = data.subset(plan.training)
        let validationSet = plan.validation.isEmpty ? nil : data.subset(plan.validation)
        let weights = classWeights(labels: trainSet.labels, classes: data.classNames.count)
        let optimizer = Optimizer(kind: c.optimizer, momentum: c.momentum, weightDecay: c.weightDecay)
        var generator = SeededGenerator(seed: c.seed &+ 1)
        var order = Array(0..<trainSet.count)
        var history = [EpochReport]()
        var best = (loss: Double.infinity, epoch: 0, state: network.state())
        var stale = 0
        var stoppedEarly = false
        var outOfTime = false
        let epochs = plan.epochs
        let patience = plan.patience
        let started = Date()
        network.zeroGradients()
        for epoch in 0..<epochs {
            let epochStart = Date()
            let rate = c.schedule.rate(base: c.learningRate, epoch: epoch, epochs: epochs)
            generator.shuffle(&order)
            var lossSum = 0.0
            var seen = 0
            var start = 0
            while start < order.count {
                let indices = Array(order[start..<min(start + c.batchSize, order.count)])
                start += c.batchSize
                // A batch of one breaks batch-norm statistics; fold the remainder into the next epoch.
                if indices.count < 2 && order.count >= 2 { continue }
                let batch = trainSet.subset(indices)
                let logits = network.forward(batch.windows, training: true)
                let (loss, gradient) = CrossEntropy.lossAndGradient(
                    logits: logits, labels: batch.labels, classWeights: weights)
                guard loss.isFinite else {
                    throw ModelSpecError(
                        key: "training",
                        message: "loss became \(loss) at epoch \(epoch + 1); lower training.learning_rate")
                }
                network.backward(gradient)
                optimizer.update(network.parameters, rate: rate)
                lossSum += Double(loss) * Double(indices.count)
                seen += indices.count
                if let deadline, ContinuousClock.now >= deadline {
                    outOfTime = true
                    break
                }
            }
            let trainLoss = lossSum / Double(max(seen, 1))
            var validationLoss = trainLoss
            var validationAccuracy: Double?
            if let validationSet {
                let (loss, report) = Self.evaluate(network, on: validationSet, classWeights: weights)
                validationLoss = loss
                validationAccuracy = report.accuracy
            }
            let improved = validationLoss < best.loss - Double(c.minimumImprovement)
            if improved {
                best = (validationLoss, epoch + 1, network.state())
                stale = 0
            } else {
                stale += 1
            }
            let elapsed = Date().timeIntervalSince(started)
            let report = EpochReport(
                epoch: epoch + 1, epochs: epochs, loss: trainLoss, validationLoss: validationLoss,
                validationAccuracy: validationAccuracy, learningRate: Double(rate),
                samplesPerSecond: Double(seen) / max(Date().timeIntervalSince(epochStart), 1e-9),
                secondsRemaining: elapsed / Double(epoch + 1) * Double(epochs - epoch - 1), improved: improved)
            history.append(report)
            progress(report)
            if outOfTime { break }
            if patience > 0 && stale >= patience {
                stoppedEarly = true
                break
            }
        }
        network.restore(best.state)
        let validation = validationSet.map { Self.evaluate(network, on: $0, classWeights: weights).1 }
        return TrainingResult(
            bestEpoch: best.epoch, epochsRun: history.count, stoppedEarly: stoppedEarly, history: history,
            validation: validation, stoppedAtDeadline: outOfTime)
    }

    /// Loss and metrics of `network` in inference mode on `data`.
    public static func evaluate(
        _ network: Network, on data: LabeledWindows, classWeights: [Float]? = nil
    ) -> (loss: Double, report: ClassificationReport) {
        var lossSum = 0.0
        var predictions = [Int]()
        predictions.reserveCapacity(data.count)
        var start = 0
        let chunk = 256
        while start < data.count {
            let indices = Array(start..<min(start + chunk, data.count))
            let batch = data.subset(indices)
            let logits = network.forward(batch.windows, training: false)
            let (loss, _) = CrossEntropy.lossAndGradient(
                logits: logits, labels: batch.labels, classWeights: classWeights)
            lossSum += Double(loss) * Double(indices.count)
            predictions += logits.argmaxRows()
            start += chunk
        }
        return (
            lossSum / Double(max(data.count, 1)),
            ClassificationReport(labels: data.labels, predictions: predictions, classNames: data.classNames)
        )
    }
}
