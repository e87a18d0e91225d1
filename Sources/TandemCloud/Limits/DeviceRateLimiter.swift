import Synchronization

/// ``DeviceRateLimits`` behind a lock, on the monotonic clock: what the escalation server and the label intake call
/// from the MQTT network thread for each message, before anything else is done with it.
public final class DeviceRateLimiter: Sendable {
    private let limits: Mutex<DeviceRateLimits>
    private let origin = ContinuousClock.now

    /// A limiter giving each device `limit`, reporting a device's refusals at most every `reportInterval` seconds.
    public init(limit: RateLimit, reportInterval: Double = 60) {
        limits = Mutex(DeviceRateLimits(limit: limit, reportInterval: reportInterval))
    }

    /// The limit each device gets.
    public var limit: RateLimit { limits.withLock { $0.limit } }

    /// Takes one token from the bucket of `device` of `fleet` (as the message's topic names them).
    public func take(fleet: String, device: String) -> DeviceRateLimits.Decision {
        let elapsed = (ContinuousClock.now - origin).components
        let now = Double(elapsed.seconds) + Double(elapsed.attoseconds) * 1e-18
        return limits.withLock { $0.take(DeviceRateLimits.Key(fleet: fleet, device: device), now: now) }
    }
}
