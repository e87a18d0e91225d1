import ArgumentParser
import Foundation
import TandemCore
import TandemTraining

/// `tandem bench model`: training and float-inference throughput of a model spec on random data.
struct BenchModel: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model",
        abstract: "Measure training samples/s and float inference windows/s of a model spec.",
        discussion: """
            Builds the network from SPEC for windows of --window × --channels and --classes outputs,
            feeds random data, and times --steps training steps at --batch after --warmup steps, then
            float inference (batch norm folded) at --infer-batch. scripts/bench-torch.py measures the
            same network in PyTorch with the same shapes.
            """
    )

    @Option(help: "Model spec YAML.") var spec = "cloud-config/models/full.yaml"
    @Option(help: "Samples per window.") var window = 128
    @Option(help: "Channels per sample.") var channels = 4
    @Option(help: "Output classes.") var classes = 5
    @Option(help: "Training batch size.") var batch = 16
    @Option(help: "Inference batch size.") var inferBatch = 64
    @Option(help: "Timed training steps.") var steps = 60
    @Option(help: "Untimed warm-up steps.") var warmup = 5
    @Option(help: "Timed inference windows.") var inferWindows = 4096
    @Flag(help: "Print JSON on stdout.") var json = false
    @Flag(help: "Leave glibc's allocator at its defaults (for measuring MemoryTuning).") var defaultAllocator = false

    func run() throws {
        Console.logFloatKernels()
        if !defaultAllocator { MemoryTuning.reuseLargeAllocations() }
        let file = try ModelSpecFile.load(contentsOf: URL(fileURLWithPath: spec))
        let network = try Network(layers: file.layers, window: window, channels: channels, classes: classes, seed: 1)
        var generator = SeededGenerator(seed: 2)
        func randomBatch(_ n: Int) -> LabeledWindows {
            var x = Tensor(shape: [n, window, channels])
            for i in 0..<x.count { x.scalars[i] = generator.nextGaussian() }
            return LabeledWindows(
                windows: x, labels: (0..<n).map { $0 % classes }, classNames: (0..<classes).map { "c\($0)" })
        }
        let batches = (0..<8).map { _ in randomBatch(batch) }
        let optimizer = Optimizer(kind: .adam)
        func step(_ b: LabeledWindows) {
            let logits = network.forward(b.windows, training: true)
            let (_, gradient) = CrossEntropy.lossAndGradient(logits: logits, labels: b.labels)
            network.backward(gradient)
            optimizer.update(network.parameters, rate: 1e-3)
        }
        for i in 0..<warmup { step(batches[i % batches.count]) }
        let trainClock = ContinuousClock.now
        for i in 0..<steps { step(batches[i % batches.count]) }
        let trainSeconds = (ContinuousClock.now - trainClock).seconds
        let trainRate = Double(steps * batch) / trainSeconds

        let model = try network.exportFloatModel()
        let inputs = randomBatch(inferBatch).windows
        _ = try model.logits(for: inputs)
        let rounds = max(1, inferWindows / inferBatch)
        let inferClock = ContinuousClock.now
        for _ in 0..<rounds { _ = try model.logits(for: inputs) }
        let inferSeconds = (ContinuousClock.now - inferClock).seconds
        let inferRate = Double(rounds * inferBatch) / inferSeconds

        let result: [String: Double] = [
            "train_samples_per_second": trainRate, "infer_windows_per_second": inferRate,
            "parameters": Double(network.parameterCount), "macs_per_window": Double(model.macsPerWindow),
        ]
        if json {
            print(
                String(
                    decoding: try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys]), as: UTF8.self)
            )
        } else {
            print(
                "model \(file.name): \(network.parameterCount) parameters, \(model.macsPerWindow) MACs/window, input \(window)×\(channels)"
            )
            print(String(format: "training   batch %3d: %9.1f samples/s", batch, trainRate))
            print(String(format: "inference  batch %3d: %9.1f windows/s", inferBatch, inferRate))
        }
    }
}

extension Duration {
    /// This duration in seconds.
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
