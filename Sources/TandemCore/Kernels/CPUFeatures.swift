import CCPUFeatures

/// What the CPU this process runs on can execute: vendor, family, model and instruction-set extensions.
///
/// Read with CPUID; an extension counts only when the operating system also saves its register state, so
/// the set is what code may actually use. On CPUs that are not x86-64 the set is empty.
public struct CPUFeatures: Sendable, Equatable, CustomStringConvertible {
    /// The vendor named by CPUID leaf 0.
    public enum Vendor: String, Sendable, Equatable {
        case intel, amd, hygon, centaur, zhaoxin, other
    }

    /// An instruction-set extension.
    public enum Extension: String, Sendable, CaseIterable, Comparable {
        case sse3, ssse3, sse41 = "sse4.1", sse42 = "sse4.2", avx, fma, avx2
        case avx512f, avx512dq, avx512cd, avx512bw, avx512vl, avx512vnni = "avx512_vnni"
        case avx512bf16 = "avx512_bf16", amxTile = "amx_tile"

        /// Declaration order, so a set prints from the oldest extension to the newest.
        public static func < (a: Extension, b: Extension) -> Bool {
            allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
        }
    }

    /// The vendor.
    public var vendor: Vendor
    /// Display family (the extended family folded in), e.g. 6 for Intel Core and Xeon, 25 for AMD Zen 3/4.
    public var family: Int
    /// Display model (the extended model folded in), e.g. 207 for a 5th-generation Xeon.
    public var model: Int
    /// Extensions the CPU has and the operating system enabled.
    public var extensions: Set<Extension>

    /// Features given explicitly (tests, and reasoning about other machines).
    public init(vendor: Vendor, family: Int = 0, model: Int = 0, extensions: Set<Extension>) {
        self.vendor = vendor
        self.family = family
        self.model = model
        self.extensions = extensions
    }

    /// The features of the CPU this process runs on, read once.
    public static let current: CPUFeatures = {
        let raw = tandem_cpu_features()
        let vendors: [(TandemCPUVendor, Vendor)] = [
            (TandemCPUVendorIntel, .intel), (TandemCPUVendorAMD, .amd), (TandemCPUVendorHygon, .hygon),
            (TandemCPUVendorCentaur, .centaur), (TandemCPUVendorZhaoxin, .zhaoxin),
        ]
        let bits: [(TandemCPUExtension, Extension)] = [
            (TandemCPUSSE3, .sse3), (TandemCPUSSSE3, .ssse3), (TandemCPUSSE41, .sse41), (TandemCPUSSE42, .sse42),
            (TandemCPUAVX, .avx), (TandemCPUFMA, .fma), (TandemCPUAVX2, .avx2), (TandemCPUAVX512F, .avx512f),
            (TandemCPUAVX512DQ, .avx512dq), (TandemCPUAVX512CD, .avx512cd), (TandemCPUAVX512BW, .avx512bw),
            (TandemCPUAVX512VL, .avx512vl), (TandemCPUAVX512VNNI, .avx512vnni), (TandemCPUAVX512BF16, .avx512bf16),
            (TandemCPUAMXTile, .amxTile),
        ]
        return CPUFeatures(
            vendor: vendors.first { $0.0 == raw.vendor }?.1 ?? .other, family: Int(raw.family), model: Int(raw.model),
            extensions: Set(bits.filter { raw.extensions & UInt32(truncatingIfNeeded: $0.0.rawValue) != 0 }.map(\.1)))
    }()

    /// Whether every one of `required` is present.
    public func has(_ required: Extension...) -> Bool { required.allSatisfy(extensions.contains) }

    /// `amd family 23 model 49: sse3 ssse3 … avx2`.
    public var description: String {
        "\(vendor.rawValue) family \(family) model \(model): \(extensions.sorted().map(\.rawValue).joined(separator: " "))"
    }
}
