import TandemCore
import Testing

/// The rule that replaces a generic OpenBLAS core: CPUID's instruction sets against the detected core's level.
struct OpenBLASCoreTypeTests {
    typealias Extension = CPUFeatures.Extension

    static let sse: Set<Extension> = [.sse3, .ssse3, .sse41, .sse42]
    static let avx2 = sse.union([.avx, .fma, .avx2])
    static let avx512 = avx2.union([.avx512f, .avx512cd, .avx512bw, .avx512dq, .avx512vl])
    static let avx512VNNI = avx512.union([.avx512vnni])
    static let avx512BF16 = avx512VNNI.union([.avx512bf16])

    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var features: CPUFeatures
        var detected: String
        var expected: OpenBLASCoreType?
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(
            name: "5th-gen Xeon (family 6 model 207) on Prescott → Cooperlake",
            features: CPUFeatures(vendor: .intel, family: 6, model: 207, extensions: avx512BF16.union([.amxTile])),
            detected: "Prescott", expected: .cooperlake),
        Case(
            name: "AVX-512 without BF16 on Prescott → SkylakeX",
            features: CPUFeatures(vendor: .intel, family: 6, model: 85, extensions: avx512VNNI),
            detected: "Prescott", expected: .skylakeX),
        Case(
            name: "Intel AVX2 on Prescott → Haswell",
            features: CPUFeatures(vendor: .intel, extensions: avx2), detected: "Prescott", expected: .haswell),
        Case(
            name: "AMD AVX2 on Prescott → Zen",
            features: CPUFeatures(vendor: .amd, family: 25, extensions: avx2), detected: "Prescott", expected: .zen),
        Case(
            name: "Hygon AVX2 on Nehalem → Zen",
            features: CPUFeatures(vendor: .hygon, extensions: avx2), detected: "Nehalem", expected: .zen),
        Case(
            name: "AVX only on Nehalem → Sandybridge",
            features: CPUFeatures(vendor: .intel, extensions: sse.union([.avx])), detected: "Nehalem",
            expected: .sandybridge),
        Case(
            name: "AVX-512 machine OpenBLAS put on Haswell → SkylakeX",
            features: CPUFeatures(vendor: .intel, extensions: avx512), detected: "Haswell", expected: .skylakeX),
        Case(
            name: "the name is matched without regard to case",
            features: CPUFeatures(vendor: .intel, extensions: avx2), detected: "PRESCOTT", expected: .haswell),
        Case(
            name: "Zen 2 detected as Zen stays",
            features: CPUFeatures(vendor: .amd, family: 23, model: 49, extensions: avx2), detected: "Zen",
            expected: nil),
        Case(
            name: "Zen 4 detected as Cooperlake stays",
            features: CPUFeatures(vendor: .amd, family: 25, model: 17, extensions: avx512BF16), detected: "Cooperlake",
            expected: nil),
        Case(
            name: "Intel AVX2 detected as Zen stays (same level)",
            features: CPUFeatures(vendor: .intel, extensions: avx2), detected: "Zen", expected: nil),
        Case(
            name: "a core this table does not know stays (a newer OpenBLAS knows the CPU)",
            features: CPUFeatures(vendor: .intel, extensions: avx512BF16), detected: "SapphireRapids", expected: nil),
        Case(
            name: "an unknown name stays",
            features: CPUFeatures(vendor: .intel, extensions: avx512BF16), detected: "Unknown", expected: nil),
        Case(
            name: "an SSE-only CPU keeps OpenBLAS's choice",
            features: CPUFeatures(vendor: .intel, extensions: sse), detected: "Prescott", expected: nil),
        Case(
            name: "AVX-512F/CD without BW/DQ/VL (Knights Landing) → Haswell, not SkylakeX",
            features: CPUFeatures(vendor: .intel, extensions: avx2.union([.avx512f, .avx512cd])),
            detected: "Prescott", expected: .haswell),
        Case(
            name: "BF16 without the rest of AVX-512 is not Cooperlake",
            features: CPUFeatures(vendor: .intel, extensions: avx2.union([.avx512bf16])), detected: "Prescott",
            expected: .haswell),
        Case(
            name: "AVX2 without FMA is only Sandybridge",
            features: CPUFeatures(vendor: .intel, extensions: sse.union([.avx, .avx2])), detected: "Prescott",
            expected: .sandybridge),
    ]

    @Test("the replacement for a detected core", arguments: cases)
    func replacement(_ c: Case) {
        #expect(OpenBLASCoreType.replacement(forDetected: c.detected, on: c.features) == c.expected)
    }

    @Test("the best core is the highest one whose extensions the CPU has", arguments: cases)
    func bestIsHighestRunnable(_ c: Case) {
        let runnable = OpenBLASCoreType.allCases.filter { $0.requiredExtensions.isSubset(of: c.features.extensions) }
        guard let best = OpenBLASCoreType.best(for: c.features) else {
            #expect(runnable.isEmpty)
            return
        }
        #expect(best.requiredExtensions.isSubset(of: c.features.extensions))
        #expect(runnable.allSatisfy { $0.level <= best.level })
    }

    @Test("levels rise with the extensions a core needs; each level's cores need all of the level below")
    func levelsAreOrdered() {
        let cores = OpenBLASCoreType.allCases.sorted { $0.level < $1.level }
        for (lower, higher) in zip(cores, cores.dropFirst()) where lower.level < higher.level {
            #expect(lower.requiredExtensions.isSubset(of: higher.requiredExtensions), "\(lower) ⊄ \(higher)")
        }
        for core in OpenBLASCoreType.allCases {
            #expect(OpenBLASCoreType.level(ofCoreNamed: core.rawValue) == core.level, "\(core)")
        }
        #expect(OpenBLASCoreType.level(ofCoreNamed: "Prescott") == .sse)
        #expect(OpenBLASCoreType.level(ofCoreNamed: "Excavator") == .avx)
        #expect(OpenBLASCoreType.level(ofCoreNamed: "Neoverse") == nil)
    }
}
