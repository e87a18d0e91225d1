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

/// Reads a `.tandem` artifact, verifies it (``VerifiedModel``) and returns the classifier for its numerics.
public enum EdgeModelLoader {
    /// Loads and verifies the artifact at `path`: a float32 artifact becomes a ``FloatWindowClassifier``,
    /// an int8 one an ``Int8WindowClassifier``.
    ///
    /// - Parameters:
    ///   - trustedKeyPaths: Public key files; when any are given the artifact must be signed by one of them.
    ///   - revokedKeyIDs: Ids of revoked keys, whose signatures are refused.
    ///   - requireSignature: Refuse unsigned artifacts even without trusted keys (then none can pass).
    /// - Throws: ``ModelLoadError`` naming the file and what failed.
    public static func load(
        path: String, trustedKeyPaths: [String] = [], revokedKeyIDs: Set<String> = [], requireSignature: Bool = false
    ) throws(ModelLoadError) -> any WindowClassifier {
        let verified = try VerifiedModel.load(
            path: path, trustedKeyPaths: trustedKeyPaths, revokedKeyIDs: revokedKeyIDs,
            requireSignature: requireSignature)
        switch verified.engine {
        case .int8(let model): return Int8WindowClassifier(model: model, manifest: verified.manifest)
        case .float(let model): return FloatWindowClassifier(model: model, manifest: verified.manifest)
        }
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
    /// The manifest's novelty statistics when they fit the model; nil turns novelty detection off.
    public let novelty: NoveltyStatistics?
    private let idle: Mutex<[EngineBox]>

    /// Wraps a quantized model and its manifest. Novelty statistics that do not fit the model are ignored (a
    /// verified artifact's always fit: ``VerifiedModel`` refuses the others).
    public init(model: QuantizedModel, manifest: ModelManifest) {
        self.model = model
        self.manifest = manifest
        var engines = [EngineBox]()
        engines.reserveCapacity(64)
        let novelty = manifest.novelty.flatMap { statistics in
            (try? statistics.validate(classes: model.classes, channels: model.channels)) == nil ? nil : statistics
        }
        self.novelty = novelty
        engines.append(EngineBox(model: model, novelty: novelty))
        idle = Mutex(engines)
    }

    /// Whether this classifier tells novel windows apart.
    public var detectsNovelty: Bool { novelty != nil }

    /// Writes the class probabilities of one standardized window.
    public func classify(_ window: UnsafeBufferPointer<Float>, into probabilities: UnsafeMutableBufferPointer<Float>)
        throws
    {
        _ = try classify(window, into: probabilities, detectingNovelty: false)
    }

    /// Writes the class probabilities of one standardized window and scores its novelty on the same engine
    /// (one pass over the window and a triangular solve over its statistics; nothing allocated).
    public func classifyDetectingNovelty(
        _ window: UnsafeBufferPointer<Float>, into probabilities: UnsafeMutableBufferPointer<Float>
    ) throws -> Bool {
        try classify(window, into: probabilities, detectingNovelty: true)
    }

    /// Classifies on an engine from the pool, scoring novelty too when asked.
    private func classify(
        _ window: UnsafeBufferPointer<Float>, into probabilities: UnsafeMutableBufferPointer<Float>,
        detectingNovelty: Bool
    ) throws -> Bool {
        try ModelLoadError.checkSizes(
            window: window.count, probabilities: probabilities.count, window: model.window,
            channels: model.channels, classes: model.classes)
        let box = idle.withLock { $0.popLast() } ?? EngineBox(model: model, novelty: novelty)
        defer { idle.withLock { $0.append(box) } }
        let prediction = try box.engine.classify(window, probabilities: probabilities)
        guard detectingNovelty, let scorer = box.novelty else { return false }
        return scorer.isNovel(window, predicted: prediction.label)
    }
}

/// One engine and its novelty scorer, handed between threads only through ``Int8WindowClassifier``'s pool (one
/// user at a time).
private final class EngineBox: @unchecked Sendable {
    let engine: Int8Engine
    let novelty: NoveltyScorer?
    init(model: QuantizedModel, novelty: NoveltyStatistics?) {
        engine = Int8Engine(model: model)
        self.novelty = novelty.map { NoveltyScorer(statistics: $0, length: model.window, channels: model.channels) }
    }
}
