import Foundation
import TandemCore
import Testing

@testable import TandemTraining

struct PruningTests {
    let spec: [LayerSpec] = [
        LayerSpec(type: .conv1d, filters: 8, kernel: 5, stride: 2, padding: .same), LayerSpec(type: .batchnorm1d),
        LayerSpec(type: .relu), LayerSpec(type: .conv1d, filters: 6, kernel: 3, padding: .same),
        LayerSpec(type: .batchnorm1d),
        LayerSpec(type: .relu), LayerSpec(type: .globalavgpool1d), LayerSpec(type: .dense, units: 5),
        LayerSpec(type: .relu),
        LayerSpec(type: .dense),
    ]

    @Test("removing dead filters by batch-norm scale leaves the network's function unchanged and shrinks it")
    func deadFiltersRemovedExactly() throws {
        let network = try Network(layers: spec, window: 32, channels: 2, classes: 3, seed: 3)
        var state = network.state()
        // Filters 1 and 6 of the first conv and filter 2 of the second output exactly zero after BN + ReLU.
        for (layer, unit) in [(1, 1), (1, 6), (4, 2)] {
            state["\(layer).gamma"]!.scalars[unit] = 0
            state["\(layer).beta"]!.scalars[unit] = 0
        }
        network.restore(state)
        let x = sinusoidWindows(count: 10, seed: 4).windows
        let sparsity: Float = 0.2  // 8 → 6 and 6 → 5 (rounded), the dead ones having γ = 0; dense 5 → 4.
        let (pruned, report) = try StructuredPruner(criterion: .batchNormScale, target: .sparsity(sparsity)).prune(
            network)
        // The hidden dense layer also loses its weakest unit, which is not dead: compare the features entering it.
        #expect(report.units["0"] == [8, 6])
        #expect(report.units["3"] == [6, 5])
        #expect(pruned.specs[0].filters == 6 && pruned.specs[3].filters == 5)
        // Features entering the dense layers must be identical for the kept channels.
        let featuresBefore = Array(network.layers[0...6]).reduce(x) { $1.forward($0, training: false) }
        let featuresAfter = Array(pruned.layers[0...6]).reduce(x) { $1.forward($0, training: false) }
        let keptChannels = [0, 1, 3, 4, 5]
        var worst: Float = 0
        for n in 0..<10 {
            for (j, c) in keptChannels.enumerated() {
                worst = max(worst, abs(featuresBefore.scalars[n * 6 + c] - featuresAfter.scalars[n * 5 + j]))
            }
            #expect(abs(featuresBefore.scalars[n * 6 + 2]) < 1e-7)
        }
        #expect(worst < 1e-5, "largest feature difference \(worst)")
        #expect(report.parametersAfter == pruned.parameterCount && report.parametersAfter < report.parametersBefore)
        #expect(report.macsAfter < report.macsBefore)
    }

    @Test("with only dead filters pruned the logits are unchanged")
    func logitsUnchanged() throws {
        let small: [LayerSpec] = [
            LayerSpec(type: .conv1d, filters: 4, kernel: 3, padding: .same), LayerSpec(type: .batchnorm1d),
            LayerSpec(type: .relu), LayerSpec(type: .globalavgpool1d), LayerSpec(type: .dense),
        ]
        let network = try Network(layers: small, window: 16, channels: 2, classes: 3, seed: 5)
        var state = network.state()
        state["1.gamma"]!.scalars[2] = 0
        state["1.beta"]!.scalars[2] = 0
        network.restore(state)
        let x = sinusoidWindows(count: 8, window: 16, seed: 6).windows
        let (pruned, _) = try StructuredPruner(criterion: .batchNormScale, target: .sparsity(0.25)).prune(network)
        let a = network.forward(x, training: false), b = pruned.forward(x, training: false)
        #expect(zip(a.scalars, b.scalars).allSatisfy { abs($0 - $1) < 1e-5 })
        #expect(try pruned.exportFloatModel().macsPerWindow < network.exportFloatModel().macsPerWindow)
    }

    @Test("a MAC budget is met by removing units across layers, and fine-tuning recovers accuracy")
    func macBudgetAndFineTune() throws {
        let train = sinusoidWindows(count: 240, seed: 7)
        let test = sinusoidWindows(count: 150, seed: 8)
        let network = try Network(layers: spec, window: 32, channels: 2, classes: 3, seed: 9)
        var config = TrainingConfiguration()
        config.minimumSteps = 0
        config.epochs = 12
        config.learningRate = 0.01
        config.patience = 0
        _ = try Trainer(configuration: config).train(network, on: train)
        let before = try StructuredPruner.macs(network.specs, window: 32, channels: 2, classes: 3)
        let budget = before / 2
        let (pruned, report) = try StructuredPruner(criterion: .l1, target: .macBudget(budget)).prune(network)
        #expect(report.macsAfter <= budget && report.macsBefore == before)
        #expect(try pruned.exportFloatModel().macsPerWindow == report.macsAfter)
        config.epochs = 8
        _ = try Trainer(configuration: config).train(pruned, on: train)
        let accuracy = Trainer.evaluate(pruned, on: test).report.accuracy
        #expect(accuracy >= 0.9, "accuracy after pruning and fine-tuning \(accuracy)")
        #expect(throws: ModelSpecError.self) { try StructuredPruner(target: .sparsity(1)).prune(network) }
    }
}
