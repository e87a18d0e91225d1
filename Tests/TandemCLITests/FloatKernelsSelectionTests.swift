import Foundation
import TandemCore
import TandemTestSupport
import Testing

/// `tandem` started as a user would, on an OpenBLAS that fell back to a generic core: it ends up on the core this
/// CPU's instruction sets allow, and says so once.
///
/// OpenBLAS knows the CPUs these tests usually run on, so the fallback is simulated with the test-only
/// `TANDEM_OPENBLAS_SIMULATED_CORE=Prescott`: Tandem's first load of the library then really runs on `Prescott`
/// (forced through `OPENBLAS_CORETYPE` for that load only), exactly what it meets on a CPU the library does not
/// know. `OPENBLAS_VERBOSE=2` makes OpenBLAS itself print `Core: …` each time it initializes, which the tests
/// read as evidence independent of Tandem's own log line.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct FloatKernelsSelectionTests {
    let tandem = BuiltProducts.executable("tandem")
    static let spec = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("cloud-config/models/edge.yaml").path

    /// A short `tandem bench model` (training and float inference) in an environment without the OpenBLAS and Tandem
    /// variables, plus `extra`.
    func benchModel(_ extra: [String: String]) throws -> (kernelLine: String, openBLASCores: [String]) {
        var environment = ProcessInfo.processInfo.environment
        environment["OPENBLAS_CORETYPE"] = nil
        environment["TANDEM_OPENBLAS_SIMULATED_CORE"] = nil
        environment["OPENBLAS_VERBOSE"] = "2"
        environment.merge(extra) { $1 }
        let result = try runCommand(
            tandem,
            [
                "bench", "model", "--spec", Self.spec, "--steps", "2", "--warmup", "1", "--infer-batch", "8",
                "--infer-windows", "16", "--json",
            ], environment: environment)
        #expect(result.status == 0, "\(result.standardError)")
        let lines = result.standardError.split(separator: "\n").map(String.init)
        let kernelLines = lines.filter { $0.hasPrefix("float kernels: ") }
        #expect(kernelLines.count == 1, "logged once: \(lines)")
        let cores = lines.filter { $0.hasPrefix("Core: ") }.map { String($0.dropFirst("Core: ".count)) }
        return (kernelLines.first ?? "", cores)
    }

    @Test("a simulated generic fallback (Prescott) ends on the best core for this CPU, which the library confirms")
    func genericFallbackReplaced() throws {
        let (line, cores) = try benchModel(["TANDEM_OPENBLAS_SIMULATED_CORE": "Prescott"])
        let simulated = "simulated by TANDEM_OPENBLAS_SIMULATED_CORE"
        if let chosen = OpenBLASCoreType.replacement(forDetected: "Prescott", on: .current) {
            #expect(line.contains(", core \(chosen.rawValue) (chosen; detected Prescott, \(simulated)), "), "\(line)")
            #expect(cores == ["Prescott", chosen.rawValue], "OpenBLAS initialized as \(cores)")
        } else {
            // A CPU without AVX: nothing better than the generic core exists.
            #expect(line.contains(", core Prescott (detected Prescott, \(simulated)), "), "\(line)")
            #expect(cores == ["Prescott"])
        }
        #expect(line.hasPrefix("float kernels: OpenBLAS "))
    }

    @Test("an explicit OPENBLAS_CORETYPE wins over the choice, and over the simulation")
    func explicitCoreWins() throws {
        let (line, cores) = try benchModel([
            "OPENBLAS_CORETYPE": "Prescott", "TANDEM_OPENBLAS_SIMULATED_CORE": "Nehalem",
        ])
        #expect(line.contains(", core Prescott (set by OPENBLAS_CORETYPE), "), "\(line)")
        #expect(cores == ["Prescott"])
    }

    @Test("without any variable the core is OpenBLAS's own unless it is below what the CPU can run")
    func defaultSelection() throws {
        let (line, cores) = try benchModel([:])
        let first = try #require(cores.first, "OPENBLAS_VERBOSE=2 prints the core")
        if let chosen = OpenBLASCoreType.replacement(forDetected: first, on: .current) {
            #expect(line.contains(", core \(chosen.rawValue) (chosen; detected \(first)), "), "\(line)")
            #expect(cores == [first, chosen.rawValue])
        } else {
            #expect(line.contains(", core \(first) (detected), "), "\(line)")
            #expect(cores == [first])
        }
    }
}
