import CInt8Kernels
import Testing

@testable import TandemCore

/// One layer through the C kernels, packed and run on fresh buffers (allocates; for tests).
enum KernelRun {
    static func rows(
        _ instructionSet: Int8InstructionSet, weights: [Int8], units: Int, rowLength: Int, bias: [Int32],
        multipliers: [Int32], shifts: [Int32], input: [UInt8], stride: Int, rows: Int, zeroPoint: Int32, lower: Int32
    ) -> (accumulators: [Int32], requantized: [UInt8]) {
        let isa = instructionSet.cValue
        let depth = Int8Kernels.depth(forRowLength: rowLength)
        let size = tandem_int8_packed_size(isa, units, depth)
        let packed = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 64)
        let kept = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 64)
        let scratchBytes = tandem_int8_scratch_size(isa, depth) + 1
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: scratchBytes, alignment: 64)
        defer {
            packed.deallocate()
            kept.deallocate()
            scratch.deallocate()
        }
        tandem_int8_pack(isa, weights, units, rowLength, depth, bias, multipliers, shifts, packed)
        tandem_int8_pack(isa, weights, units, rowLength, depth, bias, nil, nil, kept)
        // One guard element past the end shows a kernel that writes too far.
        var requantized = [UInt8](repeating: 0xA5, count: rows * units + 1)
        var accumulators = [Int32](repeating: 0x5A5A, count: rows * units + 1)
        input.withUnsafeBufferPointer { x in
            tandem_int8_requantized_rows(
                isa, packed, units, depth, x.baseAddress, stride, rows, zeroPoint + 128, lower + 128, &requantized,
                scratch)
            tandem_int8_accumulator_rows(isa, kept, units, depth, x.baseAddress, stride, rows, &accumulators, scratch)
        }
        guard requantized.removeLast() == 0xA5, accumulators.removeLast() == 0x5A5A else { return ([], []) }
        return (accumulators, requantized)
    }
}

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

    @Test(
        "each kernel version's accumulators and requantized rows equal a widened reference, extremes included",
        arguments: Int8InstructionSet.supported)
    func kernelRows(_ instructionSet: Int8InstructionSet) {
        var g = SeededGenerator(seed: 3)
        for trial in 0..<300 {
            var units = 1 + Int(g.next() % 70), rowLength = 1 + Int(g.next() % 300), rows = 1 + Int(g.next() % 20)
            var x = (0..<(rows * (rowLength + 8))).map { _ in UInt8(truncatingIfNeeded: g.next()) }
            var w = (0..<(units * rowLength)).map { _ in Int8(Int(g.next() % 255) - 127) }
            var bias = (0..<units).map { _ in Int32(Int(g.next() % 2_000_001) - 1_000_000) }
            switch trial {
            case 0, 1:
                // Largest products of both signs.
                x = x.map { _ in 255 }
                w = w.map { _ in trial == 0 ? 127 : -127 }
            case 2:
                // The longest row a model may have, all at the largest magnitude: the unsigned sums leave
                // int32 and wrap, and the folded bias (−128 · Σ w) brings them back to the exact result.
                (units, rowLength, rows) = (17, QuantizedModel.maximumRowLength, 2)
                x = [UInt8](repeating: 255, count: rows * (rowLength + 8))
                w = [Int8](repeating: 127, count: units * rowLength)
                bias = [Int32](repeating: -128 * 127 * Int32(rowLength), count: units)
            case _ where trial % 4 == 3:
                // Activations near the biased zero (128) and biases that cancel 128 · Σ w: small accumulators of
                // both signs, so ties land inside the int8 range instead of saturating.
                rowLength = 1 + Int(g.next() % 40)
                x = (0..<(rows * (rowLength + 8))).map { _ in UInt8(127 + g.next() % 3) }
                w = (0..<(units * rowLength)).map { _ in Int8(Int(g.next() % 255) - 127) }
                bias = (0..<units).map { o in
                    let sum = w[(o * rowLength)..<((o + 1) * rowLength)].reduce(Int32(0)) { $0 + Int32($1) }
                    return -128 * sum + Int32(Int(g.next() % 401) - 200)
                }
            default: break
            }
            let depth = Int8Kernels.depth(forRowLength: rowLength)
            let stride = trial % 3 == 0 ? 1 + Int(g.next() % 8) : depth + Int(g.next() % 9)
            x += [UInt8](repeating: 0, count: Swift.max(0, (rows - 1) * stride + depth - x.count))
            // A third of the units get multipliers of exactly 2^-(1 + j), which meet ties (rounded away from zero)
            // on every other accumulator or more often; a few get the zero multiplier.
            var multipliers = [Int32](), shifts = [Int32]()
            for _ in 0..<units {
                switch g.next() % 6 {
                case 0, 1:
                    multipliers.append(1 << 30)
                    shifts.append(Int32(31 + g.next() % 4))
                case 2:
                    multipliers.append(0)
                    shifts.append(Int32(1 + g.next() % 62))
                default:
                    multipliers.append(Int32((1 << 30) + Int(g.next() % (1 << 30))))
                    shifts.append(Int32(1 + g.next() % 62))
                }
            }
            let zeroPoint = Int32(Int(g.next() % 256) - 128)
            let lower = g.next() % 2 == 0 ? Int32(-128) : zeroPoint

            var expectedAccumulators = [Int32](), expectedRows = [UInt8]()
            for r in 0..<rows {
                for o in 0..<units {
                    var acc = Int64(bias[o])
                    for k in 0..<rowLength { acc += Int64(x[r * stride + k]) * Int64(w[o * rowLength + k]) }
                    let acc32 = Int32(truncatingIfNeeded: acc)
                    expectedAccumulators.append(acc32)
                    let q = referenceRequantize(
                        acc32, multiplier: multipliers[o], shift: shifts[o], zeroPoint: zeroPoint, lower: lower)
                    expectedRows.append(Int8Kernels.biased(q))
                }
            }
            let (accumulators, requantized) = KernelRun.rows(
                instructionSet, weights: w, units: units, rowLength: rowLength, bias: bias, multipliers: multipliers,
                shifts: shifts, input: x, stride: stride, rows: rows, zeroPoint: zeroPoint, lower: lower)
            #expect(accumulators == expectedAccumulators, "trial \(trial)")
            #expect(requantized == expectedRows, "trial \(trial)")
            if trial == 2 { #expect(accumulators.allSatisfy { $0 == 127 * 127 * Int32(rowLength) }) }
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
