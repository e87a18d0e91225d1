#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Replaces files so that a crash at any moment leaves either the old or the new contents, never a mix.
///
/// The bytes go to a temporary file in the destination's directory (a rename is only atomic within one
/// file system), which is fsynced, renamed over the destination, and then the directory is fsynced so
/// the rename itself survives a power loss.
public enum AtomicFile {
    /// Atomically replaces the file at `url` with `bytes`.
    ///
    /// - Parameters:
    ///   - bytes: The new contents.
    ///   - url: The destination file; its directory must exist.
    ///   - permissions: The new file's mode bits, set exactly (the umask does not apply).
    /// - Throws: `ArtifactError` with code `io` naming the failing step and path; the temporary file is
    ///   removed and the destination left as it was.
    public static func write(_ bytes: [UInt8], to url: URL, permissions: mode_t = 0o644) throws(ArtifactError) {
        let path = url.path
        let directory = url.deletingLastPathComponent().path
        let temporary = directory + "/." + url.lastPathComponent + ".tmp-" + UUID().uuidString
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, permissions)
        guard fd >= 0 else { throw failure("cannot create temporary file", temporary) }
        var closed = false
        var renamed = false
        defer {
            if !closed { close(fd) }
            if !renamed { unlink(temporary) }
        }
        guard fchmod(fd, permissions) == 0 else { throw failure("cannot set permissions of", temporary) }
        var written = 0
        while written < bytes.count {
            let result = bytes.withUnsafeBytes { buffer in
                posixWrite(fd, buffer.baseAddress.map { $0 + written }, buffer.count - written)
            }
            if result < 0 {
                if errno == EINTR { continue }
                throw failure("cannot write", temporary)
            }
            written += result
        }
        guard fsync(fd) == 0 else { throw failure("cannot fsync", temporary) }
        closed = true
        guard close(fd) == 0 else { throw failure("cannot close", temporary) }
        guard rename(temporary, path) == 0 else { throw failure("cannot rename \(temporary) to", path) }
        renamed = true
        try syncDirectory(directory)
    }

    private static func syncDirectory(_ directory: String) throws(ArtifactError) {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw failure("cannot open directory", directory) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw failure("cannot fsync directory", directory) }
    }

    private static func failure(_ what: String, _ path: String) -> ArtifactError {
        ArtifactError(.io, "\(what) \(path): \(String(cString: strerror(errno)))", path: path)
    }
}

/// POSIX `write(2)`, named apart from the many Swift `write` methods in scope.
@inline(__always)
private func posixWrite(_ fd: Int32, _ buffer: UnsafeRawPointer?, _ count: Int) -> Int {
    write(fd, buffer, count)
}
