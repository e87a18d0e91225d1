/// A sustained rate with a burst: a token bucket of `burst` tokens refilled at `perSecond`.
public struct RateLimit: Sendable, Equatable, CustomStringConvertible {
    /// Tokens added per second: the rate allowed over the long run.
    public var perSecond: Double
    /// The bucket's size: how many may come at once after a quiet time.
    public var burst: Double

    /// Creates a limit; `perSecond` and `burst` must be positive and finite (``isValid``).
    public init(perSecond: Double, burst: Double) {
        self.perSecond = perSecond
        self.burst = burst
    }

    /// Whether both numbers are positive and finite.
    public var isValid: Bool { perSecond.isFinite && perSecond > 0 && burst.isFinite && burst >= 1 }

    /// `20/s, burst 6000`.
    public var description: String { "\(Self.number(perSecond))/s, burst \(Self.number(burst))" }

    private static func number(_ x: Double) -> String {
        x == x.rounded() && abs(x) < 1e15 ? String(Int(x)) : String(x)
    }
}

/// One token bucket per device, keyed by the fleet and device of the topic a message came on (never by what the
/// message says), and when to report refusals.
///
/// A pure value: time comes in as `now:` (seconds, any monotonic origin), so every decision can be tested without a
/// clock. Refusals are reported (for the log) at a device's first refusal, then at most once per `reportInterval`
/// with the number refused since the last report.
///
/// Memory stays bounded: when more than ``maximumTrackedDevices`` devices are tracked, the buckets that have refilled
/// completely (the same as a bucket never used) are dropped first; if that is not enough, the least recently used.
public struct DeviceRateLimits: Sendable {
    /// A device, as its topic names it.
    public struct Key: Hashable, Sendable {
        /// The fleet (second topic level).
        public var fleet: String
        /// The device (third topic level).
        public var device: String

        /// Creates a key.
        public init(fleet: String, device: String) {
            self.fleet = fleet
            self.device = device
        }
    }

    /// What to do with one message.
    public enum Decision: Sendable, Equatable {
        /// Within the limit.
        case allow
        /// Over the limit: refuse it. `report` is the number refused since the last report (this one included) when
        /// a log line is due now, else nil.
        case refuse(report: Int?)
    }

    struct Bucket: Sendable {
        var tokens: Double
        var updated: Double
        /// Refused since the last report.
        var unreported = 0
        /// When refusals were last reported; nil: never.
        var reportedAt: Double?
    }

    /// The limit each device gets.
    public let limit: RateLimit
    /// Seconds between two reports of one device's refusals.
    public let reportInterval: Double
    /// Devices tracked at most before buckets are dropped.
    public static let maximumTrackedDevices = 100_000
    private var buckets: [Key: Bucket] = [:]

    /// Limits of `limit` per device, reporting refusals at most every `reportInterval` seconds per device.
    public init(limit: RateLimit, reportInterval: Double = 60) {
        self.limit = limit
        self.reportInterval = reportInterval
    }

    /// Devices tracked now.
    public var trackedDevices: Int { buckets.count }

    /// Takes one token from `key`'s bucket if it has one.
    public mutating func take(_ key: Key, now: Double) -> Decision {
        var bucket = buckets[key] ?? Bucket(tokens: limit.burst, updated: now)
        // A clock that went backwards adds nothing; the bucket never holds more than the burst.
        let elapsed = max(0, now - bucket.updated)
        bucket.tokens = min(limit.burst, bucket.tokens + elapsed * limit.perSecond)
        bucket.updated = max(bucket.updated, now)
        let decision: Decision
        if bucket.tokens >= 1 {
            bucket.tokens -= 1
            decision = .allow
        } else {
            bucket.unreported += 1
            if let last = bucket.reportedAt, now - last < reportInterval {
                decision = .refuse(report: nil)
            } else {
                decision = .refuse(report: bucket.unreported)
                bucket.unreported = 0
                bucket.reportedAt = now
            }
        }
        if buckets[key] == nil && buckets.count >= Self.maximumTrackedDevices { prune(now: now) }
        buckets[key] = bucket
        return decision
    }

    /// Drops buckets that have refilled (nothing is lost: a new bucket starts full), then, if still too many, the
    /// half used least recently.
    private mutating func prune(now: Double) {
        buckets = buckets.filter { _, bucket in
            bucket.tokens + max(0, now - bucket.updated) * limit.perSecond < limit.burst || bucket.unreported > 0
        }
        guard buckets.count >= Self.maximumTrackedDevices else { return }
        let keep = buckets.sorted { $0.value.updated > $1.value.updated }.prefix(Self.maximumTrackedDevices / 2)
        buckets = Dictionary(uniqueKeysWithValues: keep.map { ($0.key, $0.value) })
    }
}
