/// A positive real multiplier held as a 31-bit integer mantissa and a right shift, for requantization.
///
/// The real value is `multiplier · 2^−shift`. Applying it to an int32 accumulator computes
/// `acc · multiplier` exactly in 64 bits and divides by `2^shift` rounding to nearest, **ties away
/// from zero** (−2.5 → −3, 2.5 → 3), the same rule Swift's `rounded()` and the input quantizer use.
/// Because the product is exact and `|acc · multiplier| < 2^62`, nothing can overflow before the
/// final clamp to int8, which saturates (`Int8(clamping:)`).
///
/// Normalized multipliers lie in `[2^30, 2^31)`; `multiplier == 0` (with any valid shift) encodes a
/// real multiplier too small to matter, which maps every accumulator to 0. Multipliers above 1 are
/// allowed (shift below 31): the float model may legitimately grow a tensor's range.
public struct FixedPointMultiplier: Sendable, Equatable, Codable {
    /// The mantissa, in `[2^30, 2^31)`, or 0.
    public var multiplier: Int32
    /// The right shift, in `FixedPointMultiplier.shiftRange`.
    public var shift: Int32

    /// Shifts the engine accepts; with a normalized mantissa this covers multipliers from about 2^−32 to 2^30.
    public static let shiftRange: ClosedRange<Int32> = 1...62

    /// Creates a multiplier from its stored parts without checking them (see `validate()`).
    public init(multiplier: Int32, shift: Int32) {
        self.multiplier = multiplier
        self.shift = shift
    }

    /// The fixed-point form of a real multiplier.
    ///
    /// - Parameter real: the multiplier, finite and positive, below 2^30; values below 2^−32 become the
    ///   zero multiplier (they scale any int32 accumulator to less than half a step).
    /// - Throws: `QuantizationError.invalidParameters` for a non-finite, non-positive or too-large value.
    public init(real: Double) throws {
        guard real.isFinite, real > 0 else {
            throw QuantizationError(.invalidParameters, "requantization multiplier \(real) must be finite and positive")
        }
        // real = fraction · 2^exponent with fraction in [0.5, 1).
        var exponent = real.exponent + 1
        var mantissa = (real.significand / 2 * 2_147_483_648.0).rounded()
        if mantissa == 2_147_483_648.0 {
            mantissa /= 2
            exponent += 1
        }
        let shift = 31 - exponent
        guard shift >= 1 else {
            throw QuantizationError(
                .invalidParameters,
                "requantization multiplier \(real) is 2^30 or more; output scale is too small for its input")
        }
        if shift > 62 {
            self.init(multiplier: 0, shift: 31)
        } else {
            self.init(multiplier: Int32(mantissa), shift: Int32(shift))
        }
    }

    /// The real value this multiplier stands for.
    public var realValue: Double { Double(multiplier) * Double(sign: .plus, exponent: -Int(shift), significand: 1) }

    /// Whether the mantissa and shift are in range.
    public var isValid: Bool {
        (multiplier == 0 || (multiplier >= 1 << 30)) && Self.shiftRange.contains(shift)
    }

    /// `round(acc · multiplier / 2^shift)`, ties away from zero, as an unclamped Int64.
    ///
    /// - Precondition: `isValid` (checked when a model is built, not here).
    @inlinable @inline(__always)
    public func apply(_ accumulator: Int32) -> Int64 {
        let product = Int64(accumulator) &* Int64(multiplier)
        let half = Int64(1) &<< Int64(shift &- 1)
        // An arithmetic shift floors; nudging negative products down by one turns floor(x + ½) into
        // rounding half away from zero for them.
        let nudge = product < 0 ? half &- 1 : half
        return (product &+ nudge) &>> Int64(shift)
    }

    /// Requantizes an accumulator: `apply`, add the zero point, clamp to `[lower, 127]` (saturating).
    ///
    /// `lower` is −128, or the zero point when a ReLU is fused into the clamp.
    @inlinable @inline(__always)
    public func requantize(_ accumulator: Int32, zeroPoint: Int32, lower: Int32) -> Int8 {
        let value = apply(accumulator) &+ Int64(zeroPoint)
        return Int8(clamping: Swift.max(Int64(lower), value))
    }
}
