/// The OpenBLAS core types (kernel sets, as `OPENBLAS_CORETYPE` names them) Tandem may choose on x86-64, and the
/// rule that picks one for a CPU.
///
/// A `DYNAMIC_ARCH` OpenBLAS (Debian's) carries kernels for many CPUs and picks a core type from the CPUID
/// family and model when it loads. A CPU newer than the library gets a generic core instead: Debian 12's 0.3.21
/// runs a 5th-generation Xeon (family 6, model 207, AVX-512 with BF16) on `Prescott`, SSE3 kernels at a quarter
/// of the speed its AVX-512 kernels reach there. The instruction sets are what matter, and CPUID names them
/// directly, so the rule compares what the detected core needs with what the CPU has:
///
/// - every core type is ranked by the instruction sets its kernels need (``Level``);
/// - the best core the CPU can run is the highest level whose extensions it has: `Cooperlake` with AVX-512
///   BF16, `SkylakeX` with AVX-512 F/CD/BW/DQ/VL, `Haswell` with AVX2 and FMA (`Zen` on AMD, Hygon, Centaur and
///   Zhaoxin, as OpenBLAS itself picks there), `Sandybridge` with AVX;
/// - only a detected core of a lower level is replaced. A core the rule does not know (a newer OpenBLAS's) is
///   never replaced: the library knows that CPU better than this table does.
///
/// OpenBLAS does not check a forced core type against the CPU (a `SkylakeX` forced onto a CPU without AVX-512
/// dies of an illegal instruction), so a core is chosen only when CPUID reports every extension its kernels
/// were compiled for; the loader then checks its results (``OpenBLAS``).
public enum OpenBLASCoreType: String, Sendable, CaseIterable {
    case sandybridge = "Sandybridge"
    case haswell = "Haswell"
    case zen = "Zen"
    case skylakeX = "SkylakeX"
    case cooperlake = "Cooperlake"

    /// What a core type's kernels need, from SSE3 up.
    public enum Level: Int, Sendable, Comparable {
        /// SSE2/SSE3-era kernels (`Prescott`, `Core2`, `Nehalem`, `Barcelona`, …).
        case sse
        /// AVX (`Sandybridge`, `Bulldozer` … `Excavator`).
        case avx
        /// AVX2 with FMA (`Haswell`, `Zen`).
        case avx2
        /// AVX-512 F/CD/BW/DQ/VL (`SkylakeX`).
        case avx512
        /// AVX-512 with BF16 (`Cooperlake`).
        case avx512BF16
        /// AMX (`SapphireRapids`, which 0.3.21 cannot be told to use).
        case amx

        public static func < (a: Level, b: Level) -> Bool { a.rawValue < b.rawValue }
    }

    /// The level of this core type.
    public var level: Level {
        switch self {
        case .sandybridge: .avx
        case .haswell, .zen: .avx2
        case .skylakeX: .avx512
        case .cooperlake: .avx512BF16
        }
    }

    /// The extensions its kernels were compiled for (OpenBLAS builds each with the matching `-march`).
    public var requiredExtensions: Set<CPUFeatures.Extension> {
        let avx512: Set<CPUFeatures.Extension> = [
            .avx, .avx2, .fma, .avx512f, .avx512cd, .avx512bw, .avx512dq, .avx512vl,
        ]
        switch self {
        case .sandybridge: return [.avx]
        case .haswell, .zen: return [.avx, .avx2, .fma]
        case .skylakeX: return avx512
        case .cooperlake: return avx512.union([.avx512vnni, .avx512bf16])
        }
    }

    /// The level of a core type as `openblas_get_corename()` spells it, or nil for a name this table does not know.
    public static func level(ofCoreNamed name: String) -> Level? {
        switch name.lowercased() {
        case "katmai", "coppermine", "northwood", "prescott", "banias", "atom", "core2", "penryn", "dunnington",
            "nehalem", "athlon", "opteron", "opteron_sse3", "barcelona", "nano", "bobcat":
            .sse
        case "sandybridge", "bulldozer", "piledriver", "steamroller", "excavator": .avx
        case "haswell", "zen": .avx2
        case "skylakex": .avx512
        case "cooperlake": .avx512BF16
        case "sapphirerapids": .amx
        default: nil
        }
    }

    /// The best core type a CPU with `features` can run, or nil below AVX (where the SSE-era cores differ by
    /// microarchitecture, not by instruction set, and OpenBLAS's own choice stands).
    public static func best(for features: CPUFeatures) -> OpenBLASCoreType? {
        let avx2Core: OpenBLASCoreType =
            switch features.vendor {
            case .amd, .hygon, .centaur, .zhaoxin: .zen
            case .intel, .other: .haswell
            }
        return [.cooperlake, .skylakeX, avx2Core, .sandybridge].first {
            $0.requiredExtensions.isSubset(of: features.extensions)
        }
    }

    /// The core type to load instead of the one OpenBLAS detected, or nil to keep the detected one.
    ///
    /// - Parameters:
    ///   - detected: `openblas_get_corename()` of the library as it loaded by itself.
    ///   - features: the CPU's features.
    public static func replacement(forDetected detected: String, on features: CPUFeatures) -> OpenBLASCoreType? {
        guard let detectedLevel = level(ofCoreNamed: detected), let best = best(for: features),
            best.level > detectedLevel
        else { return nil }
        return best
    }
}
