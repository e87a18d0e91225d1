import Foundation
import TandemCloud
import TandemCore
import TandemEdge
import TandemFleet
import TandemTestSupport
import TandemTraining
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The models and data of the closed-loop tests: one simulated machine (short condition segments, so a
/// few seconds hold every class), a full float model trained on its first seconds (≈ 83 % on the test
/// split), and a deliberately weak int8 edge model distilled from it for exactly ten epochs (≈ 62 %; the
/// trainer's minimum-step rule is off, or it would train on to about the teacher's level) — unsure of much,
/// so it escalates and a retrained one does better by a clear margin, while a drill candidate trained on
/// shuffled labels (≈ 48 %) does not. Devices are fed the same machine's later seconds.
struct LoopFixture: Sendable {
    static let window = 64
    static let hop = 32
    static let simulation = SensorSimulator.Configuration(seed: 21, segmentSeconds: 0.3...1.0)
    /// Seconds of the recording the models are trained on (75 % train, 25 % test).
    static let trainingSeconds = 24.0
    /// Seconds of recording available to feed devices, after the training seconds.
    static let streamSeconds = 90.0

    var full: ModelArtifact
    var edge: ModelArtifact
    var edgeSpec: String
    var stream: SensorStream

    static let shared: Result<LoopFixture, any Error> = Result { try make() }

    static func make() throws -> LoopFixture {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        try SensorSimulator(simulation).write(to: scratch.url, durationSeconds: trainingSeconds)
        let data = try DataSource.load(path: scratch.url.path, window: window, hop: hop)
        let standardization = Standardization.fit(data.train.windows)
        let input = InputSpec(
            channels: data.train.channels, window: window, hop: hop, sampleRateHz: simulation.sampleRateHz,
            mean: standardization.mean, std: standardization.std)
        var train = data.train
        input.normalize(&train.windows)
        guard var test = data.test else { throw RetrainingError("the simulation wrote no test split") }
        input.normalize(&test.windows)

        let full = try smallFullModel(trainedOn: train, input: input, epochs: 40)
        let fullModel = try FloatModel(artifact: full)
        let fullManifest = full.manifest

        let edgeSpec = """
            name: edge
            layers:
              - {type: conv1d, filters: 8, kernel: 5, stride: 2, padding: same}
              - {type: batchnorm1d}
              - {type: relu}
              - {type: globalavgpool1d}
              - {type: dense, units: classes}
            training:
              epochs: 12
              batch_size: 16
              learning_rate: 0.005
              patience: 4
            """
        var early = try ModelSpecFile.parse(edgeSpec).training ?? TrainingConfiguration()
        early.epochs = 10
        early.minimumSteps = 0
        var options = CompressionOptions(training: early, distillation: try DistillationLoss())
        options.measuresLatency = false
        let edge = try CompressionPipeline.run(
            teacher: fullModel, teacherManifest: fullManifest, spec: try ModelSpecFile.parse(edgeSpec),
            data: CompressionData(train: train, test: test), options: options, version: "edge-1"
        ).artifact
        let stream = SensorSimulator(simulation).stream(durationSeconds: trainingSeconds + streamSeconds)
        return LoopFixture(full: full, edge: edge, edgeSpec: edgeSpec, stream: stream)
    }

    /// The weak edge model's calibrated threshold: its max-probability 10th percentile on held-out windows.
    var threshold: Double {
        get throws {
            guard let p10 = edge.manifest.metrics["confidence.max_probability.p10"] else {
                throw RetrainingError("the edge model has no calibration")
            }
            return p10
        }
    }

    /// Sample indices of device stream seconds `seconds` (counted from the end of the training seconds).
    func samples(_ seconds: Range<Double>) -> Range<Int> {
        let rate = Self.simulation.sampleRateHz
        let start = Int(((Self.trainingSeconds + seconds.lowerBound) * rate).rounded())
        let end = min(Int(((Self.trainingSeconds + seconds.upperBound) * rate).rounded()), stream.count)
        return start..<max(start, end)
    }

    /// CSV lines `t,ch1,…` of `range`, values rounded to 4 decimals as the simulator writes them.
    func lines(_ range: Range<Int>) -> String {
        let channels = stream.channelNames.count
        var text = ""
        text.reserveCapacity(range.count * 48)
        stream.samples.scalars.withUnsafeBufferPointer { x in
            for i in range {
                text += String(format: "%.3f", stream.timestamp(at: i))
                for c in 0..<channels { text += String(format: ",%.4f", x[i * channels + c]) }
                text += "\n"
            }
        }
        return text
    }

    /// How many windows of `range` (cut from its first sample at the model's hop, as a device does) `model` (by
    /// default the weak edge model) would escalate at the weak model's calibrated threshold, and how many
    /// windows there are.
    func expectedEscalations(_ range: Range<Int>, model: ModelArtifact? = nil) throws -> (
        escalations: Int, windows: Int
    ) {
        let edge = model ?? self.edge
        let channels = stream.channelNames.count
        let count = range.count >= Self.window ? (range.count - Self.window) / Self.hop + 1 : 0
        var scalars = [Float]()
        scalars.reserveCapacity(count * Self.window * channels)
        for w in 0..<count {
            let start = (range.lowerBound + w * Self.hop) * channels
            for k in 0..<(Self.window * channels) {
                scalars.append((stream.samples.scalars[start + k] * 10_000).rounded() / 10_000)
            }
        }
        var windows = Tensor(shape: [count, Self.window, channels], scalars: scalars)
        edge.manifest.input.normalize(&windows)
        let confidences = try Int8Engine(model: QuantizedModel(artifact: edge)).classify(windows: windows).confidences
        let threshold = try self.threshold
        return (confidences.filter { Double($0.maxProbability) < threshold }.count, count)
    }

    /// The files a trainer worker needs, written into `directory`: the training data, the full model, the
    /// edge spec, a signing key pair, and a registry in `data/` holding the weak edge model (signed) as production.
    struct Installation {
        var directory: URL
        var dataDirectory: URL
        var trainingData: URL
        var fullModel: URL
        var edgeSpec: URL
        var signingKey: URL
        var publicKey: URL
        var registry: ModelRegistry
        var store: SampleStore
        var signedEdge: URL { registry.artifactURL(version: "edge-1") }
    }

    /// Runs `body` with a fresh mosquitto and this fixture installed in a scratch directory (removed afterwards).
    func withBroker(_ body: (MosquittoBroker, Installation, ScratchDirectory) async throws -> Void) async throws {
        try await MosquittoBroker.with { broker in
            let scratch = try ScratchDirectory()
            defer { scratch.remove() }
            try await body(broker, try install(in: scratch.url), scratch)
        }
    }

    func install(in directory: URL) throws -> Installation {
        let training = directory.appendingPathComponent("training")
        try SensorSimulator(Self.simulation).write(to: training, durationSeconds: Self.trainingSeconds)
        let fullURL = directory.appendingPathComponent("full.tandem")
        try full.write(to: fullURL)
        let specURL = directory.appendingPathComponent("edge-spec.yaml")
        try edgeSpec.write(to: specURL, atomically: true, encoding: .utf8)
        let keyURL = directory.appendingPathComponent("cloud.key")
        let (publicURL, _) = try SigningKeyFile.createKeyPair(at: keyURL)
        let data = directory.appendingPathComponent("data")
        let registry = try ModelRegistry(directory: data)
        let incoming = directory.appendingPathComponent("edge-1.tandem")
        try edge.write(to: incoming)
        try registry.register(
            artifactAt: incoming, signingKey: try SigningKeyFile.readPrivateKey(from: keyURL),
            lineage: ModelLineage(source: "initial"))
        try registry.setProduction("edge-1")
        let store = try SampleStore(path: data.appendingPathComponent("tandem.sqlite").path)
        return Installation(
            directory: directory, dataDirectory: data, trainingData: training, fullModel: fullURL, edgeSpec: specURL,
            signingKey: keyURL, publicKey: publicURL, registry: registry, store: store)
    }
}

/// A child process of a test with its standard error in a file; killed (SIGKILL) if still running when the
/// test lets go of it, so a failing test leaves no stray process behind.
///
/// `@unchecked Sendable`: its stored properties are set once in `init`; `Process` guards its own state.
final class ChildProcess: @unchecked Sendable {
    let process = Process()
    let errorURL: URL

    init(_ executable: URL, _ arguments: [String], errorURL: URL) throws {
        self.errorURL = errorURL
        _ = FileManager.default.createFile(atPath: errorURL.path, contents: nil)
        process.executableURL = executable
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = try FileHandle(forWritingTo: errorURL)
        try process.run()
    }

    /// What it wrote to standard error so far.
    var log: String { (try? String(contentsOf: errorURL, encoding: .utf8)) ?? "" }

    /// Sends SIGTERM and waits (at most `limit`) for it to exit; returns its exit status, nil if it had to be killed.
    func terminate(limit: Duration = .seconds(30)) async -> Int32? {
        guard process.isRunning else { return process.terminationStatus }
        kill(process.processIdentifier, SIGTERM)
        let deadline = ContinuousClock.now + limit
        while process.isRunning && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        guard !process.isRunning else {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            return nil
        }
        return process.terminationStatus
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}

/// The retraining tests' full model: a small stand-in for the FCN (two strided convolutions), trained with
/// early stopping on `train` (windows already standardized with `input`), as an artifact with four golden
/// inputs.
func smallFullModel(trainedOn train: LabeledWindows, input: InputSpec, epochs: Int = 12) throws -> ModelArtifact {
    let fullSpec = try ModelSpecFile.parse(
        """
        name: full
        layers:
          - {type: conv1d, filters: 16, kernel: 7, stride: 2, padding: same}
          - {type: batchnorm1d}
          - {type: relu}
          - {type: conv1d, filters: 24, kernel: 5, stride: 2, padding: same}
          - {type: batchnorm1d}
          - {type: relu}
          - {type: globalavgpool1d}
          - {type: dense, units: classes}
        """)
    var config = TrainingConfiguration()
    config.epochs = epochs
    config.minimumSteps = 0
    config.learningRate = 3e-3
    config.patience = 4
    let network = try Network(
        layers: fullSpec.layers, window: input.window, channels: train.channels,
        classes: train.classNames.count, seed: 5)
    _ = try Trainer(configuration: config).train(network, on: train)
    let model = try network.exportFloatModel()
    let manifest = ModelManifest(
        name: "full", version: "full-1", createdAt: "2026-01-01T00:00:00Z", architecture: model.architecture,
        input: input, classNames: train.classNames)
    return try ModelArtifact(model: model, manifest: manifest, goldenInputs: train.windows.slice(0..<4))
}
