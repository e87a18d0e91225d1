import TandemMQTT

#if canImport(Glibc)
    import Glibc
#endif

/// What the libFuzzer executables in `Fuzz/` do in `LLVMFuzzerInitialize` and `LLVMFuzzerTestOneInput`: pick the
/// target named by `--target=NAME` (a flag libFuzzer ignores, as it starts with `--`), list the targets for
/// `--list-targets`, and run each input through the one picked.
public enum LibFuzzerDriver {
    /// The target picked at start-up, before libFuzzer runs any input (libFuzzer runs inputs on one thread).
    nonisolated(unsafe) private static var selected: FuzzTarget?

    /// Reads the command line: `--list-targets` prints each target's name and summary and exits; otherwise
    /// `--target=NAME` picks one of `targets`, and anything else ends the process with a usage message.
    public static func initialize(
        targets: [FuzzTarget], argc: UnsafeMutablePointer<CInt>,
        argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>
    ) {
        let arguments = (0..<Int(argc.pointee)).compactMap { argv.pointee?[$0].map { String(cString: $0) } }
        if arguments.contains("--list-targets") {
            for target in targets { print("\(target.name)\t\(target.summary)") }
            exit(0)
        }
        let names = targets.map(\.name).joined(separator: ", ")
        guard let flag = arguments.first(where: { $0.hasPrefix("--target=") }) else {
            StandardError.write("give --target=NAME, one of \(names)\n")
            exit(2)
        }
        let name = String(flag.dropFirst("--target=".count))
        guard let target = targets.first(where: { $0.name == name }) else {
            StandardError.write("no target '\(name)' here; the targets are \(names)\n")
            exit(2)
        }
        selected = target
    }

    /// Runs one input through the target picked.
    public static func run(_ data: UnsafePointer<UInt8>?, _ count: Int) {
        selected?.run(UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : count))
    }
}
