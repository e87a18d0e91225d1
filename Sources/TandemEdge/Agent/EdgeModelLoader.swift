import Synchronization
import TandemCore

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// Reads a `.tandem` artifact, verifies it and returns the classifier for its numerics.
///
/// The checks run in this order, and the first failure is the error: SHA-256 and layout
/// (`unreadable`), the Ed25519 signature against the trusted keys (`untrusted`; `badKey` when a key file
/// is unusable), the input spec and the weights (`incompatible`), the golden-input self-test
/// (`selfTestFailed`). Model updates go through the same function, so a file the agent starts with
/// and a file it is sent are held to the same rules.
public enum EdgeModelLoader {
    /// Loads and verifies the artifact at `path`: a float32 artifact becomes a ``FloatWindowClassifier``,
    /// an int8 one an ``Int8WindowClassifier``.
    ///
    /// - Parameters:
    ///   - trustedKeyPaths: Public key files; when any are given the artifact must be signed by one of them.
    ///   - requireSignature: Refuse unsigned artifacts even without trusted keys (then none can pass).
    /// - Throws: ``ModelLoadError`` naming the file and what failed.
    public static func load(path: String, trustedKeyPaths: [String] = [], requireSignature: Bool = false)
        throws(ModelLoadError) -> any WindowClassifier
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
        do {
            try artifact.manifest.input.validate()
        } catch {
            throw ModelLoadError(.incompatible, "\(path): input spec: \(error)")
        }
        let classifier: any WindowClassifier
        let logits: (Tensor) throws -> Tensor
        do {
            if artifact.manifest.numerics == QuantizedModel.numerics {
                let model = try QuantizedModel(artifact: artifact)
                let engine = Int8Engine(model: model)
                logits = { try engine.logits(for: $0) }
                classifier = Int8WindowClassifier(model: model, manifest: artifact.manifest)
            } else {
                let model = try FloatModel(artifact: artifact)
                logits = { try model.logits(for: $0) }
                classifier = FloatWindowClassifier(model: model, manifest: artifact.manifest)
            }
        } catch {
            throw ModelLoadError(.incompatible, "\(path): \(error)")
        }
        do {
            try artifact.verifyGoldenOutputs(try logits(artifact.goldenInputs))
        } catch {
            throw ModelLoadError(.selfTestFailed, "\(path): \(error)")
        }
        return classifier
    }
}

/// The int8 engine behind ``WindowClassifier``.
///
/// An ``Int8Engine`` owns one arena and is not thread-safe, so the classifier keeps a small pool:
/// a call takes an idle engine (or makes one the first time that many calls overlap) and gives it back.
/// After warm-up a window allocates nothing.
public final class Int8WindowClassifier: WindowClassifier {
    /// The model's manifest.
    public let manifest: ModelManifest
    /// The quantized model.
    public let model: QuantizedModel
    private let idle: Mutex<[EngineBox]>

    /// Wraps a quantized model and its manifest.
    public init(model: QuantizedModel, manifest: ModelManifest) {
        self.model = model
        self.manifest = manifest
        var engines = [EngineBox]()
        engines.reserveCapacity(64)
        engines.append(EngineBox(Int8Engine(model: model)))
        idle = Mutex(engines)
    }

    /// Writes the class probabilities of one standardized window.
    public func classify(_ window: UnsafeBufferPointer<Float>, into probabilities: UnsafeMutableBufferPointer<Float>)
        throws
    {
        try ModelLoadError.checkSizes(
            window: window.count, probabilities: probabilities.count, window: model.window,
            channels: model.channels, classes: model.classes)
        let box = idle.withLock { $0.popLast() } ?? EngineBox(Int8Engine(model: model))
        defer { idle.withLock { $0.append(box) } }
        _ = try box.engine.classify(window, probabilities: probabilities)
    }
}

/// One engine, handed between threads only through ``Int8WindowClassifier``'s pool (one user at a time).
private final class EngineBox: @unchecked Sendable {
    let engine: Int8Engine
    init(_ engine: Int8Engine) { self.engine = engine }
}
