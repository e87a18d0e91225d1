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

/// Everything the client's lock protects.
struct ClientState: Sendable {
    var connection: MQTTConnectionState = .idle
    var started = false
    var threadLaunched = false
    var threadExited = false
    var stopRequested = false
    var firstConnectionIsStrict = false
    var everConnected = false
    var lastRefusal: MQTTError?
    var connectWaiters: [CheckedContinuation<Void, any Error>] = []
    var exitWaiters: [CheckedContinuation<Void, Never>] = []
    var publishWaiters: [Int32: PublishCompletion] = [:]
    var earlyPublishResults: [Int32: Int32] = [:]
    /// Publishes with a completion that are between `mosquitto_publish_v5` and registering their waiter.
    var registeringPublishes = 0
    /// Set once, when the client closes.
    var isClosed = false
    var subscribeWaiters: [Int32: CheckedContinuation<[Int32], any Error>] = [:]
    var earlySubscribeResults: [Int32: [Int32]] = [:]
    var subscriptions: [UInt64: SubscriptionEntry] = [:] {
        didSet { routing = Array(subscriptions.values) }
    }
    /// `subscriptions.values`, kept as an array so routing a message copies a reference, not a dictionary.
    private(set) var routing: [SubscriptionEntry] = []
    var nextSubscriptionID: UInt64 = 0
    /// Gets messages no subscription of this process matches (a persistent session's backlog, delivered
    /// right after reconnecting, before the subscriptions are renewed).
    var sessionReceiver: (@Sendable (MQTTMessage) -> Void)?
    var stateObservers: [UInt64: AsyncStream<MQTTConnectionState>.Continuation] = [:]
    var nextObserverID: UInt64 = 0

    /// What is left to fail or finish when the client closes.
    struct Drained {
        var connectWaiters: [CheckedContinuation<Void, any Error>]
        var publishCompletions: [PublishCompletion]
        var subscribeWaiters: [CheckedContinuation<[Int32], any Error>]
        var subscriptions: [SubscriptionEntry]
        var stateObservers: [AsyncStream<MQTTConnectionState>.Continuation]
        var exitWaiters: [CheckedContinuation<Void, Never>]
    }

    /// Ends one registration; with none left, unclaimed early results belong to nobody.
    mutating func finishRegistration() {
        registeringPublishes -= 1
        if registeringPublishes == 0 && !earlyPublishResults.isEmpty {
            earlyPublishResults.removeAll(keepingCapacity: true)
        }
    }

    mutating func drain() -> Drained {
        defer {
            connectWaiters = []
            publishWaiters = [:]
            earlyPublishResults = [:]
            subscribeWaiters = [:]
            subscriptions = [:]
            stateObservers = [:]
            exitWaiters = []
        }
        return Drained(
            connectWaiters: connectWaiters, publishCompletions: Array(publishWaiters.values),
            subscribeWaiters: Array(subscribeWaiters.values), subscriptions: Array(subscriptions.values),
            stateObservers: Array(stateObservers.values), exitWaiters: exitWaiters)
    }
}
