/// Remembers recently seen message ids so a receiver can drop redeliveries.
///
/// QoS 1 and the ``DurableOutbox`` deliver at least once: after a reconnect or a publisher restart a
/// message may arrive twice. Key the deduplicator on an id carried in the message (an escalation id, a
/// sequence number) and process a message only when ``isFirstSighting(_:)`` says so. It remembers the last
/// `capacity` ids and forgets the oldest first, so memory stays bounded.
public struct MessageDeduplicator<ID: Hashable & Sendable>: Sendable {
    /// How many ids it remembers.
    public let capacity: Int
    private var seen: Set<ID> = []
    private var order: [ID] = []
    private var oldest = 0

    /// Creates a deduplicator remembering up to `capacity` ids.
    public init(capacity: Int = 100_000) {
        self.capacity = max(1, capacity)
    }

    /// Records `id` and returns whether it was new (process the message) or a duplicate (drop it).
    public mutating func isFirstSighting(_ id: ID) -> Bool {
        guard seen.insert(id).inserted else { return false }
        if order.count < capacity {
            order.append(id)
        } else {
            seen.remove(order[oldest])
            order[oldest] = id
            oldest = (oldest + 1) % capacity
        }
        return true
    }

    /// The number of ids remembered now.
    public var count: Int { seen.count }
}
