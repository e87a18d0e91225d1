import TandemMQTT

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Lines appended to a file, followed like `tail -F`.
///
/// The file is polled every `pollIntervalSeconds` (default 0.25 s): new bytes are read up to the end;
/// if the path now names another file (rotation by rename, or delete and re-create), the old file is
/// read to its end and the new one from its start; if the file shrank below the read position
/// (truncation), reading restarts at its start. A missing file is waited for. On ``stop()`` the file
/// is read to its current end once more, then the sequence finishes.
public final class FollowedFileSource: LineSource {
    /// `file <path>`.
    public let description: String
    /// The followed path.
    public let path: String
    /// Seconds between polls.
    public let pollIntervalSeconds: Double
    /// Whether an existing file is read from its end (as `tail -F`) rather than its start.
    public let startAtEnd: Bool
    private let maximumLineBytes: Int
    private let channel = SourceChannel()

    /// Creates a source following `path`.
    public init(
        path: String, pollIntervalSeconds: Double = 0.25, startAtEnd: Bool = false, maximumLineBytes: Int = 4096
    ) {
        self.path = path
        self.description = "file \(path)"
        self.pollIntervalSeconds = max(pollIntervalSeconds, 0.001)
        self.startAtEnd = startAtEnd
        self.maximumLineBytes = maximumLineBytes
    }

    /// Starts the reader thread and returns its batches.
    public func batches() -> LineBatches {
        BackgroundThread.start(name: "file-source") { [self] in followLoop() }
        return LineBatches(channel: channel)
    }

    /// Stops following after one last read to the end.
    public func stop() { channel.stop() }

    private struct Identity: Equatable {
        var device: UInt64
        var inode: UInt64
    }

    private func identity(ofPath path: String) -> (Identity, Int)? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return (Identity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino)), Int(info.st_size))
    }

    private func identity(ofDescriptor fd: Int32) -> (Identity, Int)? {
        var info = stat()
        guard fstat(fd, &info) == 0 else { return nil }
        return (Identity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino)), Int(info.st_size))
    }

    private func followLoop() {
        var splitter = LineSplitter(maximumLineBytes: maximumLineBytes)
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        var lineNumber = 1
        var fd: Int32 = -1
        var current: Identity?
        var offset = 0
        var first = true

        func readToEnd() {
            guard fd >= 0 else { return }
            while true {
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { return }
                offset += n
                var batch = LineBatch()
                batch.firstLineNumber = lineNumber
                buffer.withUnsafeBytes { splitter.feed(UnsafeRawBufferPointer(rebasing: $0[0..<n]), into: &batch) }
                lineNumber += batch.lines.count + batch.overlongLines
                channel.deliver(batch)
            }
        }

        func finishLine() {
            var batch = LineBatch()
            batch.firstLineNumber = lineNumber
            splitter.finish(into: &batch)
            lineNumber += batch.lines.count
            channel.deliver(batch)
        }

        func open() {
            let opened = openForReading(path)
            guard opened >= 0 else { return }
            fd = opened
            current = identity(ofDescriptor: fd)?.0
            offset = 0
            if first && startAtEnd { offset = Int(lseek(fd, 0, SEEK_END)) }
            first = false
        }

        while true {
            let stopping = channel.isStopping
            if fd < 0 { open() }
            if fd >= 0 {
                readToEnd()
                if let (identity, _) = identity(ofPath: path), identity != current {
                    // Rotated: the old file is complete; its last line needs no newline to count.
                    readToEnd()
                    finishLine()
                    close(fd)
                    fd = -1
                    open()
                    readToEnd()
                } else if let (_, size) = identity(ofDescriptor: fd), size < offset {
                    // Truncated under us: what was written since is at the start.
                    splitter.discardPartialLine()
                    lseek(fd, 0, SEEK_SET)
                    offset = 0
                    readToEnd()
                }
            }
            if stopping { break }
            // Sleep in short steps so a stop is seen promptly even with a long poll interval.
            var slept = 0.0
            while slept < pollIntervalSeconds && !channel.isStopping {
                let step = min(0.05, pollIntervalSeconds - slept)
                usleep(useconds_t(step * 1_000_000))
                slept += step
            }
        }
        finishLine()
        if fd >= 0 { close(fd) }
        channel.finish()
    }
}

/// `open(path, O_RDONLY)`, named so it does not clash with the local `open()` above.
private func openForReading(_ path: String) -> Int32 {
    open(path, O_RDONLY)
}
