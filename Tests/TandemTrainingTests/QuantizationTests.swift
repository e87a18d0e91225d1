import Foundation
import TandemCore
import Testing

@testable import TandemTraining

/// A float model with random weights for the given layers (no training needed to test op accuracy).
func randomFloatModel(_ layers: [LayerSpec], window: Int, channels: Int, classes: Int, seed: UInt64) throws
    -> FloatModel
{
    let network = try Network(layers: layers, window: window, channels: channels, classes: classes, seed: seed)
    return try network.exportFloatModel()
}

func gaussianWindows(_ n: Int, window: Int, channels: Int, seed: UInt64) -> Tensor {
    var g = SeededGenerator(seed: seed)
    return Tensor(shape: [n, window, channels], scalars: (0..<(n * window * channels)).map { _ in g.nextGaussian() })
}

struct QuantizationTests {
    @Test(
        "int8 agrees with the float student on ≥ 99 % of held-out windows and loses ≤ 1 pp accuracy, for every calibration method"
    )
    func trainedModelAgreement() throws {
        let train = sinusoidWindows(count: 240, seed: 1)
        let test = sinusoidWindows(count: 600, seed: 2)
        let network = try trainedNetwork(smallSpec, on: train, seed: 7)
        let float = try network.exportFloatModel()
        let floatPredictions = try float.logits(for: test.windows).argmaxRows()
        let floatAccuracy = zip(floatPredictions, test.labels).filter { $0 == $1 }.count
        let calibration = train.windows.slice(0..<128)
        for method in [CalibrationMethod.minMax, .percentile(99.99), .mse] {
            let quantized = try PostTrainingQuantizer(method: method).quantize(float, calibration: calibration)
            let engine = Int8Engine(model: quantized)
            let int8Predictions = try engine.classify(windows: test.windows).confidences.map(\.label)
            let agreement =
                Double(zip(floatPredictions, int8Predictions).filter { $0 == $1 }.count) / Double(test.count)
            let int8Accuracy = zip(int8Predictions, test.labels).filter { $0 == $1 }.count
            #expect(agreement >= 0.99, "\(method): agreement \(agreement)")
            #expect(
                Double(int8Accuracy) >= Double(floatAccuracy) - 0.01 * Double(test.count),
                "\(method): \(int8Accuracy) vs \(floatAccuracy)")
        }
    }

    @Test("the int8 edge model stores at most 30 % of the float model's bytes")
    func storageRatio() throws {
        let edge = try ModelSpecFile.load(
            contentsOf: ModelSpecFileTests.root.appendingPathComponent("cloud-config/models/edge.yaml"))
        let float = try randomFloatModel(edge.layers, window: 128, channels: 4, classes: 5, seed: 3)
        let quantized = try PostTrainingQuantizer(method: .minMax).quantize(
            float, calibration: gaussianWindows(16, window: 128, channels: 4, seed: 4))
        let floatBytes = 4 * float.parameterCount
        #expect(
            Double(quantized.storageBytes) <= 0.30 * Double(floatBytes), "\(quantized.storageBytes) of \(floatBytes)")
        #expect(quantized.macsPerWindow == float.macsPerWindow)
    }

    /// One op between an input and the classifier head, and how the int8 result may deviate from float.
    struct OpCase: CustomTestStringConvertible, Sendable {
        var name: String
        var layers: [LayerSpec]
        var testDescription: String { name }
    }

    static let ops: [OpCase] = [
        OpCase(
            name: "conv k5 stride 2 same + ReLU",
            layers: [
                LayerSpec(type: .conv1d, filters: 6, kernel: 5, stride: 2, padding: .same), LayerSpec(type: .relu),
            ]),
        OpCase(
            name: "conv k3 dilation 2 valid",
            layers: [LayerSpec(type: .conv1d, filters: 5, kernel: 3, dilation: 2, padding: .valid)]),
        OpCase(
            name: "conv k4 stride 3 dilation 2 same",
            layers: [LayerSpec(type: .conv1d, filters: 4, kernel: 4, stride: 3, dilation: 2, padding: .same)]),
        OpCase(name: "conv k1", layers: [LayerSpec(type: .conv1d, filters: 7, kernel: 1)]),
        OpCase(name: "max pool k2", layers: [LayerSpec(type: .maxpool1d, kernel: 2)]),
        OpCase(
            name: "average pool k3 same", layers: [LayerSpec(type: .avgpool1d, kernel: 3, stride: 1, padding: .same)]),
        OpCase(name: "relu", layers: [LayerSpec(type: .relu)]),
        OpCase(name: "global average pool", layers: [LayerSpec(type: .globalavgpool1d)]),
        OpCase(
            name: "flatten + dense + ReLU",
            layers: [LayerSpec(type: .flatten), LayerSpec(type: .dense, units: 6), LayerSpec(type: .relu)]),
    ]

    @Test("each int8 op matches its float twin within the quantization error bound", arguments: ops)
    func opMatchesFloat(op: OpCase) throws {
        let window = 24, channels = 3
        var layers = op.layers
        if !layers.contains(where: { $0.type == .globalavgpool1d || $0.type == .flatten }) {
            layers.append(LayerSpec(type: .globalavgpool1d))
        }
        layers.append(LayerSpec(type: .dense))
        let float = try randomFloatModel(layers, window: window, channels: channels, classes: 3, seed: 5)
        let inputs = gaussianWindows(64, window: window, channels: channels, seed: 6)
        let quantized = try PostTrainingQuantizer(method: .minMax).quantize(float, calibration: inputs)
        let plan = try FusedFloatPlan(float)
        let engine = Int8Engine(model: quantized)
        // The op under test is the first quantized layer, or the second after a flatten.
        let index = quantized.parameters.layers[0].kind == .flatten ? 1 : 0
        let layer = quantized.parameters.layers[index]
        let sIn = Double(quantized.inputQuantizations[index].scale)
        let out = layer.output ?? quantized.inputQuantizations[index]
        var worstExcess = -Double.infinity
        for n in 0..<inputs.shape[0] {
            let x = inputs.slice(n..<(n + 1))
            var real = x
            for i in 0...index { real = plan.apply(plan.ops[i], index: i, to: real) }
            let (activations, _) = try engine.trace(x.scalars)
            let opInput = index == 0 ? x.scalars : plan.apply(plan.ops[0], index: 0, to: x).scalars
            for (j, q) in activations[index + 1].enumerated() {
                let got = Double(out.dequantize(q))
                let expected = Double(real.scalars[j])
                // Rounding of the output and one LSB of requantization slack, plus the input rounding
                // carried through the op, plus the weight rounding for conv/dense.
                var bound = 1.5 * Double(out.scale) + 0.5 * sIn
                if let scales = layer.weightScales, let w = float.weights["\(plan.ops[index].source).weight"] {
                    let units = scales.count
                    let rowLength = w.count / units
                    let o = j % units
                    let sw = Double(scales[o])
                    let weightMass = (0..<rowLength).map { abs(Double(w.scalars[o * rowLength + $0])) }.reduce(0, +)
                    let inputMass = opInput.map { abs(Double($0)) }.reduce(0, +)
                    bound =
                        1.5 * Double(out.scale) + 0.5 * sIn * weightMass + 0.5 * sw * inputMass
                        + 0.25 * sIn * sw * Double(rowLength) + 0.5 * sIn * sw
                }
                worstExcess = max(worstExcess, abs(got - expected) - bound)
            }
        }
        #expect(worstExcess <= 0, "\(op.name): error exceeds the bound by \(worstExcess)")
    }
}

struct CalibrationTests {
    @Test("min/max covers everything; percentile and MSE clip a lone outlier and quantize the bulk more finely")
    func methodsOnOutliers() {
        var g = SeededGenerator(seed: 8)
        var values = (0..<20_000).map { _ in g.nextGaussian() }
        values.append(400)
        let minMax = RangeCalibrator.quantization(of: values, method: .minMax)
        let percentile = RangeCalibrator.quantization(of: values, method: .percentile(99.9))
        let mse = RangeCalibrator.quantization(of: values, method: .mse)
        #expect(minMax.dequantize(127) >= 399.9)
        #expect(percentile.scale < minMax.scale / 10)
        #expect(mse.scale < minMax.scale)
        func error(_ q: ActivationQuantization) -> Double {
            values.dropLast().map { Double(q.dequantize(q.quantize($0)) - $0) }.map { $0 * $0 }.reduce(0, +)
        }
        #expect(error(percentile) < error(minMax) && error(mse) < error(minMax))
    }

    @Test("ranges always contain zero so that zero is exact, and degenerate data stays valid")
    func zeroIsExact() throws {
        for method in [CalibrationMethod.minMax, .percentile(99), .mse] {
            let q = RangeCalibrator.quantization(of: [2, 3, 5, 9], method: method)
            #expect(q.dequantize(Int8(q.zeroPoint)) == 0 && q.zeroPoint == -128)
            let flat = RangeCalibrator.quantization(of: [0, 0, 0], method: method)
            #expect(flat.scale > 0 && flat.scale.isFinite)
        }
        #expect(throws: QuantizationError.self) { try CalibrationMethod(parsing: "kl") }
        #expect(try CalibrationMethod(parsing: "percentile:99.9") == .percentile(99.9))
    }
}

struct QuantizationPipelineTests {
    @Test("distil → prune → fine-tune → quantize → artifact → reload keeps the pruned model's predictions")
    func compressPipeline() throws {
        let train = sinusoidWindows(count: 240, seed: 31)
        let test = sinusoidWindows(count: 300, seed: 32)
        var config = TrainingConfiguration()
        config.epochs = 12
        config.learningRate = 0.01
        config.patience = 0
        let teacherNetwork = try Network(layers: smallSpec, window: 32, channels: 2, classes: 3, seed: 33)
        _ = try Trainer(configuration: config).train(teacherNetwork, on: train)
        let teacher = try teacherNetwork.exportFloatModel()
        let student = try Network(layers: smallSpec, window: 32, channels: 2, classes: 3, seed: 34)
        let loss = try DistillationLoss(temperature: 3, alpha: 0.5)
        _ = try Distiller(configuration: config, loss: loss).distil(student, teacher: teacher, on: train)
        let (pruned, report) = try StructuredPruner(criterion: .l1, target: .sparsity(0.25)).prune(student)
        #expect(report.macsAfter < report.macsBefore)
        config.epochs = 6
        _ = try Distiller(configuration: config, loss: loss).distil(pruned, teacher: teacher, on: train)
        let float = try pruned.exportFloatModel()
        let quantized = try PostTrainingQuantizer(method: .mse).quantize(
            float, calibration: train.windows.slice(0..<64))
        let manifest = ModelManifest(
            name: "edge", version: "edge-test", createdAt: "2026-01-01T00:00:00Z", architecture: [],
            input: InputSpec(channels: 2, window: 32, hop: 16), classNames: test.classNames)
        let artifact = try ModelArtifact(
            quantized: quantized, manifest: manifest, goldenInputs: test.windows.slice(0..<4))
        let reloaded = try QuantizedModel(artifact: ModelArtifact(bytes: artifact.serialized()))
        let int8 = try Int8Engine(model: reloaded).classify(windows: test.windows).confidences.map(\.label)
        let floatPredictions = try float.logits(for: test.windows).argmaxRows()
        let agreement = Double(zip(int8, floatPredictions).filter { $0 == $1 }.count) / Double(test.count)
        let int8Accuracy = Double(zip(int8, test.labels).filter { $0 == $1 }.count) / Double(test.count)
        let floatAccuracy = Double(zip(floatPredictions, test.labels).filter { $0 == $1 }.count) / Double(test.count)
        #expect(agreement >= 0.99, "agreement \(agreement)")
        #expect(
            int8Accuracy >= floatAccuracy - 0.01 && int8Accuracy >= 0.9, "int8 \(int8Accuracy), float \(floatAccuracy)")
    }
}
