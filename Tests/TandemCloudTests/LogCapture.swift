import Logging
import Synchronization

/// Log lines written as `tandem-cloud` writes them to standard error (swift-log's `StreamLogHandler`), kept in
/// memory for a test to read.
final class LogCapture: TextOutputStream, Sendable {
    private let text = Mutex("")

    /// Everything logged so far.
    var contents: String { text.withLock { $0 } }

    func write(_ string: String) { text.withLock { $0 += string } }

    /// A logger writing here, labelled as the executable's.
    func logger(label: String = "tandem-cloud") -> Logger {
        Logger(label: label) { StreamLogHandler(label: $0, stream: self, metadataProvider: nil) }
    }
}
