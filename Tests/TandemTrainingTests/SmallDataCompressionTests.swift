import Foundation
import TandemCore
import Testing

@testable import TandemTraining

/// Compression on a few dozen windows (GunPoint has 50): distillation follows the training's small-data rules, and
/// a student far below its teacher is refused with the reason.
struct SmallDataCompressionTests {
    static let studentSpec = """
        name: student
        layers:
          - {type: conv1d, filters: 8, kernel: 5, stride: 2, padding: same}
          - {type: batchnorm1d}
          - {type: relu}
          - {type: globalavgpool1d}
          - {type: dense, units: classes}
        """

    /// A teacher trained on `train` with the small-data rules (a cheaper step minimum than the default 3,000).
    func teacher(trainedOn train: LabeledWindows) throws -> (FloatModel, ModelManifest) {
        var config = TrainingConfiguration()
        config.minimumSteps = 600
        config.learningRate = 0.01
        let network = try Network(layers: smallSpec, window: 32, channels: 2, classes: 3, seed: 3)
        _ = try Trainer(configuration: config).train(network, on: train)
        let manifest = ModelManifest(
            name: "teacher", version: "teacher-1", createdAt: "2026-01-01T00:00:00Z", architecture: [],
            input: InputSpec(channels: 2, window: 32, hop: 16), classNames: train.classNames)
        return (try network.exportFloatModel(), manifest)
    }

    func compress(
        _ teacher: (FloatModel, ModelManifest), train: LabeledWindows, test: LabeledWindows,
        training: TrainingConfiguration
    ) throws -> CompressionResult {
        var options = CompressionOptions(training: training, distillation: try DistillationLoss())
        options.measuresLatency = false
        return try CompressionPipeline.run(
            teacher: teacher.0, teacherManifest: teacher.1, spec: try ModelSpecFile.parse(Self.studentSpec),
            data: CompressionData(train: train, test: test), options: options, version: "student-1")
    }

    @Test("the plan for a few dozen windows: no validation split, the epoch bound raised, a longer patience")
    func smallDataPlan() {
        var config = TrainingConfiguration()
        config.epochs = 12
        config.patience = 5
        config.minimumSteps = 60
        let small = config.plan(labels: (0..<36).map { $0 % 3 })
        #expect(small.validation.isEmpty && small.training == Array(0..<36))
        #expect(small.epochs == 30, "36 windows at batch 16 is 2 steps an epoch")
        #expect(small.patience == 5)
        config.minimumSteps = 3000
        #expect(config.plan(labels: (0..<36).map { $0 % 3 }).patience == 150, "a tenth of 1,500 epochs")
        let large = config.plan(labels: (0..<400).map { $0 % 4 })
        #expect(large.validation.count == 60 && large.training.count == 340)
        #expect(large.epochs == 143 && large.patience == 5, "340 windows: 21 steps an epoch")
        #expect(config.plan(labels: (0..<36).map { $0 % 3 }, unlabeledWindows: 364).epochs == 120)
    }

    @Test("distillation on 36 windows makes no validation split and runs the raised epoch bound")
    func distillationFollowsSmallDataRules() throws {
        let train = sinusoidWindows(count: 36, seed: 31)
        let teacher = try teacher(trainedOn: train)
        var config = TrainingConfiguration()
        config.epochs = 12
        config.patience = 5
        config.minimumSteps = 60
        let student = try Network(
            layers: try ModelSpecFile.parse(Self.studentSpec).layers, window: 32, channels: 2, classes: 3, seed: 4)
        let result = try Distiller(configuration: config, loss: try DistillationLoss()).distil(
            student, teacher: teacher.0, on: train)
        #expect(result.validation == nil)
        #expect(result.history.allSatisfy { $0.validationAccuracy == nil && $0.epochs == 30 })
    }

    @Test("compress on 48 windows: the int8 student, taught on perturbed copies too, stays near its teacher")
    func smallDataStudentLearns() throws {
        let train = sinusoidWindows(count: 48, seed: 32)
        let test = sinusoidWindows(count: 150, seed: 33)
        let teacher = try teacher(trainedOn: train)
        var config = TrainingConfiguration()
        config.epochs = 10
        config.minimumSteps = 600
        config.learningRate = 0.003
        let result = try compress(teacher, train: train, test: test, training: config)
        let teacherAccuracy = try #require(result.rows.first).accuracy
        let int8Accuracy = try #require(result.rows.last).accuracy
        #expect(teacherAccuracy >= 0.9, "teacher \(teacherAccuracy)")
        #expect(int8Accuracy >= teacherAccuracy - 0.05, "int8 \(int8Accuracy), teacher \(teacherAccuracy)")
        #expect(result.distillation.validation == nil)
        #expect(
            result.distillation.history.first?.epochs == 40,
            "48 windows and 192 perturbed copies: 15 steps an epoch, 600 steps")
        try result.requireAccuracy(withinMarginOfTeacher: CompressionOptions.defaultMaximumAccuracyDrop)
    }

    @Test("perturbed copies: copy by copy, deterministic, close to their window, exact without perturbation")
    func perturbedCopies() {
        let windows = sinusoidWindows(count: 6, seed: 36).windows
        let augmentation = TransferAugmentation()
        let copies = augmentation.perturbedCopies(of: windows, seed: 1)
        #expect(copies.shape == [24, 32, 2])
        #expect(copies == augmentation.perturbedCopies(of: windows, seed: 1))
        #expect(copies != augmentation.perturbedCopies(of: windows, seed: 2))
        // Without the shift a copy differs from its window by the noise (0.05) and the scale (10 %) only.
        var unshifted = TransferAugmentation()
        unshifted.maximumShiftFraction = 0
        let difference = zip(unshifted.perturbedCopies(of: windows, seed: 1).slice(0..<6).scalars, windows.scalars)
            .map { abs($0 - $1) }
        let mean = difference.reduce(0, +) / Float(difference.count)
        #expect(mean > 0.02 && mean < 0.2, "mean difference \(mean)")
        var none = TransferAugmentation()
        none.amplitudeDeviation = 0
        none.noiseDeviation = 0
        none.maximumShiftFraction = 0
        none.copies = 2
        let exact = none.perturbedCopies(of: windows, seed: 1)
        #expect(exact.slice(0..<6) == windows && exact.slice(6..<12) == windows)
    }

    @Test("a student far below its teacher is refused, and the message says by how much and on what data")
    func weakStudentRefused() throws {
        let train = sinusoidWindows(count: 48, seed: 34)
        let test = sinusoidWindows(count: 150, seed: 35)
        let teacher = try teacher(trainedOn: train)
        var config = TrainingConfiguration()
        config.epochs = 1
        config.minimumSteps = 0
        config.learningRate = 1e-6
        let result = try compress(teacher, train: train, test: test, training: config)
        try #require(
            result.accuracyDropFromTeacher > 0.2, "an untrained student: drop \(result.accuracyDropFromTeacher)")
        let error = try #require(throws: CompressionError.self) {
            try result.requireAccuracy(withinMarginOfTeacher: 0.05)
        }
        #expect(error.code == .studentBelowTeacher)
        #expect(error.message.contains("below the teacher's"), "\(error.message)")
        #expect(error.message.contains("at most 5.0 pp"), "\(error.message)")
        #expect(error.message.contains("150 test windows") && error.message.contains("48 training windows"))
        try result.requireAccuracy(withinMarginOfTeacher: 1)
    }
}
