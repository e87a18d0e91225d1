import Foundation
import TandemTestSupport
import Testing

struct CloudConfigTests {
    static let shipped = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("cloud-config/cloud.yaml")

    /// A cloud.yaml naming this test's broker, model and data, with worker.id `from-file`.
    static func write(_ directory: String, brokerPort: Int) throws -> String {
        let path = "\(directory)/cloud.yaml"
        try """
        broker:
          url: mqtt://localhost:\(brokerPort)
        models:
          full: \(directory)/full.tandem
          edge: []
        store:
          dataDir: \(directory)/data
        worker:
          id: from-file
          statsInterval: 0
        http:
          address: 127.0.0.1:0
          apiTokenFile: \(directory)/token
        trainer:
          enabled: false
        """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test("cloud.yaml sets the worker; a TANDEM_CLOUD_ variable overrides the file and a flag overrides both")
    func precedence() async throws {
        try await MosquittoBroker.with { broker in
            let cases: [(environment: [String: String], flags: [String], expected: String)] = [
                ([:], [], "from-file"),
                (["TANDEM_CLOUD_WORKER_ID": "from-env"], [], "from-env"),
                (["TANDEM_CLOUD_WORKER_ID": "from-env"], ["--worker-id", "from-flag"], "from-flag"),
            ]
            for (environment, flags, expected) in cases {
                let cloud = try await RunningCloud(
                    broker: broker,
                    arguments: { dir in ["serve", "--config", try Self.write(dir, brokerPort: broker.port)] + flags },
                    environment: environment)
                let health = try await cloud.json("GET", "/healthz")
                #expect(health.object["worker"] as? String == expected, "\(health.object)")
                #expect(cloud.terminate() == 0, "\(cloud.log)")
            }
        }
    }

    @Test("unknown keys and values of the wrong kind are refused, naming each key; the shipped file is valid")
    func badKeys() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let dir = scratch.url.path
        try """
        worker:
          maxBatchSize: 3
          id: [a, b]
        trainer:
          enabled: perhaps
        brokr:
          url: mqtt://x
        """.write(toFile: "\(dir)/bad.yaml", atomically: true, encoding: .utf8)
        let bad = try run(["serve", "--config", "\(dir)/bad.yaml"])
        #expect(bad.status != 0)
        for key in [
            "worker.maxBatchSize: unknown key", "worker.id: must be a single value", "trainer.enabled",
            "brokr.url: unknown key",
        ] {
            #expect(bad.errors.contains(key), "\(bad.errors)")
        }
        // The shipped file has every key; without a model it stops at the model, not at the file.
        let shipped = try run(["serve", "--config", Self.shipped.path, "--http", ""])
        #expect(shipped.status != 0)
        #expect(!shipped.errors.contains("unknown key"), "\(shipped.errors)")
        #expect(shipped.errors.contains("--model"), "\(shipped.errors)")
    }

    func run(_ arguments: [String]) throws -> (status: Int32, errors: String) {
        let process = Process()
        process.executableURL = BuiltProducts.executable("tandem-cloud")
        process.arguments = arguments
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let data = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
