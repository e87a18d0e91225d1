import CMosquitto
import Dispatch
import Synchronization

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// The libmosquitto handle.
///
/// `@unchecked Sendable`: libmosquitto guards each handle's state with its own mutexes once
/// `mosquitto_threaded_set` is on, so publish/subscribe/disconnect may be called from any thread while the
/// network thread runs `mosquitto_loop`. Configuration calls happen in `MQTTClient.init`, before any thread.
final class MosquittoHandle: @unchecked Sendable {
    let pointer: OpaquePointer

    init(_ pointer: OpaquePointer) {
        self.pointer = pointer
    }
}

/// Calls `mosquitto_lib_init` once per process.
enum LibraryInitialization {
    private static let initialized: Bool = {
        mosquitto_lib_init()
        return true
    }()

    static func ensure() {
        _ = initialized
    }
}

/// A wakeable sleep for the backoff between reconnect attempts.
final class Wakeup: Sendable {
    private let semaphore = DispatchSemaphore(value: 0)

    func wait(milliseconds: Int) {
        _ = semaphore.wait(timeout: .now() + .milliseconds(milliseconds))
    }

    func signal() {
        semaphore.signal()
    }
}

/// Who is told when a publish completes.
enum PublishCompletion: Sendable {
    case continuation(CheckedContinuation<MQTTPublishResult, any Error>)
    case handler(@Sendable (Result<MQTTPublishResult, MQTTError>) -> Void)
    case ignore

    func complete(_ result: Result<MQTTPublishResult, MQTTError>) {
        switch self {
        case .continuation(let continuation):
            continuation.resume(with: result.mapError { $0 as any Error })
        case .handler(let handler):
            handler(result)
        case .ignore:
            break
        }
    }
}

/// One local subscription: where its messages go.
struct SubscriptionEntry: Sendable {
    let filter: String
    let matchingPart: Substring
    let hasWildcards: Bool
    let qos: MQTTQoS
    let options: Int32
    let continuation: AsyncStream<MQTTMessage>.Continuation
    let counter: SubscriptionCounter
    /// Called on the network thread instead of buffering, when given.
    let receiver: (@Sendable (MQTTMessage) -> Void)?
    var acknowledged = false

    init(
        filter: String, qos: MQTTQoS, options: Int32, continuation: AsyncStream<MQTTMessage>.Continuation,
        counter: SubscriptionCounter, receiver: (@Sendable (MQTTMessage) -> Void)? = nil
    ) {
        self.receiver = receiver
        self.filter = filter
        matchingPart = MQTTTopicFilter.matchingPart(of: filter)
        hasWildcards = matchingPart.contains("+") || matchingPart.contains("#")
        self.qos = qos
        self.options = options
        self.continuation = continuation
        self.counter = counter
    }

    func matches(_ topic: String) -> Bool {
        hasWildcards ? MQTTTopicFilter.matches(filter: matchingPart, topic: topic) : matchingPart == topic
    }
}

/// Messages read on the network thread and not yet handed to their subscriptions' streams.
///
/// `@unchecked Sendable`: only the network thread touches it; libmosquitto calls `on_message` only from inside
/// `mosquitto_loop`, which only that thread runs.
final class PendingDeliveries: @unchecked Sendable {
    /// The most messages held back before they are delivered anyway.
    static let batchLimit = 64

    private var messages: [(MQTTMessage, SubscriptionEntry)] = []

    var isEmpty: Bool { messages.isEmpty }
    var count: Int { messages.count }

    func append(_ message: MQTTMessage, to subscription: SubscriptionEntry) {
        messages.append((message, subscription))
    }

    /// Yields every held message, in arrival order, counting those a full buffer drops.
    func deliver() {
        for (message, subscription) in messages {
            if case .dropped = subscription.continuation.yield(message) {
                subscription.counter.dropped.add(1, ordering: .relaxed)
            }
        }
        messages.removeAll(keepingCapacity: true)
    }
}
