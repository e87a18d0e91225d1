import Foundation
import Testing

@testable import TandemCore

/// The sgemm self-check a chosen OpenBLAS core must pass, the CPU features the choice reads, and the log line.
struct FloatKernelsTests {
    /// The real kernel, then one entry of C changed by 1 % of its size: the smallest error a wrong kernel makes.
    static let oneEntryOff: OpenBLAS.SGEMM = { order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc in
        OpenBLAS.sgemm!(order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
        if m * n > 1000, let c { c[Int(m * n) / 2] += 1e-2 * (1 + abs(c[Int(m * n) / 2])) }
    }
    /// Forgets what C held (beta treated as 0).
    static let ignoresBeta: OpenBLAS.SGEMM = { order, ta, tb, m, n, k, alpha, a, lda, b, ldb, _, c, ldc in
        OpenBLAS.sgemm!(order, ta, tb, m, n, k, alpha, a, lda, b, ldb, 0, c, ldc)
    }
    /// Writes nothing.
    static let doesNothing: OpenBLAS.SGEMM = { _, _, _, _, _, _, _, _, _, _, _, _, _, _ in }

    @Test("OpenBLAS as loaded passes the self-check")
    func realKernelPasses() throws {
        let sgemm = try #require(OpenBLAS.sgemm, "OpenBLAS is installed where the tests run")
        #expect(OpenBLAS.selfCheck(sgemm) == nil)
    }

    @Test(
        "a kernel that gets one entry wrong, ignores beta or writes nothing fails the self-check",
        arguments: ["one entry off", "ignores beta", "does nothing"])
    func brokenKernelsFail(_ name: String) throws {
        try #require(OpenBLAS.sgemm != nil)
        let kernels = [
            "one entry off": Self.oneEntryOff, "ignores beta": Self.ignoresBeta, "does nothing": Self.doesNothing,
        ]
        let sgemm = try #require(kernels[name])
        let failure = try #require(OpenBLAS.selfCheck(sgemm), "\(name) passed")
        #expect(failure.contains("expected"), "\(failure)")
    }

    @Test("the selection reads as the log line says it, for every way a core is decided")
    func selectionDescription() {
        let prescott = OpenBLASSelection.Detection(core: "Prescott", simulated: false)
        func line(_ core: String, _ decision: OpenBLASSelection.Decision, threads: Int = 2) -> String {
            OpenBLASSelection(version: "OpenBLAS 0.3.21", core: core, decision: decision, threads: threads)
                .description
        }
        #expect(
            line("SkylakeX", .chosen(prescott))
                == "OpenBLAS 0.3.21, core SkylakeX (chosen; detected Prescott), 2 threads")
        #expect(
            line("Zen", .detected(.init(core: "Zen", simulated: false)), threads: 1)
                == "OpenBLAS 0.3.21, core Zen (detected), 1 thread")
        #expect(line("Haswell", .explicit) == "OpenBLAS 0.3.21, core Haswell (set by OPENBLAS_CORETYPE), 2 threads")
        #expect(
            line("Prescott", .kept(prescott, candidate: "SkylakeX", problem: "failed the self-check (…)"))
                == "OpenBLAS 0.3.21, core Prescott (detected Prescott; SkylakeX failed the self-check (…)), 2 threads")
        #expect(
            line("Zen", .chosen(.init(core: "Prescott", simulated: true)))
                == "OpenBLAS 0.3.21, core Zen (chosen; detected Prescott, simulated by TANDEM_OPENBLAS_SIMULATED_CORE), 2 threads"
        )
    }

    @Test("loading OpenBLAS leaves no OPENBLAS_CORETYPE behind for child processes")
    func environmentRestored() throws {
        let inherited = ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"]
        _ = Kernels.floatKernels
        #expect(ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] == inherited)
        #expect(getenv("OPENBLAS_CORETYPE").map { String(cString: $0) } == inherited)
    }

    #if os(Linux) && arch(x86_64)
        @Test("CPUID's extensions are the kernel's /proc/cpuinfo flags, and agree with the int8 dispatch")
        func featuresMatchCPUInfo() throws {
            let text = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
            let flagsLine = try #require(text.split(separator: "\n").first { $0.hasPrefix("flags") })
            let flags = Set(flagsLine.split(separator: ":")[1].split(separator: " ").map(String.init))
            // Linux's names; SSE3 is "pni" there.
            let names: [CPUFeatures.Extension: String] = [
                .sse3: "pni", .ssse3: "ssse3", .sse41: "sse4_1", .sse42: "sse4_2", .avx: "avx", .fma: "fma",
                .avx2: "avx2", .avx512f: "avx512f", .avx512dq: "avx512dq", .avx512cd: "avx512cd",
                .avx512bw: "avx512bw", .avx512vl: "avx512vl", .avx512vnni: "avx512_vnni",
                .avx512bf16: "avx512_bf16", .amxTile: "amx_tile",
            ]
            let features = CPUFeatures.current
            for (feature, name) in names {
                #expect(features.extensions.contains(feature) == flags.contains(name), "\(feature): \(features)")
            }
            #expect(features.has(.avx2) == Int8InstructionSet.avx2.isSupported)
            #expect(
                features.has(.avx512f, .avx512bw, .avx512vl, .avx512vnni) == Int8InstructionSet.avx512VNNI.isSupported)
            let vendor = text.split(separator: "\n").first { $0.hasPrefix("vendor_id") }
            if vendor?.hasSuffix("AuthenticAMD") == true { #expect(features.vendor == .amd) }
            if vendor?.hasSuffix("GenuineIntel") == true { #expect(features.vendor == .intel) }
        }
    #endif
}
