import Foundation
import TandemCore
import Testing

@testable import TandemTraining

struct NetworkFromModelTests {
    @Test("a network rebuilt from an exported model computes the same logits and fine-tunes further")
    func rebuildsAndTrains() throws {
        let train = sinusoidWindows(count: 120, seed: 31)
        var config = TrainingConfiguration()
        config.minimumSteps = 0
        config.epochs = 3
        config.learningRate = 0.01
        config.patience = 0
        let original = try Network(layers: smallSpec, window: 32, channels: 2, classes: 3, seed: 3)
        _ = try Trainer(configuration: config).train(original, on: train)
        let exported = try original.exportFloatModel()
        let rebuilt = try Network(model: exported, seed: 9)
        let a = try exported.logits(for: train.windows)
        let b = rebuilt.forward(train.windows, training: false)
        let worst = zip(a.scalars, b.scalars).map { abs($0 - $1) }.max() ?? .infinity
        #expect(worst < 1e-4, "largest logit difference \(worst)")

        let before = Trainer.evaluate(rebuilt, on: train).loss
        config.learningRate = 1e-3
        _ = try Trainer(configuration: config).train(rebuilt, on: train)
        #expect(Trainer.evaluate(rebuilt, on: train).loss < before, "fine-tuning lowers the training loss")
    }

}
