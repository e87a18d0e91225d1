#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A detached operating-system thread running one closure: the network loop, the outbox's sync loop,
/// the edge agent's blocking readers.
///
/// Foundation's `Thread` is not part of FoundationEssentials, which is all the edge agent links.
public enum BackgroundThread {
    private final class Body {
        let run: @Sendable () -> Void
        init(run: @escaping @Sendable () -> Void) { self.run = run }
    }

    /// Starts `body` on a new detached thread; `name` says which in the error if it cannot start.
    ///
    /// - Important: Thread creation failing means the process is out of resources; that is fatal.
    public static func start(name: String, _ body: @escaping @Sendable () -> Void) {
        let context = Unmanaged.passRetained(Body(run: body)).toOpaque()
        var thread = pthread_t()
        let status = pthread_create(
            &thread, nil,
            { raw in
                guard let raw else { return nil }
                let body = Unmanaged<Body>.fromOpaque(raw).takeRetainedValue()
                body.run()
                return nil
            }, context)
        guard status == 0 else {
            Unmanaged<Body>.fromOpaque(context).release()
            preconditionFailure("cannot start thread \(name): error \(status)")
        }
        pthread_detach(thread)
    }
}

#if canImport(Glibc)
    private let systemWrite = Glibc.write
#else
    private let systemWrite = Darwin.write
#endif

/// Writes to standard error without buffering (log lines, warnings), as `FileHandle.standardError` did.
public enum StandardError {
    /// Writes `text` as is; a line should end in `\n`.
    public static func write(_ text: String) {
        var text = text
        text.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = systemWrite(2, bytes.baseAddress! + offset, bytes.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return
                }
                offset += written
            }
        }
    }
}
