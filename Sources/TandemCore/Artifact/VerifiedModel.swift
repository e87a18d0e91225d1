#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// A model artifact that passed every check a device makes, with the model it runs.
///
/// The checks run in this order, and the first failure is the error: SHA-256 and layout (`unreadable`), the
/// Ed25519 signature against the trusted keys (`untrusted`; `badKey` when a key file is unusable), the input spec
/// and the weights (`incompatible`), the golden-input self-test (`selfTestFailed`). The edge's loader and the
/// cloud's registry both go through ``load(path:trustedKeyPaths:revokedKeyIDs:requireSignature:)``, so a model the registry
/// accepts is one every device will accept, and a file an agent starts with and a file it is sent are held to the
/// same rules.
public struct VerifiedModel: Sendable {
    /// The numerics a verified artifact runs with.
    public enum Engine: Sendable {
        /// A float32 model (OpenBLAS).
        case float(FloatModel)
        /// An int8 model (the integer engine).
        case int8(QuantizedModel)
    }

    /// The artifact as read and verified.
    public let artifact: ModelArtifact
    /// The model built from it.
    public let engine: Engine

    /// The artifact's manifest.
    public var manifest: ModelManifest { artifact.manifest }

    /// Reads the artifact at `path` and verifies it.
    ///
    /// - Parameters:
    ///   - trustedKeyPaths: Public key files; when any are given the artifact must be signed by one of them.
    ///   - revokedKeyIDs: Ids of keys a signed revocation list revoked: their signatures are refused.
    ///   - requireSignature: Refuse unsigned artifacts even without trusted keys (then none can pass).
    /// - Throws: ``ModelLoadError`` naming the file and what failed.
    public static func load(
        path: String, trustedKeyPaths: [String] = [], revokedKeyIDs: Set<String> = [], requireSignature: Bool = false
    ) throws(ModelLoadError) -> VerifiedModel {
        let artifact: ModelArtifact
        do throws(ArtifactError) {
            let keys = try trustedKeyPaths.map { (keyPath: String) throws(ArtifactError) in
                try SigningKeyFile.readPublicKey(from: URL(fileURLWithPath: keyPath))
            }
            let mustSign = requireSignature || !keys.isEmpty
            artifact = try ModelArtifact.read(
                from: URL(fileURLWithPath: path), trustedKeys: mustSign ? keys : nil, revokedKeyIDs: revokedKeyIDs,
                requireSignature: mustSign)
        } catch {
            switch error.code {
            case .badKeyFile: throw ModelLoadError(.badKey, error.description)
            case .badSignature, .untrustedKey, .revokedKey, .missingSignature:
                throw ModelLoadError(.untrusted, error.description)
            default: throw ModelLoadError(.unreadable, error.description)
            }
        }
        return try VerifiedModel(artifact: artifact, source: path)
    }

    /// Verifies an artifact already read (its hash and signature checked by the reader): input spec, weights,
    /// golden self-test.
    ///
    /// - Parameter source: Where the artifact came from, for messages.
    /// - Throws: ``ModelLoadError`` (`incompatible` or `selfTestFailed`).
    public init(artifact: ModelArtifact, source: String) throws(ModelLoadError) {
        do {
            try artifact.manifest.input.validate()
        } catch {
            throw ModelLoadError(.incompatible, "\(source): input spec: \(error)")
        }
        let engine: Engine
        let logits: (Tensor) throws -> Tensor
        do {
            if artifact.manifest.numerics == QuantizedModel.numerics {
                let model = try QuantizedModel(artifact: artifact)
                let int8 = Int8Engine(model: model)
                // Statistics of a kind this build does not compute are left unused (a newer artifact still loads);
                // statistics of this kind that do not fit the model or hold unusable numbers refuse it.
                if let novelty = artifact.manifest.novelty, novelty.kind == NoveltyStatistics.currentKind {
                    try novelty.validate(classes: model.classes, channels: model.channels)
                }
                logits = { try int8.logits(for: $0) }
                engine = .int8(model)
            } else {
                let model = try FloatModel(artifact: artifact)
                logits = { try model.logits(for: $0) }
                engine = .float(model)
            }
        } catch {
            throw ModelLoadError(.incompatible, "\(source): \(error)")
        }
        do {
            try artifact.verifyGoldenOutputs(try logits(artifact.goldenInputs))
        } catch {
            throw ModelLoadError(.selfTestFailed, "\(source): \(error)")
        }
        self.artifact = artifact
        self.engine = engine
    }
}

/// A model was refused at load: unreadable, untrusted, incompatible or failing its self-test.
public struct ModelLoadError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The kind of failure.
    public enum Code: String, Sendable {
        /// The artifact cannot be read or is corrupt (checksum, layout).
        case unreadable
        /// The signature is missing, from an untrusted or revoked key, or does not verify.
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
