import Foundation
import TandemCore

/// Classifies standardized windows: the seam between the agent and an inference engine.
///
/// The float engine (``FloatWindowClassifier``) implements it today; the int8 engine plugs in the same way.
public protocol WindowClassifier: Sendable {
    /// The model's version string.
    var modelVersion: String { get }
    /// The class names, in output order.
    var classNames: [String] { get }
    /// The input the model expects (window, hop, channels, sample rate, standardization).
    var input: InputSpec { get }
    /// Writes the class probabilities of one standardized window.
    ///
    /// - Parameters:
    ///   - window: `input.window × input.channels` standardized values, sample-major.
    ///   - probabilities: Room for `classNames.count` probabilities.
    /// - Throws: ``ModelLoadError`` (code `incompatible`) if the sizes do not match.
    func classify(_ window: UnsafeBufferPointer<Float>, into probabilities: UnsafeMutableBufferPointer<Float>) throws
}

/// A model was refused at load: unreadable, untrusted, incompatible or failing its self-test.
public struct ModelLoadError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The kind of failure.
    public enum Code: String, Sendable {
        /// The artifact cannot be read or is corrupt (checksum, layout).
        case unreadable
        /// The signature is missing, from an untrusted key, or does not verify.
        case untrusted
        /// The model does not fit the configuration (channels) or is not a model this engine runs.
        case incompatible
        /// The golden-input self-test failed.
        case selfTestFailed
        /// A trusted key file cannot be read.
        case badKey
    }

    /// The kind of failure.
    public var code: Code
    /// What failed, naming the file.
    public var message: String

    /// Creates an error.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// `code: message`.
    public var description: String { "\(code.rawValue): \(message)" }
}

/// The float32 engine behind ``WindowClassifier``: a ``FloatModel`` from a verified `.tandem` artifact.
///
/// Until the int8 engine lands this is what the agent runs. Each call builds a one-window input
/// tensor, so it allocates per window (not per sample).
public struct FloatWindowClassifier: WindowClassifier {
    /// The model.
    public let model: FloatModel
    /// The model's manifest.
    public let manifest: ModelManifest

    /// The model's version string.
    public var modelVersion: String { manifest.version }
    /// The class names.
    public var classNames: [String] { manifest.classNames }
    /// The model's input spec.
    public var input: InputSpec { manifest.input }

    /// Wraps a model and its manifest.
    public init(model: FloatModel, manifest: ModelManifest) {
        self.model = model
        self.manifest = manifest
    }

    /// Loads and verifies the artifact at `path`: SHA-256 checksum, the Ed25519 signature against
    /// `trustedKeyPaths` (when any are given, or when `requireSignature`), the input spec, and the
    /// golden-input self-test.
    ///
    /// - Throws: ``ModelLoadError`` naming the file and what failed.
    public static func load(path: String, trustedKeyPaths: [String] = [], requireSignature: Bool = false)
        throws(ModelLoadError)
        -> FloatWindowClassifier
    {
        let artifact: ModelArtifact
        do throws(ArtifactError) {
            let keys = try trustedKeyPaths.map { (keyPath: String) throws(ArtifactError) in
                try SigningKeyFile.readPublicKey(from: URL(fileURLWithPath: keyPath))
            }
            let mustSign = requireSignature || !keys.isEmpty
            artifact = try ModelArtifact.read(
                from: URL(fileURLWithPath: path), trustedKeys: mustSign ? keys : nil, requireSignature: mustSign)
        } catch {
            switch error.code {
            case .badKeyFile: throw ModelLoadError(.badKey, error.description)
            case .badSignature, .untrustedKey, .missingSignature: throw ModelLoadError(.untrusted, error.description)
            default: throw ModelLoadError(.unreadable, error.description)
            }
        }
        let model: FloatModel
        do {
            model = try FloatModel(artifact: artifact)
        } catch {
            throw ModelLoadError(.incompatible, "\(path): \(error)")
        }
        do {
            try artifact.verifyGoldenOutputs(try model.logits(for: artifact.goldenInputs))
        } catch {
            throw ModelLoadError(.selfTestFailed, "\(path): \(error)")
        }
        return FloatWindowClassifier(model: model, manifest: artifact.manifest)
    }

    /// Writes the class probabilities of one standardized window.
    public func classify(_ window: UnsafeBufferPointer<Float>, into probabilities: UnsafeMutableBufferPointer<Float>)
        throws
    {
        let size = model.window * model.channels
        guard window.count == size, probabilities.count >= model.classes else {
            throw ModelLoadError(
                .incompatible,
                "window of \(window.count) values for a model taking \(size), room for \(probabilities.count) of \(model.classes) classes"
            )
        }
        let output = try model.probabilities(
            for: Tensor(shape: [1, model.window, model.channels], scalars: Array(window)))
        for i in 0..<model.classes { probabilities[i] = output.scalars[i] }
    }
}
