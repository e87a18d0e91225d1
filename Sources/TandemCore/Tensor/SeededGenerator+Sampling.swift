#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// Double-precision sampling helpers, written out so a seed gives the same values on every platform and
/// toolchain: the standard library's `random(in:using:)` and `shuffle(using:)` make no promise about how
/// they consume bits.
extension SeededGenerator {
    /// A uniform value in `[0, 1)` with 53 random bits.
    public mutating func unit() -> Double {
        Double(next() >> 11) * 0x1.0p-53
    }

    /// A uniform value in `range`.
    public mutating func uniform(_ range: ClosedRange<Double>) -> Double {
        range.lowerBound + (range.upperBound - range.lowerBound) * unit()
    }

    /// A uniform integer in `0..<upperBound`.
    ///
    /// - Precondition: `upperBound > 0`.
    public mutating func index(below upperBound: Int) -> Int {
        precondition(upperBound > 0, "empty range")
        // Lemire's multiply-shift; the tiny bias for huge bounds does not matter for simulation.
        return Int(UInt64(upperBound).multipliedFullWidth(by: next()).high)
    }

    /// A standard normal value (Box–Muller).
    public mutating func gaussian() -> Double {
        let u1 = 1.0 - unit()  // in (0, 1], so the logarithm is finite
        let u2 = unit()
        return (-2.0 * log(u1)).squareRoot() * cos(2.0 * Double.pi * u2)
    }

    /// Shuffles `array` in place (Fisher–Yates) with this generator's bits.
    public mutating func shuffle<T>(_ array: inout [T]) {
        guard array.count > 1 else { return }
        for i in stride(from: array.count - 1, to: 0, by: -1) {
            array.swapAt(i, index(below: i + 1))
        }
    }

    /// A generator for an independent sub-stream, derived from this one's next output and `salt`.
    public mutating func fork(salt: UInt64 = 0) -> SeededGenerator {
        SeededGenerator(seed: next() ^ (salt &* 0xD1B5_4A32_D192_ED03))
    }
}
