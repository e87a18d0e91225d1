extension OpenBLAS {
    /// One product of the self-check: `C = A·B` (or with a transposed operand) plus `beta·C`.
    struct CheckCase: Sendable {
        var m: Int, n: Int, k: Int
        var transposeA: Bool, transposeB: Bool
        var beta: Float
    }

    /// The products the self-check runs: odd sizes reach the kernels' edge paths; the largest is past
    /// OpenBLAS's threading threshold; every transpose the float layers use; one accumulates into C.
    static let checkCases = [
        CheckCase(m: 67, n: 45, k: 93, transposeA: false, transposeB: false, beta: 0),
        CheckCase(m: 64, n: 96, k: 72, transposeA: false, transposeB: true, beta: 0.5),
        CheckCase(m: 33, n: 70, k: 129, transposeA: true, transposeB: false, beta: 0),
        CheckCase(m: 1, n: 130, k: 40, transposeA: false, transposeB: true, beta: 0),
        CheckCase(m: 160, n: 144, k: 136, transposeA: false, transposeB: false, beta: 0),
    ]

    /// Runs ``checkCases`` through `sgemm` and compares every entry with a double-precision reference.
    ///
    /// An entry passes within `1e-4 · Σ|a·b| + 1e-6` of the reference: float32 rounding over k ≤ 136 terms
    /// stays two orders of magnitude below that, while a wrong kernel is off by the size of the entries.
    ///
    /// - Returns: nil when every entry passes, else the first that did not.
    static func selfCheck(_ sgemm: SGEMM) -> String? {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> Float {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Float(Int64(bitPattern: state >> 11) % 2001 - 1000) / 1000
        }
        for check in checkCases {
            let (m, n, k) = (check.m, check.n, check.k)
            let a = (0..<(m * k)).map { _ in next() }
            let b = (0..<(k * n)).map { _ in next() }
            let initial = (0..<(m * n)).map { _ in next() }
            var c = initial
            a.withUnsafeBufferPointer { a in
                b.withUnsafeBufferPointer { b in
                    c.withUnsafeMutableBufferPointer { c in
                        sgemm(
                            rowMajor, check.transposeA ? transpose : noTranspose,
                            check.transposeB ? transpose : noTranspose, Int32(m), Int32(n), Int32(k), 1,
                            a.baseAddress, Int32(check.transposeA ? m : k), b.baseAddress,
                            Int32(check.transposeB ? k : n), check.beta, c.baseAddress, Int32(n))
                    }
                }
            }
            for i in 0..<m {
                for j in 0..<n {
                    var sum = 0.0
                    var magnitude = 0.0
                    for p in 0..<k {
                        let x = Double(check.transposeA ? a[p * m + i] : a[i * k + p])
                        let y = Double(check.transposeB ? b[j * k + p] : b[p * n + j])
                        sum += x * y
                        magnitude += abs(x * y)
                    }
                    let accumulated = Double(check.beta) * Double(initial[i * n + j])
                    let expected = sum + accumulated
                    magnitude += abs(accumulated)
                    let got = Double(c[i * n + j])
                    guard abs(got - expected) <= 1e-4 * magnitude + 1e-6 else {
                        return
                            "\(m)×\(n)×\(k)\(check.transposeA ? " Aᵀ" : "")\(check.transposeB ? " Bᵀ" : ""): C[\(i), \(j)] = \(got), expected \(expected)"
                    }
                }
            }
        }
        return nil
    }
}
