import Foundation
import TandemCore
import Testing

@testable import TandemTraining

/// A tiny labeled set: each class is a sinusoid of its own frequency with random phase and noise.
func sinusoidWindows(count: Int, window: Int = 32, channels: Int = 2, classes: Int = 3, seed: UInt64) -> LabeledWindows
{
    var g = SeededGenerator(seed: seed)
    var x = Tensor(shape: [count, window, channels])
    var labels = [Int]()
    for n in 0..<count {
        let label = n % classes
        labels.append(label)
        let frequency = Float(label + 1) * 2 * .pi / Float(window) * 2
        let phase = g.nextUnitFloat() * 2 * .pi
        for t in 0..<window {
            for c in 0..<channels {
                x.scalars[(n * window + t) * channels + c] =
                    sinf(frequency * Float(t) + phase + Float(c)) + 0.3 * g.nextGaussian()
            }
        }
    }
    return LabeledWindows(windows: x, labels: labels, classNames: (0..<classes).map { "class\($0)" })
}

/// A network of `layers` trained for 15 epochs (learning rate 0.01, no early stop) on `train`: the quantization
/// tests' float models.
func trainedNetwork(_ layers: [LayerSpec], on train: LabeledWindows, seed: UInt64) throws -> Network {
    let network = try Network(layers: layers, window: 32, channels: 2, classes: 3, seed: seed)
    var config = TrainingConfiguration()
    config.minimumSteps = 0
    config.epochs = 15
    config.learningRate = 0.01
    config.patience = 0
    _ = try Trainer(configuration: config).train(network, on: train)
    return network
}

let smallSpec: [LayerSpec] = [
    LayerSpec(type: .conv1d, filters: 8, kernel: 5, stride: 2, padding: .same),
    LayerSpec(type: .batchnorm1d),
    LayerSpec(type: .relu),
    LayerSpec(type: .conv1d, filters: 8, kernel: 3, padding: .same),
    LayerSpec(type: .batchnorm1d),
    LayerSpec(type: .relu),
    LayerSpec(type: .dropout, rate: 0.1),
    LayerSpec(type: .globalavgpool1d),
    LayerSpec(type: .dense),
]

struct TrainingTests {
    func quickConfiguration(_ optimizer: OptimizerKind = .adam) -> TrainingConfiguration {
        var c = TrainingConfiguration()
        c.epochs = 15
        c.batchSize = 16
        c.optimizer = optimizer
        c.learningRate = optimizer == .adam ? 0.01 : 0.05
        c.patience = 0
        c.minimumSteps = 0
        return c
    }

    @Test("training learns a separable task with either optimizer", arguments: [OptimizerKind.adam, .sgd])
    func learns(optimizer: OptimizerKind) throws {
        let train = sinusoidWindows(count: 240, seed: 1)
        let test = sinusoidWindows(count: 90, seed: 2)
        let network = try Network(layers: smallSpec, window: 32, channels: 2, classes: 3, seed: 7)
        let before = Trainer.evaluate(network, on: test).report.accuracy
        let result = try Trainer(configuration: quickConfiguration(optimizer)).train(network, on: train)
        let after = Trainer.evaluate(network, on: test).report.accuracy
        #expect(after >= 0.9, "test accuracy \(after) (was \(before))")
        #expect(result.history.first!.loss > result.history.last!.loss)
    }

    @Test("same seed, data and threads give bit-identical weights; another seed does not")
    func determinism() throws {
        let data = sinusoidWindows(count: 96, seed: 3)
        var config = quickConfiguration()
        config.epochs = 3
        func run(_ seed: UInt64) throws -> [String: Tensor] {
            config.seed = seed
            let network = try Network(layers: smallSpec, window: 32, channels: 2, classes: 3, seed: seed)
            _ = try Trainer(configuration: config).train(network, on: data)
            return network.state()
        }
        let a = try run(11), b = try run(11), c = try run(12)
        #expect(a == b)
        #expect(a != c)
    }

    @Test("early stopping ends the run and restores the best epoch")
    func earlyStopping() throws {
        let data = sinusoidWindows(count: 120, seed: 4)
        var config = quickConfiguration()
        config.epochs = 200
        config.patience = 3
        config.minimumValidationWindows = 10
        config.learningRate = 0.05
        let network = try Network(layers: smallSpec, window: 32, channels: 2, classes: 3, seed: 1)
        let result = try Trainer(configuration: config).train(network, on: data)
        #expect(result.stoppedEarly)
        #expect(result.epochsRun < 200)
        #expect(result.epochsRun == result.bestEpoch + 3)
        let bestLoss = result.history[result.bestEpoch - 1].validationLoss
        let restoredLoss = Trainer.evaluate(
            network,
            on: data.subset(Trainer.stratifiedSplit(labels: data.labels, fraction: 0.15, seed: config.seed).validation)
        ).loss
        #expect(abs(restoredLoss - bestLoss) < 1e-4)
    }

    @Test("small data sets get enough optimizer steps; an explicit bound stays exact")
    func epochBound() {
        var config = TrainingConfiguration()
        #expect(config.epochBound(stepsPerEpoch: 400) == 100)
        #expect(config.epochBound(stepsPerEpoch: 2) == 1500)
        #expect(config.epochBound(stepsPerEpoch: 1) == 2000)
        config.minimumSteps = 0
        #expect(config.epochBound(stepsPerEpoch: 2) == 100)
    }

    @Test("too few windows for a validation split: all of them train and the training loss stops the run")
    func tinyDataSkipsValidation() throws {
        let data = sinusoidWindows(count: 36, seed: 8)
        var config = quickConfiguration()
        config.epochs = 12
        config.patience = 5
        let network = try Network(layers: smallSpec, window: 32, channels: 2, classes: 3, seed: 2)
        let result = try Trainer(configuration: config).train(network, on: data)
        #expect(result.validation == nil)
        #expect(result.history.allSatisfy { $0.validationAccuracy == nil && $0.validationLoss == $0.loss })
        config.minimumSteps = 60
        let longer = try Trainer(configuration: config).train(
            try Network(layers: smallSpec, window: 32, channels: 2, classes: 3, seed: 2), on: data)
        #expect(longer.history.first?.epochs == 30, "36 windows at batch 16 is 2 steps an epoch")
    }

    @Test("stratified split keeps class proportions and loses no window")
    func stratifiedSplit() {
        let labels = Array(repeating: 0, count: 80) + Array(repeating: 1, count: 20)
        let (train, validation) = Trainer.stratifiedSplit(labels: labels, fraction: 0.2, seed: 5)
        #expect(Set(train + validation) == Set(0..<100))
        #expect(validation.filter { labels[$0] == 0 }.count == 16)
        #expect(validation.filter { labels[$0] == 1 }.count == 4)
    }

    @Test("balanced class weights are inverse to class frequency")
    func classWeights() {
        var config = TrainingConfiguration()
        config.classWeighting = .balanced
        let weights = Trainer(configuration: config).classWeights(labels: [0, 0, 0, 1], classes: 2)!
        #expect(abs(weights[0] - 4.0 / 6.0) < 1e-6)
        #expect(abs(weights[1] - 2.0) < 1e-6)
    }

    @Test("exported model with folded batch norm matches the network in inference mode")
    func foldedExportMatches() throws {
        let data = sinusoidWindows(count: 64, seed: 6)
        var config = quickConfiguration()
        config.epochs = 2
        let network = try Network(layers: smallSpec, window: 32, channels: 2, classes: 3, seed: 3)
        _ = try Trainer(configuration: config).train(network, on: data)
        let model = try network.exportFloatModel()
        #expect(!model.architecture.contains { $0.type == .batchnorm1d || $0.type == .dropout })
        let expected = network.forward(data.windows, training: false)
        let actual = try model.logits(for: data.windows)
        let worst = zip(expected.scalars, actual.scalars).map { abs($0 - $1) }.max()!
        #expect(worst < 1e-4, "largest difference \(worst)")
    }

    @Test("learning-rate schedules follow their formulas")
    func schedules() throws {
        #expect(LearningRateSchedule.step(every: 10, factor: 0.5).rate(base: 1, epoch: 25, epochs: 100) == 0.25)
        #expect(abs(LearningRateSchedule.cosine(floor: 0).rate(base: 1, epoch: 99, epochs: 100)) < 1e-6)
        #expect(LearningRateSchedule.inverseTime(decay: 1).rate(base: 1, epoch: 3, epochs: 10) == 0.25)
        #expect(try LearningRateSchedule(parsing: "step:5:0.1") == .step(every: 5, factor: 0.1))
        #expect(throws: ModelSpecError.self) { try LearningRateSchedule(parsing: "warmup") }
    }
}

struct ModelSpecFileTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    @Test("the shipped full and edge specs load, fit a 128 × 4 window and the edge one stays under 20k parameters")
    func shippedSpecs() throws {
        let full = try ModelSpecFile.load(contentsOf: Self.root.appendingPathComponent("cloud-config/models/full.yaml"))
        let edge = try ModelSpecFile.load(contentsOf: Self.root.appendingPathComponent("cloud-config/models/edge.yaml"))
        let fullNet = try Network(layers: full.layers, window: 128, channels: 4, classes: 5, seed: 1)
        let edgeNet = try Network(layers: edge.layers, window: 128, channels: 4, classes: 5, seed: 1)
        #expect(fullNet.parameterCount > 250_000)
        #expect(edgeNet.parameterCount <= 20_000)
        #expect(full.training?.patience == 10)
    }

    @Test(
        "spec mistakes are rejected with the key that is wrong",
        arguments: [
            ("name: x\nlayers:\n  - {type: conv1d, kernel: 3}\n", "layers[0].filters"),
            ("name: x\nlayers:\n  - {type: relu, kernel: 3}\n", "layers[0].kernel"),
            ("name: x\nlayers:\n  - {type: conv1d, filtres: 3, kernel: 3}\n", "filtres"),
            ("name: x\nlayers:\n  - {type: convolution}\n", "layers"),
            ("name: x\nlayers: []\n", "layers"),
            ("name: x\nlayers:\n  - {type: relu}\ntraining: {epochs: 0}\n", "training.epochs"),
            ("name: x\nlayers:\n  - {type: relu}\ntraining: {schedule: warmup}\n", "training.schedule"),
            ("layers:\n  - {type: relu}\n", "name"),
        ])
    func rejectsMistakes(text: String, mentions: String) {
        do {
            _ = try ModelSpecFile.parse(text, source: "test.yaml")
            Issue.record("accepted a bad spec")
        } catch {
            #expect("\(error)".contains(mentions), "\(error)")
        }
    }

    @Test("a network that does not fit its input is refused at build time, naming the layer")
    func shapeMismatch() {
        let layers = [
            LayerSpec(type: .conv1d, filters: 4, kernel: 50), LayerSpec(type: .globalavgpool1d),
            LayerSpec(type: .dense),
        ]
        #expect { try Network(layers: layers, window: 32, channels: 1, classes: 2, seed: 1) } throws: { error in
            "\(error)".contains("layer 0")
        }
    }
}

struct CrossValidationTests {
    @Test("stratified folds partition the data and spread each class evenly")
    func folds() {
        let labels = (0..<50).map { $0 < 30 ? 0 : 1 }
        let folds = Trainer.stratifiedFolds(labels: labels, k: 5, seed: 1)
        #expect(folds.flatMap { $0 }.sorted() == Array(0..<50))
        for fold in folds {
            #expect(fold.filter { labels[$0] == 0 }.count == 6)
            #expect(fold.filter { labels[$0] == 1 }.count == 4)
        }
    }

    @Test("k-fold cross-validation scores every fold on held-out windows")
    func crossValidate() throws {
        var config = TrainingConfiguration()
        config.epochs = 8
        config.learningRate = 0.01
        config.patience = 0
        config.minimumSteps = 0
        let report = try Trainer(configuration: config).crossValidate(
            layers: smallSpec, on: sinusoidWindows(count: 150, seed: 9), folds: 3)
        #expect(report.foldAccuracies.count == 3)
        #expect(report.meanAccuracy > 0.8, "\(report.foldAccuracies)")
    }
}
