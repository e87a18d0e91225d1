import TandemCore

/// Backward-pass helpers: the adjoints of the forward kernels in `Kernels`.
enum Reductions {
    /// `out[j] (+)= Σ_r x[r, j]` over a `[rows, width]` matrix.
    static func sumRows(
        _ x: UnsafePointer<Float>, rows: Int, width: Int, into out: UnsafeMutablePointer<Float>, accumulate: Bool
    ) {
        if !accumulate { out.update(repeating: 0, count: width) }
        for r in 0..<rows {
            let row = x + r * width
            for j in 0..<width { out[j] += row[j] }
        }
    }

    /// Scatter-adds patch gradients back onto the input: the adjoint of `Kernels.im2col`. `dx` must start zeroed.
    static func col2im(
        _ dcol: UnsafePointer<Float>, batch: Int, channels: Int, geometry g: WindowGeometry,
        into dx: UnsafeMutablePointer<Float>
    ) {
        let rowWidth = g.kernel * channels
        for b in 0..<batch {
            let target = dx + b * g.inputLength * channels
            for t in 0..<g.outputLength {
                let row = dcol + (b * g.outputLength + t) * rowWidth
                var i = g.inputIndex(output: t, tap: 0)
                for k in 0..<g.kernel {
                    if i >= 0 && i < g.inputLength {
                        let source = row + k * channels
                        let out = target + i * channels
                        for c in 0..<channels { out[c] += source[c] }
                    }
                    i += g.dilation
                }
            }
        }
    }
}
