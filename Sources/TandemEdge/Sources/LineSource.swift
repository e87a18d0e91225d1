import Dispatch
import Synchronization

/// Where a stream's lines come from: stdin, a followed file, UDP datagrams, or (with TandemMQTT) a
/// topic on a local broker.
///
/// A source reads on a thread of its own (blocking reads stay off the cooperative pool) and hands
/// over ``LineBatch``es through ``batches()``. It has at most eight batches in flight: when
/// the consumer falls behind, the reader waits rather than buffering without bound.
/// ``stop()`` ends it gracefully: what was read is delivered, then the sequence finishes.
public protocol LineSource: AnyObject, Sendable {
    /// What the source reads, for messages (`stdin`, `file /var/log/x.csv`, `udp 0.0.0.0:9000`).
    var description: String { get }
    /// The batches this source reads; call once.
    func batches() -> LineBatches
    /// Asks the source to finish: it delivers what it has read and ends its sequence.
    func stop()
}

/// A source could not be opened or read.
public struct SourceError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The kind of failure.
    public enum Code: String, Sendable {
        /// A socket or file could not be opened, bound or read.
        case io
        /// A parameter (port, path) is unusable.
        case invalidParameter
    }

    /// The kind of failure.
    public var code: Code
    /// What failed, naming the source.
    public var message: String

    /// Creates an error.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// `code: message`.
    public var description: String { "\(code.rawValue): \(message)" }
}

/// How many batches a source may have read ahead of its consumer: enough to ride out a slow window, few
/// enough that read-ahead stays a few hundred KiB.
let pendingBatches = 4

/// The plumbing every source shares: a stop flag and a bounded hand-over to the consumer.
final class SourceChannel: Sendable {
    /// Set once by `stop()` or when the consumer goes away; read by the reader thread.
    let stopRequested = Atomic<Bool>(false)
    // Counts free hand-over slots; DispatchSemaphore is thread-safe.
    let slots: DispatchSemaphore
    let continuation: AsyncThrowingStream<LineBatch, any Error>.Continuation
    let stream: AsyncThrowingStream<LineBatch, any Error>

    init(pendingBatches: Int = pendingBatches) {
        slots = DispatchSemaphore(value: pendingBatches)
        (stream, continuation) = AsyncThrowingStream.makeStream(of: LineBatch.self)
        continuation.onTermination = { [weak self] _ in self?.stop() }
    }

    var isStopping: Bool { stopRequested.load(ordering: .relaxed) }

    func stop() { stopRequested.store(true, ordering: .relaxed) }

    /// Hands a batch over, waiting for a free slot; a stop ends the wait (the batch is still delivered,
    /// since the consumer drains after a stop).
    func deliver(_ batch: LineBatch) {
        guard !batch.isEmpty else { return }
        while slots.wait(timeout: .now() + .milliseconds(100)) == .timedOut {
            if isStopping { break }
        }
        continuation.yield(batch)
    }

    /// Called by the consumer after processing a batch.
    func consumed() { slots.signal() }

    func finish(throwing error: (any Error)? = nil) { continuation.finish(throwing: error) }

}

/// The batches of one ``LineSource``; taking a batch frees the source to read the next.
public struct LineBatches: AsyncSequence, Sendable {
    /// The element: a batch of lines.
    public typealias Element = LineBatch
    let channel: SourceChannel

    /// Makes the iterator; iterate once.
    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(upstream: channel.stream.makeAsyncIterator(), channel: channel)
    }

    /// Iterates a source's batches.
    public struct AsyncIterator: AsyncIteratorProtocol {
        var upstream: AsyncThrowingStream<LineBatch, any Error>.AsyncIterator
        let channel: SourceChannel

        /// The next batch, or nil once the source finished.
        public mutating func next() async throws -> LineBatch? {
            let batch = try await upstream.next()
            if batch != nil { channel.consumed() }
            return batch
        }
    }
}
