import Foundation
import Logging
import Synchronization
import TandemCloud
import TandemCore
import TandemFleetTestSupport
import TandemMQTT
import TandemProtocol
import TandemTestSupport
import TandemTraining
import Testing

/// `tandem-cloud serve --precision int8`: the full model in int8, made and gated by `tandem compress --int8-only`.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct Int8ServingTests {
    /// The test full model (``fullModelArtifact(window:channels:classes:)``), its int8 form as `tandem compress
    /// --int8-only` writes it, and that int8 model without the record of its gate, written to `directory`.
    struct Models {
        let float: String
        let int8: String
        let ungated: String
        let quantized: QuantizedModel

        init(in directory: String) throws {
            let full = try fullModelArtifact()
            let model = try FloatModel(artifact: full)
            var generator = SeededGenerator(seed: 21)
            // Labelled by the float model itself, and only windows it is clear about (a top-2 logit margin of at least
            // 0.5): the gate compares the two models, and random weights on random windows make many near-ties.
            func windows(_ count: Int) throws -> LabeledWindows {
                let size = model.window * model.channels
                var kept = [Float]()
                var labels = [Int]()
                while labels.count < count {
                    let x = Tensor(
                        shape: [1, model.window, model.channels],
                        scalars: (0..<size).map { _ in generator.nextGaussian() })
                    let logits = try model.logits(for: x).scalars
                    let sorted = logits.sorted(by: >)
                    guard sorted[0] - sorted[1] >= 0.5 else { continue }
                    kept += x.scalars
                    labels.append(logits.firstIndex(of: sorted[0])!)
                }
                return LabeledWindows(
                    windows: Tensor(shape: [count, model.window, model.channels], scalars: kept), labels: labels,
                    classNames: full.manifest.classNames)
            }
            let result = try FullModelQuantization.run(
                model: model, manifest: full.manifest,
                data: CompressionData(train: try windows(128), test: try windows(400)),
                calibrationWindows: 128, method: .percentile(99.99), version: "full-1-int8")
            try result.requireAccepted()
            float = "\(directory)/full.tandem"
            int8 = "\(directory)/full-int8.tandem"
            ungated = "\(directory)/full-int8-ungated.tandem"
            quantized = result.quantized
            try full.write(to: URL(fileURLWithPath: float))
            try result.artifact.write(to: URL(fileURLWithPath: int8))
            var manifest = result.artifact.manifest
            manifest.metrics = manifest.metrics.filter { !$0.key.hasPrefix("int8_") }
            try ModelArtifact(
                quantized: result.quantized, manifest: manifest,
                goldenInputs: try windows(2).windows
            ).write(to: URL(fileURLWithPath: ungated))
        }
    }

    static func configuration(model: String, precision: BatchClassifier.Precision, data: String) throws
        -> CloudWorker.Configuration
    {
        var configuration = try InProcessWorker.configuration(
            brokerPort: 1, modelPath: model, dataDirectory: data, workerID: "1")
        configuration.precision = precision
        configuration.http = nil
        return configuration
    }

    @Test(
        "a worker refuses a model of the other precision and an int8 model that does not record its agreement with the float model"
    )
    func refusals() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let dir = scratch.url.path
        let models = try Models(in: dir)
        let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        func refusal(_ model: String, _ precision: BatchClassifier.Precision) -> String? {
            do {
                _ = try CloudWorker.make(
                    configuration: Self.configuration(model: model, precision: precision, data: "\(dir)/data"),
                    logger: logger)
                return nil
            } catch let error as CloudWorkerError {
                return error.code == .unusableModel ? error.message : "\(error)"
            } catch {
                return "\(error)"
            }
        }
        #expect(refusal(models.float, .int8)?.contains("tandem compress --int8-only") == true)
        #expect(refusal(models.int8, .float)?.contains("--precision int8") == true)
        #expect(refusal(models.ungated, .int8)?.contains("does not record its agreement") == true)
        #expect(refusal(models.int8, .int8) == nil)
        #expect(refusal(models.float, .float) == nil)
    }

    @Test(
        "an int8 worker answers with the int8 engine's probabilities and its version, each batch split across threads")
    func int8WorkerAnswers() async throws {
        try await MosquittoBroker.with { broker in
            let scratch = try ScratchDirectory()
            defer { scratch.remove() }
            let dir = scratch.url.path
            let models = try Models(in: dir)
            let worker = try await InProcessWorker.serving(brokerPort: broker.port, directory: dir, model: models.int8)
            {
                $0.precision = .int8
                $0.modelThreads = 2
            }
            #expect(worker.log.contains("(int8, batches of up to 64 split across 2 thread(s))"), "\(worker.log)")
            let device = try await VerdictInbox(brokerPort: broker.port, device: "pump-1")
            var generator = SeededGenerator(seed: 4)
            var sent = [UUID: [Float]]()
            for _ in 0..<40 {
                let id = UUID()
                let bytes = try escalation(id: id, device: "pump-1", generator: &generator)
                sent[id] = try EscalationPayload(decoding: bytes).window
                try await device.escalate(bytes)
            }
            #expect(await waitUntil { device.received.count == sent.count }, "\(worker.log)")
            let engine = Int8Engine(model: models.quantized)
            for (id, window) in sent {
                guard let verdict = device.received[id] else { continue }
                var expected = [Float](repeating: 0, count: 3)
                let confidence = try window.withUnsafeBufferPointer { x in
                    try expected.withUnsafeMutableBufferPointer { try engine.classify(x, probabilities: $0) }
                }
                #expect(verdict.modelVersion == "full-1-int8")
                #expect(verdict.probabilities == expected)
                #expect(verdict.label == confidence.label)
            }
            // Recorded in the store, one transaction per batch of acknowledged verdicts.
            let store = try SampleStore(path: "\(dir)/data/tandem.sqlite")
            #expect(await waitUntil { (try? store.counts().answered) == sent.count })
            await device.close()
            #expect(await worker.terminate() == 0, "\(worker.log)")
        }
    }
}
