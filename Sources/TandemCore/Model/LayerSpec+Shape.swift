extension LayerSpec {
    /// Kernel, stride, dilation and padding of a conv or pooling layer, with defaults applied.
    public func windowGeometry(inputLength: Int, index: Int) throws -> WindowGeometry {
        let kernel = try require(self.kernel, "kernel", index: index)
        let stride = self.stride ?? (type == .conv1d ? 1 : kernel)
        let dilation = self.dilation ?? 1
        guard kernel > 0, stride > 0, dilation > 0 else {
            throw ModelError(
                .invalidLayer, "layer \(index) (\(type.rawValue)): kernel, stride and dilation must be positive")
        }
        guard
            let g = WindowGeometry(
                inputLength: inputLength, kernel: kernel, stride: stride, dilation: dilation, padding: padding ?? .valid
            )
        else {
            throw ModelError(
                .shapeMismatch,
                "layer \(index) (\(type.rawValue)): kernel \(kernel) with dilation \(dilation) does not fit length \(inputLength)"
            )
        }
        return g
    }

    /// The per-sample output shape of this layer for a per-sample input shape.
    ///
    /// Shapes are `[length, channels]` for sequences and `[features]` after `globalavgpool1d`/`flatten`.
    /// - Parameters:
    ///   - input: the per-sample input shape.
    ///   - index: the layer's position, for error messages.
    ///   - classes: the value of `units: classes`.
    /// - Throws: `ModelError` naming the layer when options are missing or the shapes do not fit.
    public func outputShape(input: [Int], index: Int, classes: Int) throws -> [Int] {
        let name = "layer \(index) (\(type.rawValue))"
        switch type {
        case .conv1d:
            guard input.count == 2 else {
                throw ModelError(.shapeMismatch, "\(name) needs a sequence input, got \(input)")
            }
            let filters = try require(self.filters, "filters", index: index)
            guard filters > 0 else { throw ModelError(.invalidLayer, "\(name): filters must be positive") }
            return [try windowGeometry(inputLength: input[0], index: index).outputLength, filters]
        case .maxpool1d, .avgpool1d:
            guard input.count == 2 else {
                throw ModelError(.shapeMismatch, "\(name) needs a sequence input, got \(input)")
            }
            return [try windowGeometry(inputLength: input[0], index: index).outputLength, input[1]]
        case .globalavgpool1d:
            guard input.count == 2 else {
                throw ModelError(.shapeMismatch, "\(name) needs a sequence input, got \(input)")
            }
            return [input[1]]
        case .flatten:
            return [input.reduce(1, *)]
        case .dense:
            guard input.count == 1 else {
                throw ModelError(
                    .shapeMismatch, "\(name) needs a flat input, got \(input); add globalavgpool1d or flatten")
            }
            let units = self.units ?? classes
            guard units > 0 else { throw ModelError(.invalidLayer, "\(name): units must be positive") }
            return [units]
        case .relu, .batchnorm1d, .dropout:
            if type == .dropout, let rate, !(0..<1).contains(rate) {
                throw ModelError(.invalidLayer, "\(name): rate must be in [0, 1), got \(rate)")
            }
            return input
        }
    }

    private func require(_ value: Int?, _ key: String, index: Int) throws -> Int {
        guard let value else { throw ModelError(.invalidLayer, "layer \(index) (\(type.rawValue)) needs `\(key)`") }
        return value
    }
}

/// Per-sample shapes through a stack of layers.
public enum ModelShapes {
    /// The input and output shape of every layer, `[input] + outputs`.
    ///
    /// - Throws: `ModelError` if any layer does not fit, or the last layer's output is not `[classes]`.
    public static func trace(_ layers: [LayerSpec], window: Int, channels: Int, classes: Int) throws -> [[Int]] {
        var shapes = [[window, channels]]
        for (index, layer) in layers.enumerated() {
            shapes.append(try layer.outputShape(input: shapes[shapes.count - 1], index: index, classes: classes))
        }
        guard shapes.last == [classes] else {
            throw ModelError(
                .shapeMismatch, "the network ends in shape \(shapes.last ?? []) but there are \(classes) classes")
        }
        return shapes
    }
}
