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

/// Lines from a file descriptor read to its end: standard input by default, or a pipe.
///
/// The reader polls the descriptor every 100 ms, so ``stop()`` takes effect within that time even
/// when no data arrives. At end of input an unfinished last line still counts as a line.
public final class StandardInputSource: LineSource {
    /// `stdin`, or what the caller named the descriptor.
    public let description: String
    private let fileDescriptor: Int32
    private let maximumLineBytes: Int
    private let channel = SourceChannel()

    /// Creates a source reading `fileDescriptor` (standard input by default).
    public init(fileDescriptor: Int32 = 0, description: String = "stdin", maximumLineBytes: Int = 4096) {
        self.fileDescriptor = fileDescriptor
        self.description = description
        self.maximumLineBytes = maximumLineBytes
    }

    /// Starts the reader thread and returns its batches.
    public func batches() -> LineBatches {
        BackgroundThread.start(name: "stdin-source") { [self] in readLoop() }
        return LineBatches(channel: channel)
    }

    /// Stops reading; lines already read are delivered.
    public func stop() { channel.stop() }

    private func readLoop() {
        var splitter = LineSplitter(maximumLineBytes: maximumLineBytes)
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        var lineNumber = 1
        while !channel.isStopping {
            var descriptor = pollfd(fd: fileDescriptor, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, 100)
            if ready < 0 && errno == EINTR { continue }
            if ready == 0 { continue }
            let n = buffer.withUnsafeMutableBytes { read(fileDescriptor, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            var batch = LineBatch()
            batch.firstLineNumber = lineNumber
            if n <= 0 {
                splitter.finish(into: &batch)
                lineNumber += batch.lines.count + batch.overlongLines
                channel.deliver(batch)
                if n < 0 {
                    channel.finish(
                        throwing: SourceError(.io, "\(description): read failed: \(String(cString: strerror(errno)))"))
                } else {
                    channel.finish()
                }
                return
            }
            buffer.withUnsafeBytes { splitter.feed(UnsafeRawBufferPointer(rebasing: $0[0..<n]), into: &batch) }
            lineNumber += batch.lines.count + batch.overlongLines
            channel.deliver(batch)
        }
        channel.finish()
    }
}
