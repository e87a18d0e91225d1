/// Decides which of a burst of log messages to write: at most `limit` per `intervalSeconds`, then
/// one "suppressed K" line when the next interval opens.
///
/// Pure and deterministic: the caller passes the time, so tests need no clock.
public struct RateLimitedLog: Sendable {
    /// Messages allowed per interval.
    public let limit: Int
    /// Interval length in seconds.
    public let intervalSeconds: Double
    private var intervalStart = -Double.infinity
    private var written = 0
    private var suppressed = 0

    /// What to do with one message.
    public enum Decision: Sendable, Equatable {
        /// Write the message.
        case write
        /// Write `suppressed K earlier messages` first, then the message.
        case writeAfterSuppressed(Int)
        /// Drop the message (it is counted and reported later).
        case suppress
    }

    /// Creates a limiter allowing `limit` messages per `intervalSeconds`.
    public init(limit: Int = 10, intervalSeconds: Double = 10) {
        self.limit = max(limit, 0)
        self.intervalSeconds = max(intervalSeconds, 0)
    }

    /// Decides about one message at time `now` (seconds, any monotonic origin).
    public mutating func decide(now: Double) -> Decision {
        if now - intervalStart >= intervalSeconds {
            intervalStart = now
            written = 0
            let dropped = suppressed
            suppressed = 0
            if limit > 0 {
                written = 1
                return dropped > 0 ? .writeAfterSuppressed(dropped) : .write
            }
            suppressed = dropped
        }
        if written < limit {
            written += 1
            return .write
        }
        suppressed += 1
        return .suppress
    }

    /// Messages dropped in the current interval and not yet reported.
    public var pendingSuppressed: Int { suppressed }
}
