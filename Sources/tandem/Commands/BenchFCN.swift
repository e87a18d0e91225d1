import ArgumentParser
import Foundation
import TandemCore
import TandemTraining

/// `tandem bench model`: training and float-inference throughput of a model spec on random data.
struct BenchModel: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model",
        abstract:
            "Measure training samples/s and inference windows/s (float32, and served float32/int8) of a model spec.",
        discussion: """
            Builds the network from SPEC for windows of --window × --channels and --classes outputs, \
            feeds random data, and times --steps training steps at --batch after --warmup steps, then \
            float inference (batch norm folded) at --infer-batch. scripts/bench-torch.py measures the \
            same network in PyTorch with the same shapes.

            Then the batch as tandem-cloud serves it: split across --serving-threads parts that run at once, \
            OpenBLAS on one thread per part, in float32 and quantized to int8 (activation ranges calibrated \
            on random windows, so the int8 row is a speed figure only).
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
    @Option(help: "Threads a served batch is split across (default: the CPUs, at most 8).") var servingThreads: Int?
    @Flag(help: "Print JSON on stdout.") var json = false
    @Flag(help: "Leave glibc's allocator at its defaults (for measuring MemoryTuning).") var defaultAllocator = false

    func run() throws {
        Console.logFloatKernels()
        Console.log("int8 kernels: \(Int8InstructionSet.best)")
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

        // As tandem-cloud serves: the batch split across threads, OpenBLAS on one thread per part; and the same
        // model quantized to int8 (calibrated on random windows: a speed figure, not an accuracy one).
        // Windows per second of wall time and per CPU-second this process spent (every thread, user and system),
        // the measure `tandem bench cloud` gives its workers.
        let threads = servingThreads ?? BatchClassifier.defaultThreads
        func servedRate(_ classifier: BatchClassifier) throws -> (perSecond: Double, perCPUSecond: Double) {
            _ = try classifier.probabilities(for: inputs)
            let clock = ContinuousClock.now
            let cpu = Self.processCPUSeconds()
            for _ in 0..<rounds { _ = try classifier.probabilities(for: inputs) }
            let windows = Double(rounds * inferBatch)
            return (
                windows / (ContinuousClock.now - clock).seconds,
                windows / max(Self.processCPUSeconds() - cpu, 1e-9)
            )
        }
        _ = Kernels.setFloatThreads(1)
        let servedFloat = try servedRate(BatchClassifier(engine: .float(model), threads: threads))
        let quantized = try PostTrainingQuantizer().quantize(model, calibration: randomBatch(256).windows)
        let servedInt8 = try servedRate(BatchClassifier(engine: .int8(quantized), threads: threads))

        let result: [String: Double] = [
            "train_samples_per_second": trainRate, "infer_windows_per_second": inferRate,
            "served_float_windows_per_second": servedFloat.perSecond,
            "served_int8_windows_per_second": servedInt8.perSecond,
            "served_float_windows_per_cpu_second": servedFloat.perCPUSecond,
            "served_int8_windows_per_cpu_second": servedInt8.perCPUSecond,
            "serving_threads": Double(threads),
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
            print(
                String(
                    format:
                        "served     batch %3d: %9.1f windows/s float32, %9.1f windows/s int8 (%d thread(s), one OpenBLAS thread each)",
                    inferBatch, servedFloat.perSecond, servedInt8.perSecond, threads))
            print(
                String(
                    format: "           per CPU-second: %9.1f windows float32, %9.1f windows int8",
                    servedFloat.perCPUSecond, servedInt8.perCPUSecond))
        }
    }

    /// User and system CPU time of this process so far, every thread, in seconds.
    static func processCPUSeconds() -> Double {
        var usage = rusage()
        guard getrusage(RUSAGE_SELF.rawValue, &usage) == 0 else { return 0 }
        func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) * 1e-6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }
}

extension Duration {
    /// This duration in seconds.
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
