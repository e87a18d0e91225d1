import Foundation
import Synchronization

/// Each device's recent escalation rates, for the fleet page's sparklines.
///
/// A sample is taken whenever the fleet is looked at (the page, its live updates, a `/metrics` scrape), at most
/// one per device every ``intervalSeconds``; the last ``capacity`` are kept. Devices gone from the fleet view are
/// dropped, so the memory is bounded by the fleet view's own (``capacity`` doubles a device).
public final class FleetHistory: Sendable {
    /// Samples kept per device.
    public let capacity: Int
    /// The shortest time between two samples of a device, in seconds.
    public let intervalSeconds: Double
    private let state = Mutex<[String: Series]>([:])

    struct Series {
        var rates: [Double] = []
        var lastAt: Double = -.infinity
    }

    /// Creates an empty history; 30 samples 10 s apart (five minutes) by default.
    public init(capacity: Int = 30, intervalSeconds: Double = 10) {
        self.capacity = max(2, capacity)
        self.intervalSeconds = intervalSeconds.isFinite ? max(0, intervalSeconds) : 10
    }

    /// Takes a sample of every device's reported escalation rate at `now` (seconds since 1970) and returns each
    /// device's series, oldest first, keyed `fleet/device`. A rate that is missing or not within 0…1 is not kept.
    public func sample(_ devices: [(key: String, rate: Double?)], now: Double) -> [String: [Double]] {
        state.withLock { series in
            var seen = Set<String>()
            for (key, rate) in devices {
                seen.insert(key)
                guard let rate, rate.isFinite, (0...1).contains(rate) else { continue }
                var s = series[key] ?? Series()
                guard now - s.lastAt >= intervalSeconds else { continue }
                s.rates.append(rate)
                if s.rates.count > capacity { s.rates.removeFirst(s.rates.count - capacity) }
                s.lastAt = now
                series[key] = s
            }
            for key in series.keys where !seen.contains(key) { series[key] = nil }
            return series.mapValues(\.rates)
        }
    }
}
