import Testing

@testable import TandemCore

/// The widened reference: exact magnitude arithmetic, then explicit comparisons instead of `Int8(clamping:)`.
func referenceRequantize(_ acc: Int32, multiplier: Int32, shift: Int32, zeroPoint: Int32, lower: Int32) -> Int8 {
    let product = Int64(acc) * Int64(multiplier)
    let magnitude = product.magnitude
    let divisor = UInt64(1) << UInt64(shift)
    var quotient = magnitude / divisor
    let remainder = magnitude % divisor
    if remainder * 2 >= divisor { quotient += 1 }  // ties away from zero
    let rounded = product < 0 ? -Int64(quotient) : Int64(quotient)
    var value = rounded + Int64(zeroPoint)
    if value < Int64(lower) { value = Int64(lower) }
    if value < -128 { value = -128 }
    if value > 127 { value = 127 }
    return Int8(value)
}

struct Int8RequantizationTests {
    @Test("requantization equals the widened reference over edge cases and a million random values")
    func requantizeMatchesReference() {
        var g = SeededGenerator(seed: 1)
        let edgeAccumulators: [Int32] = [
            0, 1, -1, 2, -2, 3, -3, Int32.max, Int32.min, Int32.max - 1, Int32.min + 1, 1 << 30, -(1 << 30), 12_345,
            -12_345,
        ]
        let edgeMultipliers: [Int32] = [0, 1 << 30, (1 << 30) + 1, Int32.max, Int32.max - 1, 1_518_500_250]
        let edgeShifts: [Int32] = [1, 2, 30, 31, 32, 61, 62]
        let zeroPoints: [Int32] = [-128, -1, 0, 5, 127]
        var checked = 0
        for acc in edgeAccumulators {
            for m in edgeMultipliers {
                for s in edgeShifts {
                    for zp in zeroPoints {
                        for lower in [Int32(-128), zp] {
                            let f = FixedPointMultiplier(multiplier: m, shift: s)
                            #expect(
                                f.requantize(acc, zeroPoint: zp, lower: lower)
                                    == referenceRequantize(acc, multiplier: m, shift: s, zeroPoint: zp, lower: lower),
                                "acc \(acc) m \(m) shift \(s) zp \(zp) lower \(lower)")
                            checked += 1
                        }
                    }
                }
            }
        }
        var mismatches = 0
        for _ in 0..<1_000_000 {
            let acc = Int32(truncatingIfNeeded: g.next() >> UInt64(g.next() % 33))
            let m = Int32((1 << 30) + Int(g.next() % (1 << 30)))
            let s = Int32(1 + g.next() % 62)
            let zp = Int32(Int(g.next() % 256) - 128)
            let lower = g.next() % 2 == 0 ? Int32(-128) : zp
            let f = FixedPointMultiplier(multiplier: m, shift: s)
            if f.requantize(acc, zeroPoint: zp, lower: lower)
                != referenceRequantize(acc, multiplier: m, shift: s, zeroPoint: zp, lower: lower)
            {
                mismatches += 1
            }
        }
        #expect(mismatches == 0)
        #expect(checked > 1000)
    }

    @Test("ties round away from zero and results saturate at the int8 limits")
    func tiesAndSaturation() throws {
        // multiplier 2^30 with shift 31 is exactly one half.
        let half = FixedPointMultiplier(multiplier: 1 << 30, shift: 31)
        #expect(half.apply(5) == 3)
        #expect(half.apply(-5) == -3)
        #expect(half.apply(3) == 2)
        #expect(half.apply(-3) == -2)
        #expect(half.apply(4) == 2)
        #expect(half.requantize(1000, zeroPoint: 0, lower: -128) == 127)
        #expect(half.requantize(-1000, zeroPoint: 0, lower: -128) == -128)
        #expect(half.requantize(Int32.max, zeroPoint: 127, lower: -128) == 127)
        #expect(half.requantize(Int32.min, zeroPoint: -128, lower: -128) == -128)
        // A fused ReLU clamps at the zero point.
        #expect(half.requantize(-1000, zeroPoint: -20, lower: -20) == -20)
    }

    @Test("fixed-point multipliers represent real multipliers to 31 bits and reject bad ones")
    func multiplierConversion() throws {
        var g = SeededGenerator(seed: 2)
        for _ in 0..<10_000 {
            let real = Double(0.5 + g.nextUnitFloat()) * pow2(Int(g.next() % 39) - 30)
            let f = try FixedPointMultiplier(real: real)
            #expect(f.isValid)
            #expect(abs(f.realValue - real) / real <= 1.0 / Double(1 << 30), "\(real) → \(f)")
        }
        #expect(try FixedPointMultiplier(real: 1e-20) == FixedPointMultiplier(multiplier: 0, shift: 31))
        for bad in [0.0, -1.0, .nan, .infinity, 2e9] {
            #expect(throws: QuantizationError.self) { try FixedPointMultiplier(real: bad) }
        }
    }

    @Test("int8 dot products equal a widened sum, extremes included")
    func dotProducts() {
        var g = SeededGenerator(seed: 3)
        for trial in 0..<400 {
            let n = 16 * (1 + Int(g.next() % 44))
            var a = (0..<n).map { _ in Int8(truncatingIfNeeded: g.next()) }
            var b = (0..<(4 * n)).map { _ in Int8(Int(g.next() % 255) - 127) }
            if trial == 0 {
                a = [Int8](repeating: -128, count: n)
                b = [Int8](repeating: -127, count: 4 * n)
            }
            var reference = [Int64](repeating: 0, count: 4)
            for r in 0..<4 {
                for i in 0..<n { reference[r] += Int64(a[i]) * Int64(b[r * n + i]) }
            }
            let a16 = a.map(Int16.init), b16 = b.map(Int16.init)
            let single = a16.withUnsafeBufferPointer { ap in
                b16.withUnsafeBufferPointer { bp in Int8Kernels.dot(ap.baseAddress!, bp.baseAddress!, count: n) }
            }
            let four = a16.withUnsafeBufferPointer { ap in
                b16.withUnsafeBufferPointer { bp in Int8Kernels.dot4(ap.baseAddress!, bp.baseAddress!, count: n) }
            }
            #expect(Int64(single) == reference[0])
            #expect([four.0, four.1, four.2, four.3].map(Int64.init) == reference)
        }
    }

    @Test("rounded integer division rounds half away from zero")
    func roundedDivision() {
        for n in Int32(-300)...300 {
            for d in Int32(1)...9 {
                let exact = Double(n) / Double(d)
                #expect(Int8Kernels.roundedDivision(n, d) == Int32(exact.rounded()), "\(n)/\(d)")
            }
        }
    }
}

func pow2(_ e: Int) -> Double { Double(sign: .plus, exponent: e, significand: 1) }
