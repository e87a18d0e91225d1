/// Integer kernels of the int8 engine: dot products and the per-layer loops, on caller-owned buffers.
///
/// Activations are channels-last int8 values held in Int16 lanes, and weights are widened to Int16 once
/// when the engine is built, so the inner products run on 8-lane 16-bit SIMD without a widening shuffle
/// per element. Values are int8 with weights in `[-127, 127]`: a product fits in 15 bits, the sum of two
/// in 16 bits, and a 32-bit accumulator holds at least 131,000 products. Weight rows are padded with
/// zeros to a multiple of `lanes`; the engine keeps `lanes` elements of slack after its buffers, so a
/// dot product may read past the end of a patch (those values meet zero weights).
enum Int8Kernels {
    /// Lanes per step of the dot products: rows are padded with zero weights to a multiple of this.
    static let lanes = 16

    @inline(__always)
    static func load(_ p: UnsafePointer<Int16>) -> SIMD8<Int16> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Int16>.self)
    }

    /// `Σ a[i] · b[i]` over `count` elements, `count` a multiple of `lanes`.
    ///
    /// Sixteen products per step: two 8-lane 16-bit multiplies (exact, |x · w| ≤ 128 · 127), their sum
    /// still in 16 bits (≤ 32,512), then one widening to 32-bit lanes. This keeps the loop on full-width
    /// `pmullw`/`paddw` (x86) or `mul`/`add` (NEON) instead of widening every product.
    @inline(__always)
    static func dot(_ a: UnsafePointer<Int16>, _ b: UnsafePointer<Int16>, count: Int) -> Int32 {
        var acc = SIMD8<Int32>()
        var i = 0
        while i < count {
            acc &+= SIMD8<Int32>(truncatingIfNeeded: load(a + i) &* load(b + i) &+ load(a + i + 8) &* load(b + i + 8))
            i &+= lanes
        }
        return acc.wrappedSum()
    }

    /// Four dot products of one input row `x` with four consecutive weight rows `w`, `w + count`, …;
    /// `count` a multiple of `lanes`.
    ///
    /// Sharing the loads of `x` across four filters cuts the memory traffic of the single dot.
    @inline(__always)
    static func dot4(
        _ x: UnsafePointer<Int16>, _ w: UnsafePointer<Int16>, count: Int
    ) -> (Int32, Int32, Int32, Int32) {
        var a0 = SIMD8<Int32>(), a1 = SIMD8<Int32>(), a2 = SIMD8<Int32>(), a3 = SIMD8<Int32>()
        let w1 = w + count, w2 = w + 2 * count, w3 = w + 3 * count
        var i = 0
        while i < count {
            let x0 = load(x + i), x1 = load(x + i + 8)
            a0 &+= SIMD8<Int32>(truncatingIfNeeded: x0 &* load(w + i) &+ x1 &* load(w + i + 8))
            a1 &+= SIMD8<Int32>(truncatingIfNeeded: x0 &* load(w1 + i) &+ x1 &* load(w1 + i + 8))
            a2 &+= SIMD8<Int32>(truncatingIfNeeded: x0 &* load(w2 + i) &+ x1 &* load(w2 + i + 8))
            a3 &+= SIMD8<Int32>(truncatingIfNeeded: x0 &* load(w3 + i) &+ x1 &* load(w3 + i + 8))
            i &+= lanes
        }
        return (a0.wrappedSum(), a1.wrappedSum(), a2.wrappedSum(), a3.wrappedSum())
    }

    /// A row of int8 output (in Int16 lanes) from one input row: `out[o] = requantize(dot(x, w[o]) + bias[o])` for every unit.
    ///
    /// - Parameters:
    ///   - x: the input row (a convolution patch or a dense input), `count` values readable.
    ///   - weights: `[units, count]`, `count` a multiple of `lanes`.
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
