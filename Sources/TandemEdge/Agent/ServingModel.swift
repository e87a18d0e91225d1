import Synchronization
import TandemCore

/// The classifier serving now and how many times it has been replaced: what a stream reads before each
/// window, and what a model update swaps.
///
/// A swap is atomic: a window is classified entirely by the old model or entirely by the new one. The
/// generation tells a stream that the model changed since its last window, so it re-standardizes the
/// samples it holds with the new model's statistics.
final class ServingModel: Sendable {
    private let state: Mutex<(classifier: any WindowClassifier, generation: Int)>

    /// Serves `classifier` as generation 0.
    init(_ classifier: any WindowClassifier) {
        state = Mutex((classifier, 0))
    }

    /// The classifier serving now and its generation (0 for the first, one more for each replacement).
    var current: (classifier: any WindowClassifier, generation: Int) {
        state.withLock { ($0.classifier, $0.generation) }
    }

    /// The classifier serving now.
    var classifier: any WindowClassifier { state.withLock { $0.classifier } }

    /// Serves `classifier` from the next window on.
    ///
    /// - Throws: ``ModelLoadError`` (`incompatible`) naming what differs (see
    ///   ``checkCompatible(_:replacing:)``); the old model keeps serving.
    func install(_ classifier: any WindowClassifier) throws(ModelLoadError) {
        try state.withLock { current throws(ModelLoadError) in
            try Self.checkCompatible(classifier, replacing: current.classifier)
            current = (classifier, current.generation + 1)
        }
    }

    /// Why `new` cannot replace `old`, if it cannot: the input (window, hop, channels, sample rate) and the
    /// class names must be the same; the standardization may differ.
    static func checkCompatible(_ new: any WindowClassifier, replacing old: any WindowClassifier)
        throws(ModelLoadError)
    {
        let differences = new.input.replacementDifferences(
            classNames: new.classNames, replacing: old.input, currentClasses: old.classNames)
        guard differences.isEmpty else {
            throw ModelLoadError(
                .incompatible,
                "model \(new.modelVersion) cannot replace \(old.modelVersion): \(differences.joined(separator: ", "))")
        }
    }
}
