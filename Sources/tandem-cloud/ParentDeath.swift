import ArgumentParser
import CProcessControl
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// `--exit-with-parent`: ties the worker's life to the process that started it.
///
/// A benchmark or supervisor that is killed with SIGKILL runs no cleanup, so its workers would keep running
/// with nobody to stop them. Linux's parent-death signal makes the kernel send SIGTERM to the worker when its
/// parent dies, and SIGTERM is the worker's graceful shutdown. The signal is armed by the worker itself after
/// it started, so a parent that died in between is caught by comparing `getppid()` with the pid the parent
/// passed: once orphaned, the worker's parent is another process (init or a subreaper).
enum ParentDeath {
    /// Arms SIGTERM on the death of `parent`, or exits with status 1 if `parent` is no longer the parent.
    ///
    /// - Throws: `ExitCode.failure` when the parent is already gone or is not `parent`, and when the kernel
    ///   refuses the parent-death signal (so a caller that asked for it never runs without it).
    static func follow(_ parent: Int32) throws {
        guard tandem_set_parent_death_signal(SIGTERM) == 0 else {
            printError("--exit-with-parent: the parent-death signal is not available (errno \(errno))")
            throw ExitCode.failure
        }
        guard getppid() == parent else {
            printError("--exit-with-parent: process \(parent) is not this worker's parent (it died); stopping")
            throw ExitCode.failure
        }
    }

    private static func printError(_ message: String) {
        FileHandle.standardError.write(Data("tandem-cloud: \(message)\n".utf8))
    }
}
