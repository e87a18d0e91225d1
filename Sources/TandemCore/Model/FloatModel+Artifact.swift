#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

extension FloatModel {
    /// The weights as artifact tensors, in layer order.
    public var artifactTensors: [ArtifactTensor] {
        weights.keys.sorted { a, b in
            let (la, lb) = (Int(a.prefix { $0 != "." }) ?? 0, Int(b.prefix { $0 != "." }) ?? 0)
            return la == lb ? a < b : la < lb
        }.map { .float32($0, weights[$0]!) }
    }

    /// Rebuilds the float model an artifact stores, checking every weight against the architecture.
    ///
    /// - Throws: `ModelError` if the artifact is not a float32 model or its weights do not fit.
    public init(artifact: ModelArtifact) throws {
        let manifest = artifact.manifest
        guard manifest.numerics == "float32" else {
            throw ModelError(
                .badWeights,
                "model \(manifest.name) \(manifest.version) holds \(manifest.numerics) weights, not float32")
        }
        try manifest.input.validate()
        guard Kernels.isFloatAvailable else {
            throw ModelError(
                .unavailable,
                "float32 model \(manifest.name) needs OpenBLAS (libopenblas0): \(Kernels.floatUnavailableReason)")
        }
        var weights = [String: Tensor]()
        for tensor in artifact.tensors {
            guard case .float32(let value) = tensor.storage else {
                throw ModelError(
                    .badWeights, "tensor `\(tensor.name)` is \(tensor.elementType), a float model needs float32")
            }
            weights[tensor.name] = value
        }
        try self.init(
            architecture: manifest.architecture, window: manifest.input.window, channels: manifest.input.channels,
            classes: manifest.classNames.count, weights: weights)
    }
}

/// A golden-input self-test failed: the model does not reproduce the outputs recorded when it was made.
public struct SelfTestError: Error, CustomStringConvertible, Sendable {
    /// The golden window whose output differed.
    public var window: Int
    /// The largest absolute difference found.
    public var difference: Float
    /// `golden window N differs by D`.
    public var description: String {
        "self-test failed: golden window \(window) differs from its recorded output by \(difference)"
    }
}

extension ModelArtifact {
    /// Packages a float model with its manifest; the golden outputs are computed by running the model.
    ///
    /// - Parameter goldenInputs: a few normalized windows `[n, window, channels]` for the self-test.
    public init(model: FloatModel, manifest: ModelManifest, goldenInputs: Tensor) throws {
        self.init(
            manifest: manifest, tensors: model.artifactTensors, goldenInputs: goldenInputs,
            goldenOutputs: try model.logits(for: goldenInputs))
    }

    /// Checks that `logits` for the golden inputs match the stored golden outputs.
    ///
    /// The tolerance is relative to each window's largest output, so it holds across BLAS builds and
    /// CPUs (which may sum in a different order), yet catches any real change to the weights.
    /// - Throws: `SelfTestError` naming the first window that differs.
    public func verifyGoldenOutputs(_ logits: Tensor, tolerance: Float = 1e-3) throws {
        guard logits.shape == goldenOutputs.shape else {
            throw SelfTestError(window: 0, difference: .infinity)
        }
        let width = goldenOutputs.shape.count > 1 ? goldenOutputs.shape[1] : 1
        for row in 0..<(goldenOutputs.count / max(width, 1)) {
            var scale: Float = 1
            var worst: Float = 0
            for j in 0..<width {
                let i = row * width + j
                scale = max(scale, abs(goldenOutputs.scalars[i]))
                let d = abs(logits.scalars[i] - goldenOutputs.scalars[i])
                worst = d.isNaN ? .infinity : max(worst, d)
            }
            if worst > tolerance * scale { throw SelfTestError(window: row, difference: worst) }
        }
    }
}
