import CLibFuzzer
import TandemCloudFuzzTargets
import TandemFuzzTargets

#if canImport(Glibc)
    import Glibc
#endif

/// The libFuzzer executable of the cloud's targets (TandemCloudFuzzTargets: the worker, the fleet view, the label
/// intake), separate because its sanitized build takes in NIO, Hummingbird and the database drivers.
@main
enum TandemFuzzCloud {
    static func main() {
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        LibFuzzerDriver.initialize(targets: FuzzTarget.cloud, argc: &argc, argv: &argv)
        exit(
            LLVMFuzzerRunDriver(&argc, &argv) { data, count in
                LibFuzzerDriver.run(data, count)
                return 0
            })
    }
}
