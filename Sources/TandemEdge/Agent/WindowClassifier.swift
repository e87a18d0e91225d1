import TandemCore

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// Classifies standardized windows: the seam between the agent and an inference engine.
///
/// ``FloatWindowClassifier`` runs float32 artifacts, ``Int8WindowClassifier`` int8 ones;
/// ``EdgeModelLoader`` picks by the artifact's `numerics`.
public protocol WindowClassifier: Sendable {
    /// The verified model's manifest: version, class names, input spec, metrics.
    var manifest: ModelManifest { get }
    /// Writes the class probabilities of one standardized window.
    ///
    /// - Parameters:
    ///   - window: `input.window × input.channels` standardized values, sample-major.
    ///   - probabilities: Room for `classNames.count` probabilities.
    /// - Throws: ``ModelLoadError`` (code `incompatible`) if the sizes do not match.
    func classify(_ window: UnsafeBufferPointer<Float>, into probabilities: UnsafeMutableBufferPointer<Float>) throws
    /// Writes the class probabilities of one standardized window and tells whether the window is novel: its
    /// waveform statistics farther from the predicted class's than the threshold the artifact records
    /// (``ModelManifest/novelty``). A classifier without novelty statistics says false.
    ///
    /// - Throws: ``ModelLoadError`` (code `incompatible`) if the sizes do not match.
    func classifyDetectingNovelty(
        _ window: UnsafeBufferPointer<Float>, into probabilities: UnsafeMutableBufferPointer<Float>
    ) throws -> Bool
    /// Whether ``classifyDetectingNovelty(_:into:)`` can say true: an int8 model with novelty statistics.
    var detectsNovelty: Bool { get }
}

extension WindowClassifier {
    /// Classifies without novelty detection: never novel.
    public func classifyDetectingNovelty(
        _ window: UnsafeBufferPointer<Float>, into probabilities: UnsafeMutableBufferPointer<Float>
    ) throws -> Bool {
        try classify(window, into: probabilities)
        return false
    }

    /// No novelty detection.
    public var detectsNovelty: Bool { false }

    /// The model's version string.
    public var modelVersion: String { manifest.version }
    /// The class names, in output order.
    public var classNames: [String] { manifest.classNames }
    /// The input the model expects (window, hop, channels, sample rate, standardization).
    public var input: InputSpec { manifest.input }

    /// Calibration quantiles of `measure` from the manifest's metrics `confidence.<measure>.p<percent>`, as
    /// `tandem compress` records them (`confidence.max_probability.p10`; the camel-case spelling
    /// `confidence.maxProbability.p10` is read too), if there are at least two.
    public func calibration(for measure: ConfidenceMeasure) -> CalibrationQuantiles? {
        let prefixes = ["confidence.\(measure.manifestName).p", "confidence.\(measure.rawValue).p"]
        for prefix in prefixes {
            let points = manifest.metrics.compactMap { key, value -> (Double, Double)? in
                guard key.hasPrefix(prefix), let percent = Double(key.dropFirst(prefix.count)) else { return nil }
                return (percent / 100, value)
            }.sorted { $0.0 < $1.0 }
            if let quantiles = try? CalibrationQuantiles(levels: points.map(\.0), values: points.map(\.1)) {
                return quantiles
            }
        }
        return nil
    }
}

extension ModelLoadError {
    /// Throws `incompatible` unless a window of `given` values and room for `room` probabilities fit a model
    /// of `window × channels` inputs and `classes` outputs.
    static func checkSizes(window given: Int, probabilities room: Int, window: Int, channels: Int, classes: Int)
        throws(ModelLoadError)
    {
        guard given == window * channels, room >= classes else {
            throw ModelLoadError(
                .incompatible,
                "window of \(given) values for a model taking \(window * channels), room for \(room) of \(classes) classes"
            )
        }
    }
}

/// The float32 engine behind ``WindowClassifier``: a ``FloatModel`` from a verified `.tandem` artifact.
///
/// Each call builds a one-window input tensor, so it allocates per window (not per sample); edge models
/// are normally int8 (``Int8WindowClassifier``), which allocates nothing.
public struct FloatWindowClassifier: WindowClassifier {
    /// The model.
    public let model: FloatModel
    /// The model's manifest.
    public let manifest: ModelManifest

    /// Wraps a model and its manifest.
    public init(model: FloatModel, manifest: ModelManifest) {
        self.model = model
        self.manifest = manifest
    }

    /// Loads and verifies a float32 artifact (see ``EdgeModelLoader/load(path:trustedKeyPaths:revokedKeyIDs:requireSignature:)``).
    ///
    /// - Throws: ``ModelLoadError`` naming the file and what failed; `incompatible` for an int8 artifact.
    public static func load(path: String, trustedKeyPaths: [String] = [], requireSignature: Bool = false)
        throws(ModelLoadError)
        -> FloatWindowClassifier
    {
        let loaded = try EdgeModelLoader.load(
            path: path, trustedKeyPaths: trustedKeyPaths, requireSignature: requireSignature)
        guard let float = loaded as? FloatWindowClassifier else {
            throw ModelLoadError(.incompatible, "\(path): \(loaded.manifest.numerics) model, float32 expected")
        }
        return float
    }

    /// Writes the class probabilities of one standardized window.
    public func classify(_ window: UnsafeBufferPointer<Float>, into probabilities: UnsafeMutableBufferPointer<Float>)
        throws
    {
        try ModelLoadError.checkSizes(
            window: window.count, probabilities: probabilities.count, window: model.window,
            channels: model.channels, classes: model.classes)
        let output = try model.probabilities(
            for: Tensor(shape: [1, model.window, model.channels], scalars: Array(window)))
        for i in 0..<model.classes { probabilities[i] = output.scalars[i] }
    }
}
