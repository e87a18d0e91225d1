import TandemCore

/// How the importance of a conv filter or dense unit is measured.
public enum PruningCriterion: String, Codable, Sendable, CaseIterable {
    /// The L1 norm of the unit's weights (Li et al. 2017).
    case l1
    /// The magnitude of the following batch norm's scale γ (Liu et al. 2017, network slimming);
    /// units without a following batch norm fall back to L1.
    case batchNormScale = "bn-scale"
}

/// How much to prune.
public enum PruningTarget: Sendable, Equatable {
    /// Remove this fraction (in `[0, 1)`) of the units of every prunable layer (at least one unit stays).
    case sparsity(Float)
    /// Remove the least important units across layers until one window costs at most this many MACs.
    case macBudget(Int)
}

/// What pruning did, for the compression report.
public struct PruningReport: Codable, Sendable, Equatable {
    /// Trainable scalars before and after.
    public var parametersBefore: Int
    /// Trainable scalars after pruning.
    public var parametersAfter: Int
    /// Multiply–accumulates per window before.
    public var macsBefore: Int
    /// Multiply–accumulates per window after.
    public var macsAfter: Int
    /// Units per pruned layer before → after, keyed by layer index.
    public var units: [String: [Int]]
}

/// Structured pruning: removes whole conv filters and dense units, producing a genuinely smaller network.
///
/// Removing filter `f` of a convolution removes row `f` of its weights and bias, entry `f` of the batch
/// norm after it, and input channel `f` of the next convolution (or input column `f` of the dense layer
/// after a global average pool). The classifier layer and layers feeding a `flatten` are not pruned.
/// Fine-tune the result afterwards (with `Trainer` or `Distiller`): pruning alone loses accuracy.
public struct StructuredPruner: Sendable {
    /// The importance measure.
    public var criterion: PruningCriterion
    /// How much to remove.
    public var target: PruningTarget

    /// Creates a pruner.
    public init(criterion: PruningCriterion = .l1, target: PruningTarget) {
        self.criterion = criterion
        self.target = target
    }

    /// Multiply–accumulates per window of a layer stack.
    public static func macs(_ specs: [LayerSpec], window: Int, channels: Int, classes: Int) throws -> Int {
        let shapes = try ModelShapes.trace(specs, window: window, channels: channels, classes: classes)
        var total = 0
        for (i, spec) in specs.enumerated() {
            let out = shapes[i + 1].reduce(1, *)
            switch spec.type {
            case .conv1d: total += out * (spec.kernel ?? 0) * shapes[i][1]
            case .dense: total += out * shapes[i][0]
            default: break
            }
        }
        return total
    }

    /// Returns a smaller network holding the kept units' weights, and the report.
    ///
    /// - Throws: `ModelSpecError` for a target out of range, `ModelError` if the pruned layers do not fit.
    public func prune(_ network: Network) throws -> (network: Network, report: PruningReport) {
        let specs = network.specs
        let state = network.state()
        // Prunable layers and their units' importance.
        var importance = [Int: [Float]]()
        for (i, spec) in specs.enumerated() where spec.type == .conv1d || spec.type == .dense {
            guard Self.isPrunable(specs, i), let w = state["\(i).weight"] else { continue }
            let units = w.shape[0]
            let rowLength = w.count / Swift.max(units, 1)
            var scores = (0..<units).map { o in
                (0..<rowLength).reduce(Float(0)) { $0 + abs(w.scalars[o * rowLength + $1]) }
            }
            if criterion == .batchNormScale, i + 1 < specs.count, specs[i + 1].type == .batchnorm1d,
                let gamma = state["\(i + 1).gamma"]
            {
                scores = gamma.scalars.map(abs)
            }
            importance[i] = scores
        }
        var kept = importance.mapValues { Array(0..<$0.count) }
        func prunedSpecs() -> [LayerSpec] {
            specs.enumerated().map { i, spec in
                var s = spec
                if let k = kept[i] {
                    if spec.type == .conv1d { s.filters = k.count } else { s.units = k.count }
                }
                return s
            }
        }
        let macsBefore = try Self.macs(
            specs, window: network.window, channels: network.channels, classes: network.classes)
        switch target {
        case .sparsity(let fraction):
            guard (0..<1).contains(fraction) else {
                throw ModelSpecError(key: "prune", message: "sparsity must be in [0, 1), got \(fraction)")
            }
            for (i, scores) in importance {
                let remove = Swift.min(Int((Float(scores.count) * fraction).rounded()), scores.count - 1)
                let order = scores.indices.sorted { scores[$0] < scores[$1] }
                kept[i] = Array(order[remove...]).sorted()
            }
        case .macBudget(let budget):
            guard budget > 0 else {
                throw ModelSpecError(key: "prune", message: "MAC budget must be positive, got \(budget)")
            }
            // Importance relative to the layer's mean, so layers of different scale compete fairly.
            var normalized = [Int: [Float]]()
            for (i, scores) in importance {
                let mean = scores.reduce(0, +) / Float(Swift.max(scores.count, 1))
                normalized[i] = scores.map { mean > 0 ? $0 / mean : 0 }
            }
            while try Self.macs(
                prunedSpecs(), window: network.window, channels: network.channels, classes: network.classes) > budget
            {
                var weakest: (layer: Int, unit: Int, score: Float)?
                for (i, units) in kept where units.count > 1 {
                    for u in units where weakest == nil || normalized[i]![u] < weakest!.score {
                        weakest = (i, u, normalized[i]![u])
                    }
                }
                guard let weakest else { break }
                kept[weakest.layer]!.removeAll { $0 == weakest.unit }
            }
        }
        let newSpecs = prunedSpecs()
        let pruned = try Network(
            layers: newSpecs, window: network.window, channels: network.channels, classes: network.classes, seed: 0)
        // Slice every tensor to the kept units (rows) and the kept units of the layer feeding it (input channels).
        var newState = [String: Tensor]()
        var incoming: [Int]?
        for (i, spec) in specs.enumerated() {
            switch spec.type {
            case .conv1d, .dense:
                guard let w = state["\(i).weight"] else { continue }
                let rows = kept[i] ?? Array(0..<w.shape[0])
                let inputs = incoming ?? Array(0..<w.shape.last!)
                let taps = spec.type == .conv1d ? w.shape[1] : 1
                let width = w.shape.last!
                var values = [Float]()
                values.reserveCapacity(rows.count * taps * inputs.count)
                for r in rows {
                    for k in 0..<taps {
                        for c in inputs { values.append(w.scalars[(r * taps + k) * width + c]) }
                    }
                }
                newState["\(i).weight"] = Tensor(
                    shape: spec.type == .conv1d ? [rows.count, taps, inputs.count] : [rows.count, inputs.count],
                    scalars: values)
                if let b = state["\(i).bias"] {
                    newState["\(i).bias"] = Tensor(shape: [rows.count], scalars: rows.map { b.scalars[$0] })
                }
                incoming = kept[i]
            case .batchnorm1d:
                for name in ["gamma", "beta", "mean", "variance"] {
                    guard let t = state["\(i).\(name)"] else { continue }
                    let keep = incoming ?? Array(0..<t.count)
                    newState["\(i).\(name)"] = Tensor(shape: [keep.count], scalars: keep.map { t.scalars[$0] })
                }
            default:
                break
            }
        }
        pruned.restore(newState)
        let report = PruningReport(
            parametersBefore: network.parameterCount, parametersAfter: pruned.parameterCount, macsBefore: macsBefore,
            macsAfter: try Self.macs(
                newSpecs, window: network.window, channels: network.channels, classes: network.classes),
            units: Dictionary(
                uniqueKeysWithValues: kept.map { ("\($0.key)", [importance[$0.key]?.count ?? 0, $0.value.count]) }))
        return (pruned, report)
    }

    /// Whether layer `i`'s units can be removed: it is not the classifier and its output reaches the next
    /// conv/dense layer only through channel-wise layers (batch norm, ReLU, dropout, pooling, global pooling).
    static func isPrunable(_ specs: [LayerSpec], _ i: Int) -> Bool {
        var j = i + 1
        while j < specs.count {
            switch specs[j].type {
            case .conv1d, .dense: return true
            case .flatten: return false
            default: j += 1
            }
        }
        return false
    }
}
