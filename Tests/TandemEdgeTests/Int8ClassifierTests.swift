import Foundation
import TandemCore
import TandemTestSupport
import TandemTraining
import Testing

@testable import TandemEdge

struct Int8ClassifierTests {
    /// The test model quantized to int8 and packaged, with its float twin.
    func int8Artifact() throws -> (int8: ModelArtifact, float: ModelArtifact) {
        let float = try TestModel.artifact(version: "f1")
        let model = try FloatModel(artifact: float)
        var generator = SeededGenerator(seed: 11)
        let calibration = Tensor(
            shape: [256, model.window, model.channels],
            scalars: (0..<(256 * model.window * model.channels)).map { _ in generator.nextGaussian() })
        let quantized = try PostTrainingQuantizer().quantize(model, calibration: calibration)
        var manifest = float.manifest
        manifest.version = "q1"
        let int8 = try ModelArtifact(quantized: quantized, manifest: manifest, goldenInputs: float.goldenInputs)
        return (int8, float)
    }

    @Test("an int8 artifact loads as the int8 engine; concurrent callers get exactly the engine's probabilities")
    func poolMatchesEngine() async throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let (int8, _) = try int8Artifact()
        let path = scratch.url.appendingPathComponent("q.tandem").path
        try int8.write(to: URL(fileURLWithPath: path))
        let loaded = try EdgeModelLoader.load(path: path)
        let classifier = try #require(loaded as? Int8WindowClassifier)
        #expect(classifier.modelVersion == "q1")

        let size = classifier.model.window * classifier.model.channels
        var generator = SeededGenerator(seed: 12)
        let windows = (0..<400).map { _ in (0..<size).map { _ in generator.nextGaussian() } }
        let reference = Int8Engine(model: classifier.model)
        let expected = try windows.map { window in
            var p = [Float](repeating: 0, count: 3)
            try window.withUnsafeBufferPointer { w in
                try p.withUnsafeMutableBufferPointer { _ = try reference.classify(w, probabilities: $0) }
            }
            return p
        }
        let results = try await withThrowingTaskGroup(of: (Int, [Float]).self) { group in
            for (i, window) in windows.enumerated() {
                group.addTask {
                    var p = [Float](repeating: 0, count: 3)
                    try window.withUnsafeBufferPointer { w in
                        try p.withUnsafeMutableBufferPointer { try classifier.classify(w, into: $0) }
                    }
                    return (i, p)
                }
            }
            var out = [[Float]](repeating: [], count: windows.count)
            for try await (i, p) in group { out[i] = p }
            return out
        }
        #expect(results == expected)
    }

    @Test("the agent runs an int8 model: every window classified, labels agree with the float model")
    func agentRunsInt8() async throws {
        let (int8Artifact, floatArtifact) = try int8Artifact()
        let int8 = Int8WindowClassifier(
            model: try QuantizedModel(artifact: int8Artifact), manifest: int8Artifact.manifest)
        let float = FloatWindowClassifier(
            model: try FloatModel(artifact: floatArtifact), manifest: floatArtifact.manifest)
        var configuration = AgentConfiguration()
        configuration.device.id = "box"
        configuration.broker.url = ""
        configuration.streams = [AgentConfiguration.Stream(name: "s", channels: 3)]
        let text = Array(sampleLines(from: 0, count: 2000).utf8)
        func run(_ classifier: any WindowClassifier) async throws -> [PredictionRecord] {
            let sink = CollectingSink()
            let agent = try EdgeAgent(
                configuration: configuration, classifier: classifier,
                sources: [TextSource(text, maximumLineBytes: 4096)], sinks: [sink], log: { _ in })
            try await agent.run()
            return sink.snapshot
        }
        let a = try await run(int8), b = try await run(float)
        #expect(a.count == (2000 - 8) / 4 + 1 && a.count == b.count)
        #expect(a.allSatisfy { $0.modelVersion == "q1" })
        let agree = zip(a, b).filter { $0.0.labelIndex == $0.1.labelIndex }.count
        #expect(Double(agree) >= 0.97 * Double(a.count), "\(agree) of \(a.count)")
    }
}
