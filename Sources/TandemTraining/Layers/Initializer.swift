import TandemCore

/// Weight initialization schemes.
enum Initializer {
    /// Uniform in `[-bound, bound]`.
    static func uniform(shape: [Int], bound: Float, generator: inout SeededGenerator) -> Tensor {
        let count = shape.reduce(1, *)
        var values = [Float](repeating: 0, count: count)
        for i in 0..<count { values[i] = (generator.nextUnitFloat() * 2 - 1) * bound }
        return Tensor(shape: shape, scalars: values)
    }

    /// He (Kaiming) uniform for layers followed by ReLU: bound `sqrt(6 / fanIn)`.
    static func heUniform(shape: [Int], fanIn: Int, generator: inout SeededGenerator) -> Tensor {
        uniform(shape: shape, bound: (6 / Float(fanIn)).squareRoot(), generator: &generator)
    }
}
