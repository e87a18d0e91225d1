import Foundation

/// Executables built alongside the test bundle (`swift build --build-tests` builds every product).
public enum BuiltProducts {
    /// The directory holding the test bundle and the package's executables.
    public static var directory: URL {
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        // On Linux the test runner is `<bin>/TandemPackageTests.xctest`; Swift Testing may run it via `swiftpm-testing-helper`.
        while url.pathComponents.count > 1 {
            url.deleteLastPathComponent()
            if FileManager.default.isExecutableFile(atPath: url.appendingPathComponent("tandem").path) { return url }
        }
        return URL(fileURLWithPath: ".build/debug")
    }

    /// The URL of the executable product `name`.
    public static func executable(_ name: String) -> URL { directory.appendingPathComponent(name) }
}

/// The result of running a command to completion.
public struct CommandResult: Sendable {
    /// Exit status.
    public var status: Int32
    /// Everything written to standard output.
    public var standardOutput: String
    /// Everything written to standard error.
    public var standardError: String
}

/// Runs an executable with arguments, waits for it and captures its output.
///
/// Output is drained on background threads while the process runs, so a chatty child cannot block
/// on a full pipe.
public func runCommand(_ executable: URL, _ arguments: [String], environment: [String: String]? = nil) throws
    -> CommandResult
{
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    if let environment { process.environment = environment }
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let outData = Drain(out.fileHandleForReading), errData = Drain(err.fileHandleForReading)
    process.waitUntilExit()
    return CommandResult(
        status: process.terminationStatus, standardOutput: String(decoding: outData.wait(), as: UTF8.self),
        standardError: String(decoding: errData.wait(), as: UTF8.self))
}

/// Reads a file handle to its end on a background thread.
final class Drain: @unchecked Sendable {
    // `data` is written once by the reading thread before `done` is signalled and read only after waiting on it.
    private var data = Data()
    private let done = DispatchSemaphore(value: 0)

    init(_ handle: FileHandle) {
        Thread.detachNewThread { [self] in
            data = handle.readDataToEndOfFile()
            done.signal()
        }
    }

    func wait() -> Data {
        done.wait()
        return data
    }
}
