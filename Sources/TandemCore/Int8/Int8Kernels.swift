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

    /// Sixteen products of `x` and `w` at `i`, two summed per 16-bit lane, viewed as four 32-bit lanes
    /// with the even (low) half biased by 2^15.
    ///
    /// Each 16-bit lane holds `x[j]·w[j] + x[j+8]·w[j+8]`, exact since |x · w| ≤ 128 · 127 and the
    /// sum of two is at most 32,512. Viewed as Int32, lane k is `odd · 2^16 + even mod 2^16`; flipping
    /// bit 15 makes the low half `even + 2^15`, in `[0, 2^16)`, so the 32-bit view equals
    /// `odd · 2^16 + even + 2^15` exactly — which lets the caller accumulate both halves in 32 bits
    /// with one add and one shift per vector instead of unpacking them (see `Accumulator`).
    @inline(__always)
    static func biasedPairs(_ x0: SIMD8<Int16>, _ x1: SIMD8<Int16>, _ w: UnsafePointer<Int16>, _ i: Int) -> SIMD4<Int32>
    {
        unsafeBitCast(x0 &* load(w + i) &+ x1 &* load(w + i + 8), to: SIMD4<Int32>.self) ^ SIMD4(repeating: 0x8000)
    }

    /// Sums of `biasedPairs` vectors: the raw 32-bit views and their high halves (arithmetic shift).
    ///
    /// At the end, Σ odd = Σ high halves and Σ even = Σ raw − 2^16 · Σ odd − 2^15 · 4 · steps, all in
    /// wrapping 32-bit arithmetic; the true dot product fits in Int32 (see `QuantizedModel.maximumRowLength`),
    /// so the wrapped result is exact.
    struct Accumulator {
        var raw = SIMD4<Int32>()
        var high = SIMD4<Int32>()

        @inline(__always)
        mutating func add(_ biased: SIMD4<Int32>) {
            raw &+= biased
            high &+= biased &>> 16
        }

        @inline(__always)
        func total(steps: Int32) -> Int32 {
            let odd = high.wrappedSum()
            return odd &+ (raw.wrappedSum() &- (odd &<< 16) &- 0x8000 &* 4 &* steps)
        }
    }

    /// `(Σ a, Σ b, Σ c, Σ d)` in one vector, wrapping.
    @inline(__always)
    static func horizontalSums(
        _ a: SIMD4<Int32>, _ b: SIMD4<Int32>, _ c: SIMD4<Int32>, _ d: SIMD4<Int32>
    ) -> SIMD4<Int32> {
        let ab = SIMD8(lowHalf: a, highHalf: b), cd = SIMD8(lowHalf: c, highHalf: d)
        let pairs = SIMD8(lowHalf: ab.evenHalf &+ ab.oddHalf, highHalf: cd.evenHalf &+ cd.oddHalf)
        return pairs.evenHalf &+ pairs.oddHalf
    }

    /// `Σ a[i] · b[i]` over `count` elements, `count` a multiple of `lanes`.
    @inline(__always)
    static func dot(_ a: UnsafePointer<Int16>, _ b: UnsafePointer<Int16>, count: Int) -> Int32 {
        var acc = Accumulator()
        var i = 0
        while i < count {
            acc.add(biasedPairs(load(a + i), load(a + i + 8), b, i))
            i &+= lanes
        }
        return acc.total(steps: Int32(truncatingIfNeeded: count / lanes))
    }

    /// Four dot products of one input row `x` with four consecutive weight rows `w`, `w + count`, …;
    /// `count` a multiple of `lanes`.
    ///
    /// Sharing the loads of `x` across four filters cuts the memory traffic of the single dot.
    @inline(__always)
    static func dot4(
        _ x: UnsafePointer<Int16>, _ w: UnsafePointer<Int16>, count: Int
    ) -> (Int32, Int32, Int32, Int32) {
        var a0 = Accumulator(), a1 = Accumulator(), a2 = Accumulator(), a3 = Accumulator()
        let w1 = w + count, w2 = w + 2 * count, w3 = w + 3 * count
        var i = 0
        while i < count {
            let x0 = load(x + i), x1 = load(x + i + 8)
            a0.add(biasedPairs(x0, x1, w, i))
            a1.add(biasedPairs(x0, x1, w1, i))
            a2.add(biasedPairs(x0, x1, w2, i))
            a3.add(biasedPairs(x0, x1, w3, i))
            i &+= lanes
        }
        // Reduce the four accumulators together: two rounds of pairwise adds give all four sums in one vector.
        let raw = horizontalSums(a0.raw, a1.raw, a2.raw, a3.raw)
        let odd = horizontalSums(a0.high, a1.high, a2.high, a3.high)
        let bias = SIMD4<Int32>(repeating: 0x8000 &* 4 &* Int32(truncatingIfNeeded: count / lanes))
        let even = raw &- (odd &<< 16) &- bias
        let total = odd &+ even
        return (total[0], total[1], total[2], total[3])
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
