import Foundation
import TandemCore
import Testing

@testable import TandemTraining

struct DistillationTests {
    func randomLogits(_ rows: Int, _ width: Int, seed: UInt64) -> Tensor {
        var g = SeededGenerator(seed: seed)
        return Tensor(shape: [rows, width], scalars: (0..<(rows * width)).map { _ in 2 * g.nextGaussian() })
    }

    @Test("the distillation loss gradient matches finite differences, labeled and unlabeled windows mixed")
    func gradientCheck() throws {
        let loss = try DistillationLoss(temperature: 3, alpha: 0.3)
        let student = randomLogits(6, 5, seed: 1)
        let teacher = randomLogits(6, 5, seed: 2)
        let labels: [Int?] = [0, nil, 4, 2, nil, 1]
        let (_, gradient) = loss.lossAndGradient(student: student, teacher: teacher, labels: labels)
        let h: Float = 1e-2
        var worst: Float = 0
        for i in 0..<student.count {
            var plus = student, minus = student
            plus.scalars[i] += h
            minus.scalars[i] -= h
            let numeric =
                (loss.lossAndGradient(student: plus, teacher: teacher, labels: labels).0
                    - loss.lossAndGradient(student: minus, teacher: teacher, labels: labels).0) / (2 * h)
            worst = max(worst, abs(numeric - gradient.scalars[i]))
        }
        #expect(worst < 2e-3, "largest gradient error \(worst)")
    }

    @Test("α = 1 is plain cross-entropy, and a student equal to its teacher has no soft loss")
    func limits() throws {
        let student = randomLogits(4, 3, seed: 3)
        let teacher = randomLogits(4, 3, seed: 4)
        let labels = [0, 1, 2, 1]
        let (ce, ceGradient) = CrossEntropy.lossAndGradient(logits: student, labels: labels)
        let (hard, hardGradient) = try DistillationLoss(temperature: 2, alpha: 1).lossAndGradient(
            student: student, teacher: teacher, labels: labels)
        #expect(abs(ce - hard) < 1e-5)
        #expect(zip(ceGradient.scalars, hardGradient.scalars).allSatisfy { abs($0 - $1) < 1e-6 })
        let (soft, softGradient) = try DistillationLoss(temperature: 5, alpha: 0).lossAndGradient(
            student: teacher, teacher: teacher, labels: [nil, nil, 0, nil])
        #expect(abs(soft) < 1e-5)
        #expect(softGradient.scalars.allSatisfy { abs($0) < 1e-6 })
        #expect(throws: ModelSpecError.self) { try DistillationLoss(temperature: 0, alpha: 0.5) }
        #expect(throws: ModelSpecError.self) { try DistillationLoss(temperature: 1, alpha: 1.5) }
    }

    @Test("a student distilled from a trained teacher learns the task, half of its windows unlabeled")
    func distilsStudent() throws {
        let train = sinusoidWindows(count: 240, seed: 21)
        let test = sinusoidWindows(count: 150, seed: 22)
        var config = TrainingConfiguration()
        config.minimumSteps = 0
        config.epochs = 15
        config.learningRate = 0.01
        config.patience = 0
        let teacherNetwork = try Network(layers: smallSpec, window: 32, channels: 2, classes: 3, seed: 7)
        _ = try Trainer(configuration: config).train(teacherNetwork, on: train)
        let teacher = try teacherNetwork.exportFloatModel()
        let studentSpec: [LayerSpec] = [
            LayerSpec(type: .conv1d, filters: 4, kernel: 5, stride: 2, padding: .same), LayerSpec(type: .batchnorm1d),
            LayerSpec(type: .relu), LayerSpec(type: .globalavgpool1d), LayerSpec(type: .dense),
        ]
        let student = try Network(layers: studentSpec, window: 32, channels: 2, classes: 3, seed: 8)
        let labeled = train.subset(Array(0..<120))
        let unlabeled = train.subset(Array(120..<240)).windows
        let result = try Distiller(configuration: config, loss: try DistillationLoss(temperature: 4, alpha: 0.5))
            .distil(student, teacher: teacher, on: labeled, unlabeled: unlabeled)
        let accuracy = Trainer.evaluate(student, on: test).report.accuracy
        #expect(accuracy >= 0.9, "student accuracy \(accuracy)")
        #expect(result.history.first!.loss > result.history.last!.loss)
    }
}
