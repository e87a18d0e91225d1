import Foundation
import TandemCore
import TandemFleetTestSupport
import TandemTestSupport
import Testing

/// A model trained in PyTorch on a UCR/UEA archive set, exported to ONNX, goes the whole way: `tandem import`,
/// `tandem eval` (the same accuracy as ONNX Runtime gives the ONNX file), `tandem compress`, `tandem publish` to a
/// real mosquitto, and a running agent that takes the signed int8 model.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct ImportedModelFlowTests {
    let tandem = BuiltProducts.executable("tandem")

    func json(_ result: CommandResult) throws -> [String: Any] {
        #expect(result.status == 0, "\(result.standardError)")
        return try #require(try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any])
    }

    @Test("ItalyPowerDemand: PyTorch → ONNX → import → eval within 0.5 pp of ONNX Runtime → compress → publish → agent")
    func italyPowerDemand() async throws {
        let fixture = try RegistryFixture()
        defer { fixture.scratch.remove() }
        let scratch = fixture.scratch.url
        let dataDirectory = scratch.appendingPathComponent("ItalyPowerDemand")
        try FileManager.default.createDirectory(at: dataDirectory, withIntermediateDirectories: true)
        for part in ["TRAIN", "TEST"] {
            _ = try ONNXRuntime.decompress(
                ONNXRuntime.fixtures.appendingPathComponent("ItalyPowerDemand_\(part).ts.xz"), into: dataDirectory)
        }
        let onnx = ONNXRuntime.fixtures.appendingPathComponent("italy_fcn.onnx")
        let reference = try #require(
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: ONNXRuntime.fixtures.appendingPathComponent("italy_fcn.json")))
                as? [String: Any])
        let classes = try #require(reference["classes"] as? [String])

        // The reference: ONNX Runtime on the ONNX file, over the test split.
        let test = try #require(try DataSource.load(path: dataDirectory.path).test)
        let ort = try ONNXRuntime.run(
            model: onnx, input: test.windows.scalars, shape: [test.count, 1, test.length], scratch: scratch)
        var correct = 0
        for n in 0..<test.count {
            let row = Array(ort.values[(n * classes.count)..<((n + 1) * classes.count)])
            if classes[row.firstIndex(of: row.max()!)!] == test.classNames[test.labels[n]] { correct += 1 }
        }
        let ortAccuracy = Double(correct) / Double(test.count)

        let classFile = scratch.appendingPathComponent("classes.txt")
        try Data((classes.joined(separator: "\n") + "\n").utf8).write(to: classFile)
        let full = scratch.appendingPathComponent("full.tandem").path
        let imported = try json(
            try runCommand(
                tandem,
                [
                    "import", onnx.path, "--out", full, "--classes-from", classFile.path, "--version", "italy-full-1",
                    "--json",
                ]))
        #expect(imported["inputLayout"] as? String == "[N, C, L]")
        let fullEval = try json(
            try runCommand(tandem, ["eval", "--model", full, "--data", dataDirectory.path, "--json"]))
        let fullAccuracy = try #require(fullEval["accuracy"] as? Double)
        print(
            "ItalyPowerDemand: PyTorch \(reference["torch_test_accuracy"] ?? "?"), ONNX Runtime \(ortAccuracy), "
                + "tandem eval of the imported model \(fullAccuracy) on \(test.count) windows")
        #expect(abs(fullAccuracy - ortAccuracy) <= 0.005)

        let spec = scratch.appendingPathComponent("edge.yaml")
        try Data(
            """
            name: italy-edge
            layers:
              - {type: conv1d, filters: 16, kernel: 7, padding: same}
              - {type: batchnorm1d}
              - {type: relu}
              - {type: conv1d, filters: 16, kernel: 3, padding: same}
              - {type: batchnorm1d}
              - {type: relu}
              - {type: globalavgpool1d}
              - {type: dense, units: classes}
            """.utf8
        ).write(to: spec)
        let edge = scratch.appendingPathComponent("edge.tandem").path
        let compressed = try runCommand(
            tandem,
            [
                "compress", "--teacher", full, "--spec", spec.path, "--data", dataDirectory.path, "--out", edge,
                "--version", "italy-edge-1",
            ])
        #expect(compressed.status == 0, "\(compressed.standardError)")
        let edgeEval = try json(
            try runCommand(tandem, ["eval", "--model", edge, "--data", dataDirectory.path, "--json"]))
        let edgeAccuracy = try #require(edgeEval["accuracy"] as? Double)
        print("ItalyPowerDemand: tandem eval of the compressed int8 model \(edgeAccuracy)")
        #expect(edgeAccuracy >= fullAccuracy - 0.05)

        try await MosquittoBroker.with { broker in
            let common = [
                "--fleet", "plant", "--data-dir", fixture.registry.directory.path, "--broker-url",
                "mqtt://localhost:\(broker.port)", "--key", fixture.keyURL.path,
            ]
            let first = try runCommand(tandem, ["publish", full, "--production", "--source", "import"] + common)
            #expect(first.status == 0, "\(first.standardError)")
            let agent = try RunningAgent(
                device: "box-1", port: broker.port, directory: scratch,
                model: try fixture.registry.artifactBytes(version: "italy-full-1"), trustedKey: fixture.publicKeyPath,
                channels: 1)
            #expect(agent.agent.classifier.modelVersion == "italy-full-1")
            let second = try runCommand(tandem, ["publish", edge, "--device", "box-1"] + common)
            #expect(second.status == 0, "\(second.standardError)")
            #expect(await waitUntil(.seconds(30)) { agent.agent.classifier.modelVersion == "italy-edge-1" })
            try await agent.stop()
        }
    }
}
