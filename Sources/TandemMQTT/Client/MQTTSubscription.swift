import Synchronization

/// The messages arriving on one subscription, as an `AsyncSequence`.
///
/// Messages are buffered between libmosquitto's network thread and the consumer, up to `capacity`.
/// When the buffer is full the ``OverflowPolicy`` decides which message is lost, and
/// ``droppedMessageCount`` counts each loss. For QoS 1/2 the broker has already been acknowledged by then,
/// so a consumer that must not lose anything gives the subscription a buffer that its processing keeps up
/// with, or uses `.dropNewest` and watches the counter.
public struct MQTTSubscription: AsyncSequence, Sendable {
    public typealias Element = MQTTMessage

    /// What happens to a message that arrives while the buffer is full.
    public enum OverflowPolicy: Sendable, Hashable {
        /// Discard the oldest buffered message to make room (the consumer sees the freshest data).
        case dropOldest
        /// Discard the arriving message (the consumer sees an uninterrupted prefix).
        case dropNewest
    }

    /// The filter this subscription was made with, `$share/…` prefix included.
    public let filter: String
    /// The QoS the broker granted.
    public let grantedQoS: MQTTQoS
    let stream: AsyncStream<MQTTMessage>
    let counter: SubscriptionCounter
    let identifier: UInt64
    weak var client: MQTTClient?

    /// Messages lost because the buffer was full.
    public var droppedMessageCount: Int { counter.dropped.load(ordering: .relaxed) }

    /// Ends this subscription: unsubscribes from the broker (unless another subscription of this client uses
    /// the same filter) and finishes the sequence.
    public func cancel() {
        client?.removeSubscription(identifier)
    }

    public func makeAsyncIterator() -> AsyncStream<MQTTMessage>.Iterator {
        stream.makeAsyncIterator()
    }
}

/// Counters shared between a subscription and the network thread.
final class SubscriptionCounter: Sendable {
    let dropped = Atomic<Int>(0)
}
