import Foundation
import Synchronization
import TandemCore
import TandemFleet
import TandemTraining

/// The full model a worker answers with, and the switch to a newer full version that the trainer registered.
///
/// A version runs as a ``BatchClassifier``: float32 or int8 (`tandem-cloud serve --precision int8` with a model from
/// `tandem compress --int8-only`), each batch split across the worker's model threads.
///
/// A worker starts with its configured model (`--model`). The retraining loop registers each fine-tuned full model
/// that passed its gate in the full-model registry (`{data-dir}/full`, a ``ModelRegistry`` of its own) and makes it
/// production there; rolling back makes the previous version production again. ``refresh()`` (the worker calls it
/// every ``EscalationServer/Configuration/fullModelCheckSeconds`` on a thread of its own) reads that production
/// version and, when it differs from the one being served, loads the artifact with the worker's trusted keys (the
/// checks a device makes: digest, signature, input spec, golden self-test), checks that it takes the same windows
/// and classes as the configured model, and swaps it in. The batching thread takes ``current`` once per batch, so
/// a batch is answered by one version from start to end and no escalation waits on the swap.
///
/// A version that fails to load is reported once and tried again every ``retrySeconds`` (a file still being copied,
/// a network disk back); the worker keeps the model it has meanwhile.
public final class ServingModel: Sendable {
    /// A model and its manifest, as one batch uses them.
    public struct Version: Sendable {
        /// The model, float32 or int8, with the threads a batch is split across.
        public var classifier: BatchClassifier
        /// Its manifest (version, input spec, classes).
        public var manifest: ModelManifest

        /// A model and its manifest.
        public init(classifier: BatchClassifier, manifest: ModelManifest) {
            self.classifier = classifier
            self.manifest = manifest
        }
    }

    /// What one ``refresh()`` did.
    public enum Change: Sendable, Equatable {
        /// Nothing: no registry, no production version, or the one being served.
        case none
        /// Swapped from the first version to the second.
        case swapped(from: String, to: String)
        /// The production version could not be used; the message says why (reported once per version).
        case refused(version: String, reason: String)
    }

    private let state: Mutex<(current: Version, refused: [String: ContinuousClock.Instant])>
    /// Seconds before a version that failed to load is tried again. Default 60.
    public let retrySeconds: Double
    /// The configured model: what a registry version must match in shape and classes.
    let configured: Version
    /// The full-model registry, if the worker follows one.
    let registry: ModelRegistry?
    let trustedKeyPaths: [String]

    /// A serving model that starts with `initial` and follows `registry`'s production version.
    ///
    /// - Parameters:
    ///   - registry: The full-model registry (`{data-dir}/full`), or nil to serve `initial` only.
    ///   - trustedKeyPaths: Public key files a registry version must be signed by (when any are given).
    ///   - retrySeconds: Seconds before a version that failed to load is tried again.
    public init(initial: Version, registry: ModelRegistry?, trustedKeyPaths: [String], retrySeconds: Double = 60) {
        state = Mutex((initial, [:]))
        self.retrySeconds = retrySeconds
        configured = initial
        self.registry = registry
        self.trustedKeyPaths = trustedKeyPaths
    }

    /// A registry version, loaded: float32 or int8 — the trainer registers float32 full models, which a worker
    /// serving an int8 model then answers with in float32 (its log says so) — split across the threads the
    /// configured model uses.
    private func version(at path: String) throws -> Version {
        let verified = try VerifiedModel.load(path: path, trustedKeyPaths: trustedKeyPaths)
        let classifier = BatchClassifier(engine: verified.engine, threads: configured.classifier.threads)
        let c = configured.classifier
        guard classifier.window == c.window, classifier.channels == c.channels,
            verified.manifest.classNames == configured.manifest.classNames
        else {
            throw RetrainingError(
                "it takes \(classifier.window)×\(classifier.channels) windows into \(verified.manifest.classNames), the "
                    + "worker's model \(c.window)×\(c.channels) into \(configured.manifest.classNames)")
        }
        return Version(classifier: classifier, manifest: verified.manifest)
    }

    /// The version answering now.
    public var current: Version { state.withLock { $0.current } }

    /// Swaps to the registry's production version if it is another one and usable.
    public func refresh() -> Change {
        guard let registry, let production = try? registry.productionVersion() else { return .none }
        let now = ContinuousClock.now
        let (serving, refusedAt) = state.withLock { ($0.current.manifest.version, $0.refused[production]) }
        guard production != serving else { return .none }
        if let refusedAt, now - refusedAt < .seconds(retrySeconds) { return .none }
        let loaded: Version
        do {
            loaded = try version(at: registry.artifactURL(version: production).path)
        } catch {
            state.withLock { $0.refused[production] = now }
            return refusedAt == nil ? .refused(version: production, reason: "\(error)") : .none
        }
        return state.withLock { state in
            let from = state.current.manifest.version
            state.current = loaded
            state.refused[production] = nil
            return .swapped(from: from, to: production)
        }
    }
}

extension ModelRegistry {
    /// The full-model registry of a data directory: `{data-dir}/full`, whose production version the workers answer
    /// with (``ServingModel``) and the trainer's rounds fine-tune.
    public static func fullModelsDirectory(in dataDirectory: String) -> URL {
        URL(fileURLWithPath: dataDirectory).appendingPathComponent("full")
    }
}
