/// What one ONNX dimension of an activation holds, as the importer follows it through the graph.
enum Axis: Equatable, Sendable {
    /// The batch: always ONNX dimension 0.
    case batch
    /// Time steps of a sequence.
    case time
    /// Channels of a sequence.
    case channel
    /// Features of a flat activation (after global pooling, Flatten, Gemm or MatMul).
    case feature
    /// A dimension of size 1 that only reshapes the tensor (Unsqueeze, keepdims, a 2-D convolution's unit height).
    case unit
}

/// An activation of the ONNX graph and where its values sit in Tandem's buffer.
///
/// Tandem keeps a sequence channels-last, `[length, channels]`, and a flat activation as `[features]`. An
/// ONNX value may hold the same numbers with its axes in another order (PyTorch's `[N, C, L]`, a Keras
/// exporter's `[N, L, C]` between Transposes, unit axes from Unsqueeze): `axes` records which ONNX dimension
/// is which, so Transpose, Squeeze, Unsqueeze and axis-only Reshapes become bookkeeping and no Tandem layer.
struct Activation: Sendable {
    enum Form: Equatable, Sendable {
        /// `[length, channels]` in Tandem's buffer.
        case sequence(length: Int, channels: Int)
        /// `[features]` in Tandem's buffer; `order[i]` is the Tandem index of ONNX feature `i` (nil: the same).
        case flat(features: Int, order: [Int]?)
    }

    /// ONNX dimensions, outermost first.
    var axes: [Axis]
    /// The values' shape in Tandem's buffer.
    var form: Form
    /// The number of Tandem layers before this value: an operator may only consume the newest activation.
    var position: Int

    /// The size of a dimension (nil for the batch).
    func size(_ axis: Axis) -> Int? {
        switch (axis, form) {
        case (.batch, _): nil
        case (.unit, _): 1
        case (.time, .sequence(let length, _)): length
        case (.channel, .sequence(_, let channels)): channels
        case (.feature, .flat(let features, _)): features
        default: 1
        }
    }

    /// The ONNX shape, with -1 for the batch.
    var dims: [Int] { axes.map { size($0) ?? -1 } }

    /// Values per window.
    var valuesPerWindow: Int {
        switch form {
        case .sequence(let length, let channels): length * channels
        case .flat(let features, _): features
        }
    }

    /// `[N, 8, 128]`-style text for messages.
    var shapeText: String { "[" + dims.map { $0 < 0 ? "N" : String($0) }.joined(separator: ", ") + "]" }

    /// The index of the sequence's time axis among the spatial dimensions of an `[N, C, spatial…]` layout, and the
    /// number of spatial dimensions, when this is a sequence laid out as a convolution or pooling input: batch,
    /// then channels (a unit axis stands in for a single channel), then time and at most one unit axis.
    func convolutionLayout() -> (time: Int, spatial: Int)? {
        guard case .sequence(_, let channels) = form, axes.count == 3 || axes.count == 4, axes[0] == .batch else {
            return nil
        }
        let channelFirst = axes[1] == .channel || (channels == 1 && axes[1] == .unit && !axes.contains(.channel))
        guard channelFirst else { return nil }
        let spatial = Array(axes[2...])
        guard spatial.filter({ $0 == .time }).count == 1, spatial.allSatisfy({ $0 == .time || $0 == .unit }) else {
            return nil
        }
        return (spatial.firstIndex(of: .time)!, spatial.count)
    }
}
