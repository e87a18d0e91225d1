import CInt8Kernels

/// The instruction sets the int8 engine's kernels are written for (C target `CInt8Kernels`).
///
/// Every version computes the same integers, so an engine gives bit-identical results whichever one it
/// runs; they differ only in speed. `Int8Engine` uses `best` unless told otherwise.
public enum Int8InstructionSet: String, CaseIterable, Sendable, CustomStringConvertible {
    /// C for any CPU (16-bit pairwise multiply–adds; SSE2's `pmaddwd` on x86-64).
    case portable
    /// x86-64 AVX2: 16-bit multiply–adds (`vpmaddwd`) on activations widened to 16 bits.
    case avx2
    /// x86-64 AVX-512 with VNNI: `vpdpbusd`, 64 byte products per instruction.
    case avx512VNNI = "avx512-vnni"

    /// Whether this CPU and operating system can run this version.
    public var isSupported: Bool { tandem_int8_supports(cValue) }

    /// The fastest version this machine supports, decided once per process.
    public static let best: Int8InstructionSet = allCases.last { $0.isSupported } ?? .portable

    /// The versions this machine supports, slowest first.
    public static var supported: [Int8InstructionSet] { allCases.filter(\.isSupported) }

    /// The name used on the command line and in benchmark output.
    public var description: String { rawValue }

    var cValue: TandemInt8InstructionSet {
        switch self {
        case .portable: .portable
        case .avx2: .AVX2
        case .avx512VNNI: .AVX512VNNI
        }
    }
}
