import Foundation
import TandemCore

/// Trains a student network from a teacher's logits (knowledge distillation), with the same split,
/// schedule, early stopping, best-weight restore and small-data rules as `Trainer`
/// (``TrainingConfiguration/plan(labels:unlabeledWindows:)``: a raised epoch bound and no validation split on
/// a few dozen windows).
///
/// The teacher runs once over every training window before the first epoch (its logits do not change),
/// so an epoch costs the student's forward and backward pass only. Labeled windows are split per class
/// for validation; unlabeled windows only ever train, on the teacher's soft targets alone. Early stopping
/// watches the student's validation cross-entropy against the labels.
public struct Distiller {
    /// Optimizer, schedule, batch size, epochs, early stopping and seed.
    public var configuration: TrainingConfiguration
    /// Temperature and hard/soft weighting.
    public var loss: DistillationLoss

    /// Creates a distiller.
    public init(configuration: TrainingConfiguration, loss: DistillationLoss) {
        self.configuration = configuration
        self.loss = loss
    }

    /// Distils `teacher` into `student` on `data` (normalized), plus optional unlabeled windows.
    ///
    /// - Parameters:
    ///   - student: the network to train; its best-epoch weights are kept.
    ///   - teacher: the float teacher; must take the same windows and classes.
    ///   - data: labeled windows.
    ///   - unlabeled: extra windows `[n, window, channels]` without labels, or nil.
    ///   - deadline: when distillation must end: the batch under way finishes, that partial epoch is scored as
    ///     an epoch, and the best weights so far are kept. nil: no deadline. Default nil.
    ///   - progress: called after every epoch.
    /// - Throws: `ModelSpecError` for bad settings or a diverging loss, `ModelError` if the teacher does not fit.
    public func distil(
        _ student: Network, teacher: FloatModel, on data: LabeledWindows, unlabeled: Tensor? = nil,
        until deadline: ContinuousClock.Instant? = nil, progress: (EpochReport) -> Void = { _ in }
    ) throws -> TrainingResult {
        try configuration.validate()
        guard teacher.window == student.window, teacher.channels == student.channels, teacher.classes == student.classes
        else {
            throw ModelError(
                .shapeMismatch,
                "teacher takes \(teacher.window)×\(teacher.channels) → \(teacher.classes), student \(student.window)×\(student.channels) → \(student.classes)"
            )
        }
        let c = configuration
        let unlabeledCount = unlabeled.map { $0.count > 0 ? $0.shape[0] : 0 } ?? 0
        let plan = c.plan(labels: data.labels, unlabeledWindows: unlabeledCount)
        var windows = data.windows.gathering(plan.training)
        var labels: [Int?] = plan.training.map { data.labels[$0] }
        if let unlabeled, unlabeledCount > 0 {
            guard unlabeled.rank == 3, unlabeled.shape[1] == data.length, unlabeled.shape[2] == data.channels else {
                throw ModelError(
                    .badInput,
                    "unlabeled windows have shape \(unlabeled.shape), need [n, \(data.length), \(data.channels)]")
            }
            windows = Tensor(
                shape: [windows.shape[0] + unlabeled.shape[0], data.length, data.channels],
                scalars: windows.scalars + unlabeled.scalars)
            labels += [Int?](repeating: nil, count: unlabeled.shape[0])
        }
        let validationSet = plan.validation.isEmpty ? nil : data.subset(plan.validation)
        let teacherLogits = try teacher.logits(for: windows)
        let count = labels.count
        let optimizer = Optimizer(kind: c.optimizer, momentum: c.momentum, weightDecay: c.weightDecay)
        var generator = SeededGenerator(seed: c.seed &+ 1)
        var order = Array(0..<count)
        var history = [EpochReport]()
        var best = (loss: Double.infinity, epoch: 0, state: student.state())
        var stale = 0
        var stoppedEarly = false
        var outOfTime = false
        let started = Date()
        student.zeroGradients()
        for epoch in 0..<plan.epochs {
            let epochStart = Date()
            let rate = c.schedule.rate(base: c.learningRate, epoch: epoch, epochs: plan.epochs)
            order.shuffle(using: &generator)
            var lossSum = 0.0
            var seen = 0
            var start = 0
            while start < count {
                let indices = Array(order[start..<Swift.min(start + c.batchSize, count)])
                start += c.batchSize
                // A batch of one breaks batch-norm statistics; the remainder waits for the next epoch.
                if indices.count < 2 && count >= 2 { continue }
                let logits = student.forward(windows.gathering(indices), training: true)
                let (value, gradient) = loss.lossAndGradient(
                    student: logits, teacher: teacherLogits.gathering(indices), labels: indices.map { labels[$0] })
                guard value.isFinite else {
                    throw ModelSpecError(
                        key: "training",
                        message: "distillation loss became \(value) at epoch \(epoch + 1); lower training.learning_rate"
                    )
                }
                student.backward(gradient)
                optimizer.update(student.parameters, rate: rate)
                lossSum += Double(value) * Double(indices.count)
                seen += indices.count
                if let deadline, ContinuousClock.now >= deadline {
                    outOfTime = true
                    break
                }
            }
            let trainLoss = lossSum / Double(Swift.max(seen, 1))
            var validationLoss = trainLoss
            var validationAccuracy: Double?
            if let validationSet {
                let (value, report) = Trainer.evaluate(student, on: validationSet)
                validationLoss = value
                validationAccuracy = report.accuracy
            }
            let improved = validationLoss < best.loss - Double(c.minimumImprovement)
            if improved {
                best = (validationLoss, epoch + 1, student.state())
                stale = 0
            } else {
                stale += 1
            }
            let elapsed = Date().timeIntervalSince(started)
            let report = EpochReport(
                epoch: epoch + 1, epochs: plan.epochs, loss: trainLoss, validationLoss: validationLoss,
                validationAccuracy: validationAccuracy, learningRate: Double(rate),
                samplesPerSecond: Double(seen) / Swift.max(Date().timeIntervalSince(epochStart), 1e-9),
                secondsRemaining: elapsed / Double(epoch + 1) * Double(plan.epochs - epoch - 1), improved: improved)
            history.append(report)
            progress(report)
            if outOfTime { break }
            if plan.patience > 0 && stale >= plan.patience {
                stoppedEarly = true
                break
            }
        }
        student.restore(best.state)
        let validation = validationSet.map { Trainer.evaluate(student, on: $0).report }
        return TrainingResult(
            bestEpoch: best.epoch, epochsRun: history.count, stoppedEarly: stoppedEarly, history: history,
            validation: validation, stoppedAtDeadline: outOfTime)
    }
}
