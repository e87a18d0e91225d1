import CLibFuzzer
import TandemFuzzTargets

#if canImport(Glibc)
    import Glibc
#endif

/// The libFuzzer executable of the targets that need no server (TandemFuzzTargets): `--target=NAME` picks one,
/// `--list-targets` lists them; every other argument is libFuzzer's.
@main
enum TandemFuzz {
    static func main() {
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        LibFuzzerDriver.initialize(targets: FuzzTarget.standalone, argc: &argc, argv: &argv)
        exit(
            LLVMFuzzerRunDriver(&argc, &argv) { data, count in
                LibFuzzerDriver.run(data, count)
                return 0
            })
    }
}
