import Foundation
import Synchronization
import TandemCore

@testable import TandemEdge

/// A small float model with seeded random weights (flatten → dense), packaged as a verified artifact.
enum TestModel {
    static func artifact(
        window: Int = 8, hop: Int = 4, channels: Int = 3, classes: Int = 3, sampleRateHz: Double? = nil,
        seed: UInt64 = 1,
        version: String = "test-1"
    ) throws -> ModelArtifact {
        var generator = SeededGenerator(seed: seed)
        let inputs = window * channels
        let weight = Tensor(
            shape: [classes, inputs], scalars: (0..<(classes * inputs)).map { _ in generator.nextGaussian() * 0.3 })
        let bias = Tensor(shape: [classes], scalars: (0..<classes).map { _ in generator.nextGaussian() * 0.1 })
        let architecture = [LayerSpec(type: .flatten), LayerSpec(type: .dense, units: classes)]
        let model = try FloatModel(
            architecture: architecture, window: window, channels: channels, classes: classes,
            weights: ["1.weight": weight, "1.bias": bias])
        let input = InputSpec(
            channels: channels, window: window, hop: hop, sampleRateHz: sampleRateHz,
            mean: [Float](repeating: 0.5, count: channels), std: [Float](repeating: 2, count: channels))
        let manifest = ModelManifest(
            name: "edge-test", version: version, createdAt: "2026-11-23T00:00:00Z", architecture: architecture,
            input: input,
            classNames: (0..<classes).map { "class\($0)" })
        let golden = Tensor(
            shape: [2, window, channels], scalars: (0..<(2 * inputs)).map { _ in generator.nextGaussian() })
        return try ModelArtifact(model: model, manifest: manifest, goldenInputs: golden)
    }

    static func classifier(window: Int = 8, hop: Int = 4, channels: Int = 3) throws -> FloatWindowClassifier {
        let a = try artifact(window: window, hop: hop, channels: channels)
        return FloatWindowClassifier(model: try FloatModel(artifact: a), manifest: a.manifest)
    }
}

/// Records every prediction record in memory.
final class CollectingSink: PredictionSink {
    let records = Mutex<[PredictionRecord]>([])
    let flushes = Mutex(0)
    let flushIntervalSeconds = 0.05
    func write(_ record: PredictionRecord) { records.withLock { $0.append(record) } }
    func flush() throws(SinkError) { flushes.withLock { $0 += 1 } }
    var snapshot: [PredictionRecord] { records.withLock { $0 } }
}

/// Delivers fixed text through the real line splitter, in chunks of varying size, then finishes.
final class TextSource: LineSource {
    let description = "text"
    let text: [UInt8]
    let maximumLineBytes: Int
    let channel = SourceChannel()

    init(_ text: [UInt8], maximumLineBytes: Int) {
        self.text = text
        self.maximumLineBytes = maximumLineBytes
    }

    func batches() -> LineBatches {
        Thread.detachNewThread { [self] in
            var splitter = LineSplitter(maximumLineBytes: maximumLineBytes)
            var generator = SeededGenerator(seed: 99)
            var start = 0
            var lineNumber = 1
            while start < text.count {
                let end = min(text.count, start + Int.random(in: 1...8192, using: &generator))
                var batch = LineBatch()
                batch.firstLineNumber = lineNumber
                text.withUnsafeBytes { splitter.feed(UnsafeRawBufferPointer(rebasing: $0[start..<end]), into: &batch) }
                lineNumber += batch.lines.count + batch.overlongLines
                channel.deliver(batch)
                start = end
            }
            var last = LineBatch()
            splitter.finish(into: &last)
            channel.deliver(last)
            channel.finish()
        }
        return LineBatches(channel: channel)
    }

    func stop() { channel.stop() }
}
