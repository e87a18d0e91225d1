import ArgumentParser
import Foundation
import TandemCore
import TandemTraining

/// `tandem bench int8`: throughput and latency of the int8 engine against the float path of the same model.
struct BenchInt8: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "int8",
        abstract: "Measure int8 engine windows/s and latency against Tandem's float path on the same model.",
        discussion: """
            Builds the network of SPEC (random weights, batch norm folded), quantizes it with calibration \
            windows of random data, then times batch 1 (one window per call: p50/p99 latency) and batch \
            --batch (windows/s) for the int8 engine and the float model. The float path uses OpenBLAS: \
            run with OPENBLAS_NUM_THREADS=1 to compare one thread with one thread. The int8 engine runs the \
            fastest kernels this CPU supports unless --instruction-set names one (portable, avx2, avx512-vnni). \
            --export PATH writes the folded float weights and the benchmark inputs as JSON for \
            scripts/bench-ort.py, which times ONNX Runtime (float and static int8 QDQ) on the same network.
            """
    )

    @Option(help: "Model spec YAML.") var spec = "cloud-config/models/edge.yaml"
    @Option(help: "Samples per window.") var window = 128
    @Option(help: "Channels per sample.") var channels = 4
    @Option(help: "Output classes.") var classes = 5
    @Option(help: "Windows per batch call.") var batch = 64
    @Option(help: "Timed windows per measurement.") var windows = 20_000
    @Option(help: "Calibration windows.") var calibration = 256
    @Option(help: "Int8 kernels: portable, avx2 or avx512-vnni (default: the fastest this CPU supports).")
    var instructionSet: String?
    @Option(help: "Write folded float weights and the inputs as JSON here (for scripts/bench-ort.py).") var export:
        String?
    @Flag(help: "Print JSON on stdout.") var json = false

    func validate() throws {
        if let name = instructionSet {
            guard let set = Int8InstructionSet(rawValue: name) else {
                throw ValidationError(
                    "--instruction-set must be one of \(Int8InstructionSet.allCases.map(\.rawValue).joined(separator: ", "))"
                )
            }
            guard set.isSupported else { throw ValidationError("this CPU cannot run the \(name) int8 kernels") }
        }
    }

    func run() throws {
        let file = try ModelSpecFile.load(contentsOf: URL(fileURLWithPath: spec))
        let network = try Network(layers: file.layers, window: window, channels: channels, classes: classes, seed: 1)
        var generator = SeededGenerator(seed: 2)
        func randomWindows(_ n: Int) -> Tensor {
            Tensor(
                shape: [n, window, channels],
                scalars: (0..<(n * window * channels)).map { _ in generator.nextGaussian() })
        }
        // One training pass so batch norm statistics (folded into the weights) are not the identity.
        _ = network.forward(randomWindows(64), training: true)
        let float = try network.exportFloatModel()
        let quantized = try PostTrainingQuantizer(method: .percentile(99.99)).quantize(
            float, calibration: randomWindows(calibration))
        let engine = Int8Engine(
            model: quantized, instructionSet: instructionSet.flatMap(Int8InstructionSet.init(rawValue:)) ?? .best)
        let inputs = randomWindows(batch)
        let single = inputs.slice(0..<1)

        let rounds = max(1, windows / batch)
        var results: [String: Double] = [
            "parameters": Double(float.parameterCount), "macs_per_window": Double(float.macsPerWindow),
            "float_bytes": Double(4 * float.parameterCount), "int8_bytes": Double(quantized.storageBytes),
        ]

        // int8, batch 1: latency of every call.
        var logits = [Float](repeating: 0, count: classes)
        let size = window * channels
        var latencies = [Double]()
        latencies.reserveCapacity(windows)
        try single.scalars.withUnsafeBufferPointer { x in
            try logits.withUnsafeMutableBufferPointer { l in
                for _ in 0..<100 { _ = try engine.classify(x, logits: l) }
                for _ in 0..<windows {
                    let start = ContinuousClock.now
                    _ = try engine.classify(UnsafeBufferPointer(rebasing: x[0..<size]), logits: l)
                    latencies.append((ContinuousClock.now - start).seconds)
                }
            }
        }
        record(&results, "int8_batch1", latencies)
        // int8, batch N.
        _ = try engine.classify(windows: inputs)
        var clock = ContinuousClock.now
        for _ in 0..<rounds { _ = try engine.classify(windows: inputs) }
        results["int8_batch\(batch)_windows_per_second"] =
            Double(rounds * batch) / (ContinuousClock.now - clock).seconds

        // float, batch 1 and batch N.
        latencies.removeAll(keepingCapacity: true)
        for _ in 0..<100 { _ = try float.probabilities(for: single) }
        let floatSingles = max(1, windows / 4)
        for _ in 0..<floatSingles {
            let start = ContinuousClock.now
            _ = try float.probabilities(for: single)
            latencies.append((ContinuousClock.now - start).seconds)
        }
        record(&results, "float_batch1", latencies)
        _ = try float.probabilities(for: inputs)
        clock = ContinuousClock.now
        for _ in 0..<rounds { _ = try float.probabilities(for: inputs) }
        results["float_batch\(batch)_windows_per_second"] =
            Double(rounds * batch) / (ContinuousClock.now - clock).seconds

        if let export {
            try exportWeights(float, inputs: inputs, calibration: randomWindows(calibration), to: export)
        }
        if json {
            var document: [String: Any] = results
            document["int8_instruction_set"] = engine.instructionSet.rawValue
            print(
                String(
                    decoding: try JSONSerialization.data(withJSONObject: document, options: [.sortedKeys]),
                    as: UTF8.self))
        } else {
            print(
                "model \(file.name): \(float.parameterCount) parameters, \(float.macsPerWindow) MACs/window, input \(window)×\(channels)"
            )
            print("bytes: float \(4 * float.parameterCount), int8 \(quantized.storageBytes)")
            print("int8 kernels: \(engine.instructionSet)")
            for path in ["int8", "float"] {
                print(
                    String(
                        format: "%-5@ batch 1: %9.0f windows/s  p50 %6.1f µs  p99 %6.1f µs   batch %d: %9.0f windows/s",
                        path, results["\(path)_batch1_windows_per_second"] ?? 0, results["\(path)_batch1_p50_us"] ?? 0,
                        results["\(path)_batch1_p99_us"] ?? 0, batch,
                        results["\(path)_batch\(batch)_windows_per_second"] ?? 0))
            }
        }
    }

    private func record(_ results: inout [String: Double], _ key: String, _ latencies: [Double]) {
        let sorted = latencies.sorted()
        func quantile(_ q: Double) -> Double { sorted[min(sorted.count - 1, Int(q * Double(sorted.count)))] }
        results["\(key)_windows_per_second"] = Double(sorted.count) / sorted.reduce(0, +)
        results["\(key)_p50_us"] = quantile(0.5) * 1e6
        results["\(key)_p99_us"] = quantile(0.99) * 1e6
    }

    private func exportWeights(_ model: FloatModel, inputs: Tensor, calibration: Tensor, to path: String) throws {
        let logits = try model.logits(for: inputs)
        var layers = [[String: Any]]()
        for (i, layer) in model.architecture.enumerated() {
            var entry: [String: Any] = ["type": layer.type.rawValue]
            if let v = layer.filters { entry["filters"] = v }
            if let v = layer.units { entry["units"] = v }
            if let v = layer.kernel { entry["kernel"] = v }
            if let v = layer.stride { entry["stride"] = v }
            if let v = layer.dilation { entry["dilation"] = v }
            if let v = layer.padding { entry["padding"] = v.rawValue }
            if let w = model.weights["\(i).weight"] {
                entry["weight"] = ["shape": w.shape, "values": w.scalars.map(Double.init)]
            }
            if let b = model.weights["\(i).bias"] { entry["bias"] = b.scalars.map(Double.init) }
            layers.append(entry)
        }
        let document: [String: Any] = [
            "window": window, "channels": channels, "classes": classes, "layers": layers,
            "inputs": ["shape": inputs.shape, "values": inputs.scalars.map(Double.init)],
            "calibration": ["shape": calibration.shape, "values": calibration.scalars.map(Double.init)],
            "float_logits": ["shape": logits.shape, "values": logits.scalars.map(Double.init)],
        ]
        try JSONSerialization.data(withJSONObject: document).write(to: URL(fileURLWithPath: path))
    }
}
