import TandemCore

extension Network {
    /// A trainable network holding the weights of an exported float model, to fine-tune it.
    ///
    /// The exported form has batch norm folded into the layer before it, so the network has the exported
    /// architecture (conv and dense layers with biases, no batch norm after them) rather than the spec's.
    /// A batch norm that stayed a layer of its own keeps its scale, shift and running statistics.
    ///
    /// - Parameters:
    ///   - model: the float model.
    ///   - seed: seeds dropout; initialization is overwritten by the model's weights.
    /// - Throws: `ModelError(.badWeights)` if a weight is missing or misshapen.
    public convenience init(model: FloatModel, seed: UInt64) throws {
        try self.init(
            layers: model.architecture, window: model.window, channels: model.channels, classes: model.classes,
            seed: seed)
        for p in parameters {
            guard let w = model.weights[p.name], w.shape == p.value.shape else {
                throw ModelError(
                    .badWeights,
                    "\(p.name): the model has \(model.weights[p.name].map { "\($0.shape)" } ?? "no such weight"), the network needs \(p.value.shape)"
                )
            }
        }
        restore(model.weights)
    }
}
