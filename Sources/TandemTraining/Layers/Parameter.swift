import TandemCore

/// A trainable tensor with its gradient, shared by reference between a layer and its optimizer.
///
/// - Important: not thread-safe; a network is trained on one task at a time (OpenBLAS parallelizes
///   within each matrix product).
public final class Parameter: @unchecked Sendable {
    /// The name the tensor gets in an exported model (`"<layer>.<suffix>"`).
    public let name: String
    /// Current value.
    public var value: Tensor
    /// Gradient of the loss with respect to `value`, accumulated by `backward` and zeroed by the optimizer.
    public var gradient: Tensor
    /// Whether weight decay applies (weights yes; biases and batch-norm parameters no).
    public let decays: Bool

    /// Creates a parameter with a zero gradient.
    public init(name: String, value: Tensor, decays: Bool) {
        self.name = name
        self.value = value
        self.gradient = Tensor(shape: value.shape)
        self.decays = decays
    }
}

/// A layer that can run forward in training or inference mode and propagate gradients backward.
///
/// Activations are channels-last: `[batch, length, channels]` for sequences, `[batch, features]` when flat.
public protocol TrainableLayer: AnyObject {
    /// The spec this layer was built from.
    var spec: LayerSpec { get }
    /// Trainable parameters (empty for parameter-free layers).
    var parameters: [Parameter] { get }
    /// Non-trainable state exported with the model (batch-norm running statistics).
    var buffers: [String: Tensor] { get }
    /// Computes the output and keeps what `backward` needs.
    func forward(_ x: Tensor, training: Bool) -> Tensor
    /// Accumulates parameter gradients and returns the gradient with respect to the last forward's input.
    ///
    /// - Parameter needsInputGradient: false for the first layer, whose input gradient nobody uses.
    func backward(_ dy: Tensor, needsInputGradient: Bool) -> Tensor
}

extension TrainableLayer {
    public var parameters: [Parameter] { [] }
    public var buffers: [String: Tensor] { [:] }
}
