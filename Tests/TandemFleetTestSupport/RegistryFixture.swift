import Foundation
import TandemCore
import TandemFleet
import TandemTestSupport

/// A small edge model (flatten → dense) with seeded weights times `scale`: a large scale makes confident
/// predictions, a tiny one near-uniform probabilities (so every window is escalated).
public func edgeArtifact(
    version: String, seed: UInt64 = 1, scale: Float = 0.3, channels: Int = 3, parent: String? = nil
) throws -> ModelArtifact {
    try flattenDenseArtifact(
        name: "edge-test", version: version, parentVersion: parent, seed: seed, scale: scale, channels: channels,
        mean: 0.5, std: 2, classPrefix: "class", metrics: ["test_accuracy": 0.9])
}

/// A flatten → dense model over windows of `window` samples (hop `window / 2`) with seeded Gaussian weights
/// times `scale` and zero bias, as a verified artifact with two golden inputs.
public func flattenDenseArtifact(
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
public struct RegistryFixture: Sendable {
    /// The scratch directory; `remove()` it when done.
    public let scratch: ScratchDirectory
    /// The private key file.
    public let keyURL: URL
    /// The public key file's path, as an agent's `trustedKeys` names it.
    public let publicKeyPath: String
    /// The registry in `scratch/data`.
    public let registry: ModelRegistry

    /// Creates the directory, the key pair and the empty registry.
    public init() throws {
        scratch = try ScratchDirectory()
        keyURL = scratch.url.appendingPathComponent("cloud.key")
        let (publicURL, _) = try SigningKeyFile.createKeyPair(at: keyURL)
        publicKeyPath = publicURL.path
        registry = try ModelRegistry(directory: scratch.url.appendingPathComponent("data"))
    }

    /// The assignment signer of `fleet`, with the fixture's key and its sequence in the registry's directory.
    public func signer(fleet: String = "plant") throws -> AssignmentSigner {
        try AssignmentSigner(
            key: try SigningKeyFile.readPrivateKey(from: keyURL),
            state: FleetSigningState(directory: registry.directory, fleet: fleet))
    }

    /// Writes `artifact` (unsigned) to the scratch directory and returns its URL.
    public func file(_ artifact: ModelArtifact) throws -> URL {
        let url = scratch.url.appendingPathComponent("incoming-\(artifact.manifest.version).tandem")
        try artifact.write(to: url)
        return url
    }

    /// Registers `artifact`.
    @discardableResult
    public func register(_ artifact: ModelArtifact, source: String = "retrain", force: Bool = false) throws
        -> ModelVersionRecord
    {
        try registry.register(
            artifactAt: try file(artifact), signingKey: try SigningKeyFile.readPrivateKey(from: keyURL),
            lineage: ModelLineage(source: source), force: force)
    }
}
