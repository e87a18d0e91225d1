import Foundation
import TandemCore
import Testing

@testable import TandemTraining

/// Training and distillation with a time budget: they end at the deadline and keep the best weights so far.
struct TrainingDeadlineTests {
    func configuration() -> TrainingConfiguration {
        var c = TrainingConfiguration()
        c.epochs = 100_000
        c.batchSize = 16
        c.learningRate = 0.01
        c.patience = 0
        c.minimumSteps = 0
        c.minimumValidationWindows = 10
        return c
    }

    @Test("training with a deadline ends within a batch of it, says so, and keeps the best epoch's weights")
    func trainingEndsAtItsDeadline() throws {
        let data = sinusoidWindows(count: 240, seed: 21)
        let network = try Network(layers: smallSpec, window: 32, channels: 2, classes: 3, seed: 5)
        let started = ContinuousClock.now
        let result = try Trainer(configuration: configuration()).train(
            network, on: data, until: started + .milliseconds(800))
        let elapsed = ContinuousClock.now - started
        #expect(result.stoppedAtDeadline)
        #expect(!result.stoppedEarly)
        #expect(result.epochsRun >= 1 && result.epochsRun < 100_000)
        // One batch and one validation pass past the deadline at most: far less than a second on this model.
        #expect(elapsed < .milliseconds(2800), "\(elapsed)")
        let best = result.history[result.bestEpoch - 1]
        // An epoch counts as better only by more than minimumImprovement, so a later one may be lower by less.
        let margin = Double(configuration().minimumImprovement)
        #expect(result.history.allSatisfy { $0.validationLoss >= best.validationLoss - margin })
        let split = Trainer.stratifiedSplit(labels: data.labels, fraction: 0.15, seed: 42)
        let restored = Trainer.evaluate(network, on: data.subset(split.validation)).loss
        #expect(abs(restored - best.validationLoss) < 1e-4, "the best epoch's weights are the ones kept")
    }

    @Test("a deadline already past still trains one batch, scores it and keeps it; no deadline runs every epoch")
    func pastDeadlineAndNone() throws {
        let data = sinusoidWindows(count: 96, seed: 22)
        var config = configuration()
        config.epochs = 3
        let network = try Network(layers: smallSpec, window: 32, channels: 2, classes: 3, seed: 5)
        let before = network.state()
        let past = try Trainer(configuration: config).train(network, on: data, until: .now - .seconds(1))
        #expect(past.stoppedAtDeadline && past.epochsRun == 1 && past.bestEpoch == 1)
        #expect(network.state() != before, "the one batch's update is kept")
        let unbounded = try Trainer(configuration: config).train(network, on: data)
        #expect(!unbounded.stoppedAtDeadline && unbounded.epochsRun == 3)
    }

    @Test("distillation with a deadline ends within a batch of it and says so")
    func distillationEndsAtItsDeadline() throws {
        let data = sinusoidWindows(count: 240, seed: 23)
        let teacherNetwork = try Network(layers: smallSpec, window: 32, channels: 2, classes: 3, seed: 1)
        var quick = configuration()
        quick.epochs = 3
        _ = try Trainer(configuration: quick).train(teacherNetwork, on: data)
        let teacher = try teacherNetwork.exportFloatModel()
        let student = try Network(layers: smallSpec, window: 32, channels: 2, classes: 3, seed: 2)
        let started = ContinuousClock.now
        let result = try Distiller(configuration: configuration(), loss: try DistillationLoss()).distil(
            student, teacher: teacher, on: data, until: started + .milliseconds(800))
        let elapsed = ContinuousClock.now - started
        #expect(result.stoppedAtDeadline && result.epochsRun >= 1 && result.epochsRun < 100_000)
        #expect(elapsed < .milliseconds(2800), "\(elapsed)")
    }
}
