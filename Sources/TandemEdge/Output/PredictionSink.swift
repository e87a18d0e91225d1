import Synchronization

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

/// Where prediction records go. Writes may be buffered; ``flush()`` pushes them out.
public protocol PredictionSink: Sendable {
    /// Accepts one record.
    func write(_ record: PredictionRecord)
    /// Writes out everything buffered.
    ///
    /// - Throws: ``SinkError`` if the output cannot be written.
    func flush() throws(SinkError)
    /// How often the agent should call ``flush()``, in seconds.
    var flushIntervalSeconds: Double { get }
}

/// A sink could not be opened or written.
public struct SinkError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The kind of failure.
    public enum Code: String, Sendable {
        /// Opening or writing failed.
        case io
        /// The sink kind is not available in this build.
        case unsupported
    }

    /// The kind of failure.
    public var code: Code
    /// What failed, naming the sink.
    public var message: String

    /// Creates an error.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// `code: message`.
    public var description: String { "\(code.rawValue): \(message)" }
}

/// JSON lines to standard output or a file, buffered: written when the buffer passes 64 KiB, on
/// every ``flush()``, and at shutdown.
public final class JSONLinesSink: PredictionSink {
    /// `stdout` or `file <path>`.
    public let description: String
    /// How often the agent flushes this sink, in seconds.
    public let flushIntervalSeconds: Double
    private let fileDescriptor: Int32
    private let ownsDescriptor: Bool
    private let bufferLimit = 64 * 1024
    // The buffer is only touched under this lock; the descriptor is written only with the lock held,
    // so lines from several streams never interleave.
    private let buffer = Mutex<[UInt8]>([])

    /// A sink writing to standard output.
    public static func standardOutput(flushIntervalSeconds: Double = 1) -> JSONLinesSink {
        JSONLinesSink(fileDescriptor: 1, owns: false, description: "stdout", flushIntervalSeconds: flushIntervalSeconds)
    }

    /// A sink appending to the file at `path` (created with mode 0644 if missing).
    ///
    /// - Throws: ``SinkError`` naming the path if it cannot be opened.
    public static func file(path: String, flushIntervalSeconds: Double = 1) throws(SinkError) -> JSONLinesSink {
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw SinkError(.io, "file \(path): \(String(cString: strerror(errno)))") }
        return JSONLinesSink(
            fileDescriptor: fd, owns: true, description: "file \(path)", flushIntervalSeconds: flushIntervalSeconds)
    }

    private init(fileDescriptor: Int32, owns: Bool, description: String, flushIntervalSeconds: Double) {
        self.fileDescriptor = fileDescriptor
        ownsDescriptor = owns
        self.description = description
        self.flushIntervalSeconds = flushIntervalSeconds
        buffer.withLock { $0.reserveCapacity(bufferLimit + 1024) }
    }

    deinit {
        try? flush()
        if ownsDescriptor { close(fileDescriptor) }
    }

    /// Buffers one record, writing the buffer out once it passes 64 KiB.
    public func write(_ record: PredictionRecord) {
        buffer.withLock { bytes in
            record.appendJSONLine(to: &bytes)
            if bytes.count >= bufferLimit { _ = try? writeOut(&bytes) }
        }
    }

    /// Writes out everything buffered.
    public func flush() throws(SinkError) {
        try buffer.withLock { (bytes: inout [UInt8]) throws(SinkError) in try writeOut(&bytes) }
    }

    private func writeOut(_ bytes: inout [UInt8]) throws(SinkError) {
        var written = 0
        var failure: Int32 = 0
        bytes.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return }
            while written < raw.count {
                let n = systemWrite(fileDescriptor, base + written, raw.count - written)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = errno
                    return
                }
                written += n
            }
        }
        bytes.removeAll(keepingCapacity: true)
        if failure != 0 { throw SinkError(.io, "\(description): \(String(cString: strerror(failure)))") }
    }
}

/// `write(2)`, named apart from the sink's own `write(_:)`.
private func systemWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
    write(fd, buffer, count)
}
