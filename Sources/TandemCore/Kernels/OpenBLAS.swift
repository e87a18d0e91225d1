#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// OpenBLAS, loaded at run time with the core type this CPU should use.
///
/// No Tandem program links OpenBLAS: a linked library initializes before `main`, and OpenBLAS reads
/// `OPENBLAS_CORETYPE` only then, so a better core could not be chosen any more. It is loaded with `dlopen` the
/// first time a float32 kernel (or ``Kernels/floatKernels``) needs it — `tandem-edge` never does for an int8
/// model, which saves an agent about 2 MiB. Loading goes:
///
/// 1. `OPENBLAS_CORETYPE` set by the user: load and keep whatever it names (an explicit choice always wins).
/// 2. Otherwise load it as it is and read the core it detected (`openblas_get_corename`). When
///    ``OpenBLASCoreType/replacement(forDetected:on:)`` finds a better core for this CPU's instruction sets —
///    OpenBLAS fell back to a generic core on a CPU it does not know — unload it (`dlclose` unmaps it: nothing
///    else holds it), set `OPENBLAS_CORETYPE` to that core, load it again, and run a small sgemm self-check
///    against a double-precision reference. If the library does not report the requested core, or the check
///    fails, go back to the detected core.
///
/// `OPENBLAS_CORETYPE` is removed from the environment again after each load, so child processes decide for
/// themselves rather than inheriting Tandem's choice as if a user had made it. Programs ask for
/// ``Kernels/floatKernels`` at start (they log it), before they start threads that might read the environment.
///
/// - Important: `TANDEM_OPENBLAS_SIMULATED_CORE` is for tests only. It makes the first load use that core
///   (through `OPENBLAS_CORETYPE`), as if OpenBLAS had detected it, so the replacement path can be run on a CPU
///   that OpenBLAS knows. The log line says when it was used.
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

    /// The variable OpenBLAS reads its core type from.
    static let coreTypeVariable = "OPENBLAS_CORETYPE"
    /// Test-only: the core the first load is forced to, standing in for a generic core OpenBLAS detected.
    static let simulatedCoreVariable = "TANDEM_OPENBLAS_SIMULATED_CORE"

    /// `cblas_sgemm`, or nil when OpenBLAS is not installed.
    static var sgemm: SGEMM? { loaded.library?.sgemm }

    /// Why ``sgemm`` is nil (the loader's messages), for the error a float32 model load reports.
    static var failure: String { loaded.failure }

    /// Which library and core the kernels run on, or nil when OpenBLAS could not be loaded.
    static var selection: OpenBLASSelection? { loaded.selection }

    /// Sets OpenBLAS's thread count (`openblas_set_num_threads`); false when there is no OpenBLAS or no such entry.
    static func setThreads(_ count: Int) -> Bool {
        guard let set = loaded.library?.setThreads else { return false }
        set(Int32(max(1, min(count, 1024))))
        return true
    }

    private static let loaded: Loaded = load(
        explicitCore: environment(coreTypeVariable), simulatedCore: environment(simulatedCoreVariable),
        features: .current)

    struct Loaded: Sendable {
        var library: Library?
        var selection: OpenBLASSelection?
        var failure: String
    }

    /// One `dlopen` of the library, with the entry points Tandem uses.
    ///
    /// `@unchecked Sendable`: every field is immutable; the handle is only passed to `dlclose` while ``load`` runs,
    /// before the library is published, and the sgemm it exposes is thread-safe (OpenBLAS guards its buffers).
    struct Library: @unchecked Sendable {
        /// nil when the symbols came from the process itself (something linked OpenBLAS).
        let handle: UnsafeMutableRawPointer?
        let sgemm: SGEMM
        /// `openblas_get_corename()`, e.g. `Haswell`.
        let coreName: String
        /// `OpenBLAS 0.3.21`, from `openblas_get_config()`.
        let version: String
        /// `openblas_get_num_threads()`.
        let threads: Int
        /// `openblas_set_num_threads`, if the library has it.
        let setThreads: (@convention(c) (Int32) -> Void)?

        static let names = ["libopenblas.so.0", "libopenblas.so", "libopenblas.dylib"]

        /// OpenBLAS if it is already in the process, else nil.
        static func inProcess() -> Library? {
            guard let symbol = dlsym(nil, "cblas_sgemm") else { return nil }  // nil: RTLD_DEFAULT
            return Library(handle: nil, sgemm: unsafeBitCast(symbol, to: SGEMM.self))
        }

        /// Loads the library (its constructor runs now and reads the environment), or says why it cannot.
        static func open() -> Result<Library, LoadFailure> {
            var reasons = [String]()
            for name in names {
                guard let handle = dlopen(name, RTLD_NOW | RTLD_LOCAL) else {
                    reasons.append(dlerror().map { String(cString: $0) } ?? name)
                    continue
                }
                if let symbol = dlsym(handle, "cblas_sgemm") {
                    return .success(Library(handle: handle, sgemm: unsafeBitCast(symbol, to: SGEMM.self)))
                }
                reasons.append("\(name) has no cblas_sgemm")
                dlclose(handle)
            }
            return .failure(LoadFailure(message: reasons.joined(separator: "; ")))
        }

        private init(handle: UnsafeMutableRawPointer?, sgemm: SGEMM) {
            typealias Text = @convention(c) () -> UnsafePointer<CChar>?
            typealias Count = @convention(c) () -> Int32
            func lookup(_ name: String) -> UnsafeMutableRawPointer? {
                handle.map { dlsym($0, name) } ?? dlsym(nil, name)
            }
            func text(_ name: String) -> String? {
                lookup(name).flatMap { unsafeBitCast($0, to: Text.self)() }.map { String(cString: $0) }
            }
            self.handle = handle
            self.sgemm = sgemm
            coreName = text("openblas_get_corename") ?? "unknown"
            // "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Zen MAX_THREADS=64": the first two words.
            version =
                text("openblas_get_config").map { $0.split(separator: " ").prefix(2).joined(separator: " ") }
                ?? "OpenBLAS"
            threads = lookup("openblas_get_num_threads").map { Int(unsafeBitCast($0, to: Count.self)()) } ?? 0
            setThreads = lookup("openblas_set_num_threads").map {
                unsafeBitCast($0, to: (@convention(c) (Int32) -> Void).self)
            }
        }

        /// Unloads it; its destructor stops its threads. Only for a library no kernel has been handed yet.
        func close() {
            if let handle { dlclose(handle) }
        }
    }

    struct LoadFailure: Error {
        var message: String
    }

    /// Loads OpenBLAS as described on ``OpenBLAS``.
    ///
    /// - Parameters:
    ///   - explicitCore: `OPENBLAS_CORETYPE` as the user set it, or nil.
    ///   - simulatedCore: the test-only stand-in for a detected core, or nil.
    ///   - features: this CPU's features.
    static func load(explicitCore: String?, simulatedCore: String?, features: CPUFeatures) -> Loaded {
        func selected(_ library: Library, _ decision: OpenBLASSelection.Decision) -> Loaded {
            Loaded(
                library: library,
                selection: OpenBLASSelection(
                    version: library.version, core: library.coreName, decision: decision, threads: library.threads),
                failure: "")
        }
        func failed(_ failure: LoadFailure) -> Loaded { Loaded(library: nil, selection: nil, failure: failure.message) }

        if let present = Library.inProcess() { return selected(present, .loadedBefore) }
        if explicitCore != nil {
            switch Library.open() {
            case .success(let library): return selected(library, .explicit)
            case .failure(let failure): return failed(failure)
            }
        }
        let detecting = { withCoreType(simulatedCore) { Library.open() } }
        let first: Library
        switch detecting() {
        case .success(let library): first = library
        case .failure(let failure): return failed(failure)
        }
        let detected = OpenBLASSelection.Detection(core: first.coreName, simulated: simulatedCore != nil)
        guard let candidate = OpenBLASCoreType.replacement(forDetected: first.coreName, on: features) else {
            return selected(first, .detected(detected))
        }
        first.close()
        let problem: String
        switch withCoreType(candidate.rawValue, { Library.open() }) {
        case .success(let library):
            if library.coreName.lowercased() != candidate.rawValue.lowercased() {
                problem = "the library reported \(library.coreName) when asked for it"
            } else if let failure = selfCheck(library.sgemm) {
                problem = "failed the self-check (\(failure))"
            } else {
                return selected(library, .chosen(detected))
            }
            library.close()
        case .failure(let failure):
            problem = "could not be loaded (\(failure.message))"
        }
        switch detecting() {
        case .success(let library):
            return selected(library, .kept(detected, candidate: candidate.rawValue, problem: problem))
        case .failure(let failure): return failed(failure)
        }
    }

    /// Runs `body` with `OPENBLAS_CORETYPE` set to `core` (untouched when nil), then removes it again.
    ///
    /// - Important: Only called while no `OPENBLAS_CORETYPE` was set by the user, once per process, under the
    ///   one-time initialization of ``loaded`` (so never concurrently with itself).
    private static func withCoreType<T>(_ core: String?, _ body: () -> T) -> T {
        guard let core else { return body() }
        setenv(coreTypeVariable, core, 1)
        defer { unsetenv(coreTypeVariable) }
        return body()
    }

    private static func environment(_ name: String) -> String? {
        guard let value = getenv(name), value.pointee != 0 else { return nil }
        return String(cString: value)
    }
}

/// Which OpenBLAS the float32 kernels run on, which core type, and how that core was decided.
public struct OpenBLASSelection: Sendable, Equatable, CustomStringConvertible {
    /// The core OpenBLAS picked by itself.
    public struct Detection: Sendable, Equatable {
        /// Its name, e.g. `Prescott`.
        public var core: String
        /// Whether it was forced by the test-only `TANDEM_OPENBLAS_SIMULATED_CORE` rather than detected.
        public var simulated: Bool
    }

    /// How the core was decided.
    public enum Decision: Sendable, Equatable {
        /// OpenBLAS's own choice; no better core for this CPU's instruction sets.
        case detected(Detection)
        /// Tandem replaced the detected core with a better one, which passed the self-check.
        case chosen(Detection)
        /// A better core was tried and given up; the detected one is used.
        case kept(Detection, candidate: String, problem: String)
        /// The user set `OPENBLAS_CORETYPE`.
        case explicit
        /// OpenBLAS was already in the process (linked by the host program), so its core could not be chosen.
        case loadedBefore
    }

    /// `OpenBLAS 0.3.21`.
    public var version: String
    /// The core type the kernels run on.
    public var core: String
    /// How it was decided.
    public var decision: Decision
    /// OpenBLAS's thread count.
    public var threads: Int

    /// `OpenBLAS 0.3.21, core SkylakeX (chosen; detected Prescott), 2 threads`.
    public var description: String {
        func detected(_ d: Detection) -> String {
            "detected \(d.core)\(d.simulated ? ", simulated by \(OpenBLAS.simulatedCoreVariable)" : "")"
        }
        let how =
            switch decision {
            case .detected(let d): d.simulated ? detected(d) : "detected"
            case .chosen(let d): "chosen; \(detected(d))"
            case .kept(let d, let candidate, let problem): "\(detected(d)); \(candidate) \(problem)"
            case .explicit: "set by \(OpenBLAS.coreTypeVariable)"
            case .loadedBefore: "loaded before Tandem could choose"
            }
        return "\(version), core \(core) (\(how)), \(threads) thread\(threads == 1 ? "" : "s")"
    }
}
