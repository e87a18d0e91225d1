/// Integer kernels of the int8 engine: dot products and the per-layer loops, on caller-owned buffers.
///
/// Activations are channels-last int8 values held in Int16 lanes, and weights are widened to Int16 once
/// when the engine is built: an Int16 × Int16 → Int32 multiply–accumulate in a plain counted loop over
/// unsafe pointers is the form the optimizer turns into packed multiply–add instructions (`pmaddwd` on
/// baseline x86-64, `vpmaddwd` with AVX2, `smlal` on ARM), while int8 loads need a widening shuffle per
/// element first. Keep the loops free of bounds checks and early exits. Values are int8 (weights in
/// `[-127, 127]`), so a product fits in 15 bits and a 32-bit accumulator holds at least 131,000 of them.
enum Int8Kernels {
    /// `Σ a[i] · b[i]` over `count` elements.
    @inline(__always)
    static func dot(_ a: UnsafePointer<Int16>, _ b: UnsafePointer<Int16>, count: Int) -> Int32 {
        var acc: Int32 = 0
        for i in 0..<count { acc &+= Int32(a[i]) &* Int32(b[i]) }
        return acc
    }

    /// Four dot products of one input row `x` with four consecutive weight rows `w`, `w + count`, ….
    ///
    /// Sharing the loads of `x` across four filters halves the memory traffic of the single dot.
    @inline(__always)
    static func dot4(
        _ x: UnsafePointer<Int16>, _ w: UnsafePointer<Int16>, count: Int
    ) -> (Int32, Int32, Int32, Int32) {
        var a0: Int32 = 0, a1: Int32 = 0, a2: Int32 = 0, a3: Int32 = 0
        let w1 = w + count, w2 = w + 2 * count, w3 = w + 3 * count
        for i in 0..<count {
            let v = Int32(x[i])
            a0 &+= v &* Int32(w[i])
            a1 &+= v &* Int32(w1[i])
            a2 &+= v &* Int32(w2[i])
            a3 &+= v &* Int32(w3[i])
        }
        return (a0, a1, a2, a3)
    }

    /// A row of int8 output (in Int16 lanes) from one input row: `out[o] = requantize(dot(x, w[o]) + bias[o])` for every unit.
    ///
    /// - Parameters:
    ///   - x: the input row (a convolution patch or a dense input), `count` values.
    ///   - weights: `[units, count]`.
    ///   - bias: folded biases (`bias − zeroPointIn · Σ w[o]`), `[units]`.
    @inline(__always)
    static func requantizedRow(
        _ x: UnsafePointer<Int16>, weights: UnsafePointer<Int16>, count: Int, units: Int,
        bias: UnsafePointer<Int32>, multipliers: UnsafePointer<FixedPointMultiplier>,
        zeroPoint: Int32, lower: Int32, into out: UnsafeMutablePointer<Int16>
    ) {
        var o = 0
        while o + 4 <= units {
            let (a0, a1, a2, a3) = dot4(x, weights + o * count, count: count)
            out[o] = Int16(multipliers[o].requantize(a0 &+ bias[o], zeroPoint: zeroPoint, lower: lower))
            out[o + 1] = Int16(multipliers[o + 1].requantize(a1 &+ bias[o + 1], zeroPoint: zeroPoint, lower: lower))
            out[o + 2] = Int16(multipliers[o + 2].requantize(a2 &+ bias[o + 2], zeroPoint: zeroPoint, lower: lower))
            out[o + 3] = Int16(multipliers[o + 3].requantize(a3 &+ bias[o + 3], zeroPoint: zeroPoint, lower: lower))
            o += 4
        }
        while o < units {
            let acc = dot(x, weights + o * count, count: count)
            out[o] = Int16(multipliers[o].requantize(acc &+ bias[o], zeroPoint: zeroPoint, lower: lower))
            o += 1
        }
    }

    /// `out[o] = dot(x, w[o]) + bias[o]` as int32 accumulators (the final layer, dequantized by the caller).
    static func accumulatorRow(
        _ x: UnsafePointer<Int16>, weights: UnsafePointer<Int16>, count: Int, units: Int,
        bias: UnsafePointer<Int32>, into out: UnsafeMutablePointer<Int32>
    ) {
        for o in 0..<units { out[o] = dot(x, weights + o * count, count: count) &+ bias[o] }
    }

    /// `round(numerator / denominator)`, ties away from zero; `denominator > 0`.
    @inline(__always)
    static func roundedDivision(_ numerator: Int32, _ denominator: Int32) -> Int32 {
        let half = denominator / 2
        return numerator >= 0 ? (numerator + half) / denominator : -((-numerator + half) / denominator)
    }
}
