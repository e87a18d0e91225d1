/// Conventions shared by the int8 engine and the C kernels of `CInt8Kernels`.
///
/// The engine stores activations **biased**: the byte `q + 128` for the int8 code `q`, so the kernels'
/// inner products are unsigned × signed bytes, the form AVX-512 VNNI multiplies. Since
/// `Σ (q + 128) · w = Σ q · w + 128 · Σ w`, the engine folds `−(zeroPoint + 128) · Σ w` into each bias
/// once. All of it is int32 arithmetic modulo 2^32, like the sums it replaces, so the result is the same
/// integer whenever the true sum fits (`QuantizedModel.maximumRowLength`).
enum Int8Kernels {
    /// Weight rows are padded with zero weights to a multiple of this: the kernels consume four inputs a step.
    static let depthAlignment = 4

    /// Readable bytes the engine keeps after its buffers: a kernel reads whole rows of `depth` bytes, up to
    /// `depthAlignment − 1` past the end of a patch (those bytes meet zero weights).
    static let slack = 64

    /// A row of `rowLength` weights padded to the kernels' step.
    static func depth(forRowLength rowLength: Int) -> Int {
        (rowLength + depthAlignment - 1) / depthAlignment * depthAlignment
    }

    /// The biased byte of an int8 code.
    @inline(__always)
    static func biased(_ q: Int8) -> UInt8 { UInt8(bitPattern: q) ^ 0x80 }

    /// The int8 code of a biased byte.
    @inline(__always)
    static func unbiased(_ u: UInt8) -> Int8 { Int8(bitPattern: u ^ 0x80) }

    /// `round(numerator / denominator)`, ties away from zero; `denominator > 0`.
    @inline(__always)
    static func roundedDivision(_ numerator: Int32, _ denominator: Int32) -> Int32 {
        let half = denominator / 2
        return numerator >= 0 ? (numerator + half) / denominator : -((-numerator + half) / denominator)
    }
}
