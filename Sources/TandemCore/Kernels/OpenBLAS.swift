#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// OpenBLAS's `cblas_sgemm`, found when a float32 model first needs it.
///
/// Programs that train or serve the full model (`tandem`, `tandem-cloud`) link OpenBLAS, and the symbol is
/// already in the process. `tandem-edge` does not link it: an int8 model never needs it, and loading it
/// costs an agent about 2 MiB of resident memory (the library, libgfortran and their relocations). The
/// agent loads `libopenblas.so.0` only when it is given a float32 model.
enum OpenBLAS {
    typealias SGEMM =
        @convention(c) (
            Int32, Int32, Int32, Int32, Int32, Int32, Float, UnsafePointer<Float>?, Int32, UnsafePointer<Float>?,
            Int32, Float, UnsafeMutablePointer<Float>?, Int32
        ) -> Void

    // CBLAS's enumerations (cblas.h): CblasRowMajor, CblasNoTrans, CblasTrans.
    static let rowMajor: Int32 = 101
    static let noTranspose: Int32 = 111
    static let transpose: Int32 = 112

    /// `cblas_sgemm`, or nil when OpenBLAS is neither linked nor installed.
    static var sgemm: SGEMM? { resolved.sgemm }

    /// Why ``sgemm`` is nil (the loader's messages), for the error a float32 model load reports.
    static var failure: String { resolved.failure }

    private static let resolved: (sgemm: SGEMM?, failure: String) = resolve()

    private static func resolve() -> (sgemm: SGEMM?, failure: String) {
        if let symbol = dlsym(nil, "cblas_sgemm") {  // nil: RTLD_DEFAULT, what the process already has
            return (unsafeBitCast(symbol, to: SGEMM.self), "")
        }
        var reasons = [String]()
        for name in ["libopenblas.so.0", "libopenblas.so", "libopenblas.dylib"] {
            guard let library = dlopen(name, RTLD_NOW | RTLD_LOCAL) else {
                reasons.append(dlerror().map { String(cString: $0) } ?? name)
                continue
            }
            if let symbol = dlsym(library, "cblas_sgemm") {
                return (unsafeBitCast(symbol, to: SGEMM.self), "")
            }
            reasons.append("\(name) has no cblas_sgemm")
        }
        return (nil, reasons.joined(separator: "; "))
    }
}
