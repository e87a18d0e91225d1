#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// Float32 kernels shared by inference and training.
///
/// Activations are channels-last: a batch is `[batch, length, channels]`, so the values of one
/// time step are contiguous and a convolution becomes one matrix product over an im2col buffer.
/// Every kernel works on caller-owned buffers and allocates nothing.
public enum Kernels {
    /// Whether OpenBLAS, which the float32 kernels run on, is linked or can be loaded.
    public static var isFloatAvailable: Bool { OpenBLAS.sgemm != nil }

    /// Why the float32 kernels are unavailable (the loader's messages), or empty.
    public static var floatUnavailableReason: String { OpenBLAS.failure }

    /// The OpenBLAS the float32 kernels run on and how its core type was chosen, or nil when it is missing.
    ///
    /// The first use loads OpenBLAS (see ``OpenBLASSelection``); programs that run float models read this at
    /// start, before they start threads, and log it.
    public static var floatKernels: OpenBLASSelection? { OpenBLAS.selection }

    /// `OpenBLAS 0.3.21, core SkylakeX (chosen; detected Prescott), 2 threads`, or why there is no OpenBLAS;
    /// the text of the `float kernels:` log line.
    public static var floatKernelsDescription: String {
        floatKernels?.description ?? "unavailable (\(floatUnavailableReason))"
    }

    /// Sets how many threads OpenBLAS runs each float32 kernel call on, for the whole process.
    ///
    /// - Important: Call it at start, before any thread runs a float32 kernel: OpenBLAS does not guard a change of
    ///   its thread count against calls under way.
    /// - Returns: false when OpenBLAS is missing or cannot change its thread count.
    @discardableResult
    public static func setFloatThreads(_ count: Int) -> Bool { OpenBLAS.setThreads(count) }

    /// `C = alpha · op(A) · op(B) + beta · C` in row-major order through OpenBLAS.
    ///
    /// - Important: Check ``isFloatAvailable`` first where OpenBLAS may be missing (the edge agent);
    ///   ``FloatModel/init(artifact:)`` does.
    /// - Parameters:
    ///   - transposeA: use Aᵀ; A is stored `[k, m]` then, else `[m, k]`.
    ///   - transposeB: use Bᵀ; B is stored `[n, k]` then, else `[k, n]`.
    @inline(__always)
    public static func gemm(
        transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafePointer<Float>, b: UnsafePointer<Float>, beta: Float, c: UnsafeMutablePointer<Float>
    ) {
        guard let sgemm = OpenBLAS.sgemm else {
            preconditionFailure("float32 kernels need OpenBLAS: \(OpenBLAS.failure)")
        }
        sgemm(
            OpenBLAS.rowMajor, transposeA ? OpenBLAS.transpose : OpenBLAS.noTranspose,
            transposeB ? OpenBLAS.transpose : OpenBLAS.noTranspose,
            Int32(m), Int32(n), Int32(k), alpha, a, Int32(transposeA ? m : k), b, Int32(transposeB ? k : n),
            beta, c, Int32(n)
        )
    }

    /// Unfolds convolution patches: `col[b·outLength + t, k·channels + c] = x[b, t·stride − pad + k·dilation, c]`,
    /// zero where the tap falls in the padding.
    public static func im2col(
        _ x: UnsafePointer<Float>, batch: Int, channels: Int, geometry g: WindowGeometry,
        into col: UnsafeMutablePointer<Float>
    ) {
        let rowWidth = g.kernel * channels
        for b in 0..<batch {
            let source = x + b * g.inputLength * channels
            for t in 0..<g.outputLength {
                let row = col + (b * g.outputLength + t) * rowWidth
                if g.dilation == 1 {
                    // Taps are consecutive time steps: copy the in-range run in one go.
                    let first = g.inputIndex(output: t, tap: 0)
                    let lo = Swift.max(0, -first)
                    let hi = Swift.min(g.kernel, g.inputLength - first)
                    if lo > 0 { row.update(repeating: 0, count: lo * channels) }
                    if hi > lo {
                        (row + lo * channels).update(
                            from: source + (first + lo) * channels, count: (hi - lo) * channels)
                    }
                    if hi < g.kernel {
                        let start = Swift.max(hi, lo)
                        (row + start * channels).update(repeating: 0, count: (g.kernel - start) * channels)
                    }
                } else {
                    for k in 0..<g.kernel {
                        let i = g.inputIndex(output: t, tap: k)
                        if i >= 0 && i < g.inputLength {
                            (row + k * channels).update(from: source + i * channels, count: channels)
                        } else {
                            (row + k * channels).update(repeating: 0, count: channels)
                        }
                    }
                }
            }
        }
    }

    /// Adds `bias[j]` to every row of the `[rows, width]` matrix `y`.
    public static func addBias(_ y: UnsafeMutablePointer<Float>, rows: Int, width: Int, bias: UnsafePointer<Float>) {
        for r in 0..<rows {
            let row = y + r * width
            for j in 0..<width { row[j] += bias[j] }
        }
    }

    /// Replaces negative values by zero, in place.
    public static func relu(_ x: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { x[i] = Swift.max(x[i], 0) }
    }

    /// Convolution forward over a batch: `y[batch·outLength, filters] = im2col(x) · Wᵀ (+ bias)`.
    ///
    /// - Parameters:
    ///   - weight: `[filters, kernel, channels]`.
    ///   - col: scratch of `batch · outLength · kernel · channels` floats; holds the patches afterwards.
    public static func conv1d(
        _ x: UnsafePointer<Float>, batch: Int, channels: Int, geometry g: WindowGeometry,
        weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, filters: Int,
        col: UnsafeMutablePointer<Float>, into y: UnsafeMutablePointer<Float>
    ) {
        let rows = batch * g.outputLength
        let width = g.kernel * channels
        let patches: UnsafePointer<Float>
        if g.kernel == 1 && g.stride == 1 && g.padLeft == 0 {
            patches = x
        } else {
            im2col(x, batch: batch, channels: channels, geometry: g, into: col)
            patches = UnsafePointer(col)
        }
        gemm(transposeA: false, transposeB: true, m: rows, n: filters, k: width, a: patches, b: weight, beta: 0, c: y)
        if let bias { addBias(y, rows: rows, width: filters, bias: bias) }
    }

    /// Dense forward: `y[batch, units] = x[batch, inputs] · Wᵀ (+ bias)` with `W` as `[units, inputs]`.
    public static func dense(
        _ x: UnsafePointer<Float>, batch: Int, inputs: Int, weight: UnsafePointer<Float>,
        bias: UnsafePointer<Float>?, units: Int, into y: UnsafeMutablePointer<Float>
    ) {
        gemm(transposeA: false, transposeB: true, m: batch, n: units, k: inputs, a: x, b: weight, beta: 0, c: y)
        if let bias { addBias(y, rows: batch, width: units, bias: bias) }
    }

    /// Max or average pooling over time, per channel. Average pooling counts only in-range taps.
    ///
    /// - Parameter argmax: when given, receives the input time index each maximum came from (max pooling only).
    public static func pool1d(
        _ x: UnsafePointer<Float>, batch: Int, channels: Int, geometry g: WindowGeometry, max: Bool,
        into y: UnsafeMutablePointer<Float>, argmax: UnsafeMutablePointer<Int32>? = nil
    ) {
        for b in 0..<batch {
            let source = x + b * g.inputLength * channels
            for t in 0..<g.outputLength {
                let out = y + (b * g.outputLength + t) * channels
                if max {
                    let arg = argmax.map { $0 + (b * g.outputLength + t) * channels }
                    for c in 0..<channels {
                        out[c] = -.infinity
                        arg?[c] = 0
                    }
                    var i = g.inputIndex(output: t, tap: 0)
                    for _ in 0..<g.kernel {
                        if i >= 0 && i < g.inputLength {
                            let row = source + i * channels
                            for c in 0..<channels where row[c] > out[c] {
                                out[c] = row[c]
                                arg?[c] = Int32(i)
                            }
                        }
                        i += g.dilation
                    }
                } else {
                    out.update(repeating: 0, count: channels)
                    var taps = 0
                    var i = g.inputIndex(output: t, tap: 0)
                    for _ in 0..<g.kernel {
                        if i >= 0 && i < g.inputLength {
                            let row = source + i * channels
                            for c in 0..<channels { out[c] += row[c] }
                            taps += 1
                        }
                        i += g.dilation
                    }
                    let scale = 1 / Float(Swift.max(taps, 1))
                    for c in 0..<channels { out[c] *= scale }
                }
            }
        }
    }

    /// Mean over time: `y[b, c] = mean_t x[b, t, c]`.
    public static func globalAveragePool(
        _ x: UnsafePointer<Float>, batch: Int, length: Int, channels: Int, into y: UnsafeMutablePointer<Float>
    ) {
        let scale = 1 / Float(length)
        for b in 0..<batch {
            let out = y + b * channels
            out.update(repeating: 0, count: channels)
            for t in 0..<length {
                let row = x + (b * length + t) * channels
                for c in 0..<channels { out[c] += row[c] }
            }
            for c in 0..<channels { out[c] *= scale }
        }
    }

    /// Row-wise softmax of a `[rows, width]` matrix, numerically stable, in place.
    public static func softmax(_ x: UnsafeMutablePointer<Float>, rows: Int, width: Int) {
        for r in 0..<rows {
            let row = x + r * width
            var top = -Float.infinity
            for j in 0..<width { top = Swift.max(top, row[j]) }
            var sum: Float = 0
            for j in 0..<width {
                row[j] = (row[j] - top).exponential
                sum += row[j]
            }
            let scale = 1 / sum
            for j in 0..<width { row[j] *= scale }
        }
    }
}

extension Float {
    /// `e` raised to this value.
    @inlinable var exponential: Float { expf(self) }
}
