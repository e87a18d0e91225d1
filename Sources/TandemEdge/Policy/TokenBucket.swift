/// A token bucket: on average `ratePerSecond` takes succeed, with bursts of up to `capacity`.
///
/// Pure: the caller passes the time in seconds (any monotonic origin).
public struct TokenBucket: Sendable {
    /// Tokens added per second.
    public let ratePerSecond: Double
    /// The most tokens the bucket holds.
    public let capacity: Double
    private var tokens: Double
    private var lastRefill: Double?

    /// Creates a full bucket.
    ///
    /// - Parameters:
    ///   - ratePerSecond: Refill rate; infinite means no limit.
    ///   - capacity: Burst size; defaults to one second's worth (at least 1).
    public init(ratePerSecond: Double, capacity: Double? = nil) {
        self.ratePerSecond = max(ratePerSecond, 0)
        self.capacity = max(capacity ?? max(ratePerSecond, 1), 1)
        tokens = self.capacity
    }

    /// Takes one token at time `now` if one is available.
    public mutating func take(now: Double) -> Bool {
        if ratePerSecond.isInfinite { return true }
        if let last = lastRefill {
            if now > last {
                tokens = min(capacity, tokens + (now - last) * ratePerSecond)
                lastRefill = now
            }
        } else {
            lastRefill = now
        }
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }
}
