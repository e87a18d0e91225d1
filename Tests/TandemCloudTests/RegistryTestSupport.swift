import Foundation
import Synchronization
import TandemCore
import TandemFleet
import TandemMQTT
import TandemTestSupport

@testable import TandemEdge

/// A small edge model (flatten → dense) with seeded weights times `scale`: a large scale makes confident
/// predictions, a tiny one near-uniform probabilities (so every window is escalated).
func edgeArtifact(
    version: String, seed: UInt64 = 1, scale: Float = 0.3, channels: Int = 3, parent: String? = nil
) throws -> ModelArtifact {
    try flattenDenseArtifact(
        name: "edge-test", version: version, parentVersion: parent, seed: seed, scale: scale, channels: channels,
        mean: 0.5, std: 2, classPrefix: "class", metrics: ["test_accuracy": 0.9])
}

/// A flatten → dense model over windows of `window` samples (hop `window / 2`) with seeded Gaussian weights
/// times `scale` and zero bias, as a verified artifact with two golden inputs.
func flattenDenseArtifact(
    name: String, version: String, parentVersion: String? = nil, seed: UInt64, scale: Float = 0.3, window: Int = 8,
    channels: Int = 3, classes: Int = 3, mean: Float, std: Float, classPrefix: String, metrics: [String: Double] = [:]
) throws -> ModelArtifact {
    var generator = SeededGenerator(seed: seed)
    let inputs = window * channels
    let architecture = [LayerSpec(type: .flatten), LayerSpec(type: .dense, units: classes)]
    let model = try FloatModel(
        architecture: architecture, window: window, channels: channels, classes: classes,
        weights: [
            "1.weight": Tensor(
                shape: [classes, inputs],
                scalars: (0..<(classes * inputs)).map { _ in generator.nextGaussian() * scale }),
            "1.bias": Tensor(shape: [classes], scalars: [Float](repeating: 0, count: classes)),
        ])
    let manifest = ModelManifest(
        name: name, version: version, parentVersion: parentVersion, createdAt: "2026-11-23T00:00:00Z",
        architecture: architecture,
        input: InputSpec(
            channels: channels, window: window, hop: window / 2, mean: [Float](repeating: mean, count: channels),
            std: [Float](repeating: std, count: channels)),
        classNames: (0..<classes).map { "\(classPrefix)\($0)" }, metrics: metrics)
    let golden = Tensor(
        shape: [2, window, channels], scalars: (0..<(2 * inputs)).map { _ in generator.nextGaussian() })
    return try ModelArtifact(model: model, manifest: manifest, goldenInputs: golden)
}

/// A scratch directory with a signing key pair and the artifacts tests register.
struct RegistryFixture {
    let scratch: ScratchDirectory
    let keyURL: URL
    let publicKeyPath: String
    let registry: ModelRegistry

    init() throws {
        scratch = try ScratchDirectory()
        keyURL = scratch.url.appendingPathComponent("cloud.key")
        let (publicURL, _) = try SigningKeyFile.createKeyPair(at: keyURL)
        publicKeyPath = publicURL.path
        registry = try ModelRegistry(directory: scratch.url.appendingPathComponent("data"))
    }

    /// Writes `artifact` (unsigned) to the scratch directory and returns its URL.
    func file(_ artifact: ModelArtifact) throws -> URL {
        let url = scratch.url.appendingPathComponent("incoming-\(artifact.manifest.version).tandem")
        try artifact.write(to: url)
        return url
    }

    /// Registers `artifact`.
    @discardableResult
    func register(_ artifact: ModelArtifact, source: String = "retrain", force: Bool = false) throws
        -> ModelVersionRecord
    {
        try registry.register(
            artifactAt: try file(artifact), signingKey: try SigningKeyFile.readPrivateKey(from: keyURL),
            lineage: ModelLineage(source: source), force: force)
    }
}

/// A line source the test feeds while the agent runs.
final class FedSource: LineSource {
    let description = "fed"
    let channel = SourceChannel()
    private let splitter = Mutex(LineSplitter(maximumLineBytes: 4096))

    func batches() -> LineBatches { LineBatches(channel: channel) }

    /// Hands `text` (whole lines) to the agent, waiting while it is 8 batches behind.
    func push(_ text: String) async {
        var batch = LineBatch()
        splitter.withLock { s in Array(text.utf8).withUnsafeBytes { s.feed($0, into: &batch) } }
        while channel.slots.wait(timeout: .now()) == .timedOut {
            try? await Task.sleep(for: .milliseconds(1))
        }
        channel.slots.signal()
        channel.deliver(batch)
    }

    func stop() {
        channel.stop()
        channel.finish()
    }
}

/// CSV lines `t,a,b,c` at 100 Hz, from sample `start`.
func csvLines(from start: Int, count: Int) -> String {
    var text = ""
    for i in start..<(start + count) {
        let values = (0..<3).map { c in String(format: "%.4f", sin(Double(i) * 0.37 + Double(c)) * 3) }
        text += "\(Double(i) / 100)," + values.joined(separator: ",") + "\n"
    }
    return text
}

/// An edge agent running in-process against the broker on `port`, fed by a ``FedSource``.
struct RunningAgent {
    let agent: EdgeAgent
    let source: FedSource
    let run: Task<Void, any Error>
    let modelPath: String

    init(device: String, port: Int, directory: URL, model: [UInt8], trustedKey: String) throws {
        let dir = directory.appendingPathComponent(device)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        modelPath = dir.appendingPathComponent("model.tandem").path
        try Data(model).write(to: URL(fileURLWithPath: modelPath))
        var configuration = AgentConfiguration()
        configuration.device.id = device
        configuration.device.fleet = "plant"
        configuration.broker.url = "mqtt://localhost:\(port)"
        configuration.broker.reconnectMaxSeconds = 1
        configuration.model.path = modelPath
        configuration.model.trustedKeys = [trustedKey]
        configuration.outbox.directory = dir.appendingPathComponent("outbox").path
        configuration.streams = [AgentConfiguration.Stream(name: "vib", channels: 3)]
        configuration.policy.threshold = 0.6
        configuration.policy.maxEscalationsPerSecond = 100_000
        configuration.statusIntervalSeconds = 0.2
        let classifier = try EdgeModelFiles(path: modelPath).open(configuration.model) { _ in }
        source = FedSource()
        let link = try EdgeLink(configuration: configuration, log: { _ in })
        agent = try EdgeAgent(
            configuration: configuration, classifier: classifier, sources: [source], sinks: [], link: link,
            log: { _ in })
        let agent = self.agent
        run = Task { try await agent.run() }
    }

    func stop() async throws {
        source.stop()
        try await run.value
    }
}
