import TandemCloud
import Testing

/// The per-device token buckets as pure code: time comes in as `now:`.
struct DeviceRateLimitsTests {
    let a = DeviceRateLimits.Key(fleet: "f", device: "a")

    @Test("a device gets its burst at once, then its rate; the first refusal is reported at once")
    func burstThenRate() {
        var limits = DeviceRateLimits(limit: RateLimit(perSecond: 2, burst: 5), reportInterval: 60)
        let first = (0..<8).map { _ in limits.take(a, now: 100) }
        #expect(first.prefix(5).allSatisfy { $0 == .allow })
        #expect(first[5] == .refuse(report: 1), "the first refusal is reported at once")
        #expect(first[6] == .refuse(report: nil) && first[7] == .refuse(report: nil))
        // Half a second refills one token at 2 a second.
        #expect(limits.take(a, now: 100.5) == .allow)
        #expect(limits.take(a, now: 100.5) == .refuse(report: nil))
        // Over 10 s it takes 20 and no more, however many are offered.
        var allowed = 0
        for step in 1...1000 where limits.take(a, now: 100.5 + Double(step) * 0.01) == .allow { allowed += 1 }
        #expect(allowed == 20)
    }

    @Test("refusals are reported at most once per interval per device, with the count since the last report")
    func reportsOncePerInterval() {
        var limits = DeviceRateLimits(limit: RateLimit(perSecond: 0.001, burst: 1), reportInterval: 60)
        #expect(limits.take(a, now: 0) == .allow)
        var reports = [Int]()
        for second in 0..<150 {
            for _ in 0..<4 {
                if case .refuse(let report?) = limits.take(a, now: Double(second)) { reports.append(report) }
            }
        }
        // At 0 s (the first one), then at 60 s and at 120 s: the 240 refused since the last report, each included.
        #expect(reports == [1, 240, 240])
    }

    @Test("each fleet and device has its own bucket; a clock going backwards refills nothing")
    func separateBucketsAndBackwardsClock() {
        var limits = DeviceRateLimits(limit: RateLimit(perSecond: 1, burst: 2))
        let sameNameOtherFleet = DeviceRateLimits.Key(fleet: "g", device: "a")
        let b = DeviceRateLimits.Key(fleet: "f", device: "b")
        #expect(limits.take(a, now: 10) == .allow && limits.take(a, now: 10) == .allow)
        #expect(limits.take(a, now: 10) == .refuse(report: 1))
        #expect(limits.take(b, now: 10) == .allow, "another device's bucket is full")
        #expect(limits.take(sameNameOtherFleet, now: 10) == .allow, "the same device name in another fleet too")
        #expect(limits.take(a, now: 5) == .refuse(report: nil), "going back in time adds no tokens")
        #expect(limits.take(a, now: 10.5) == .refuse(report: nil))
        #expect(limits.take(a, now: 11) == .allow)
        #expect(limits.trackedDevices == 3)
    }

    @Test("the devices tracked stay bounded: refilled buckets are dropped first")
    func boundedMemory() {
        var limits = DeviceRateLimits(limit: RateLimit(perSecond: 1, burst: 1))
        let count = DeviceRateLimits.maximumTrackedDevices + 10
        for i in 0..<count {
            _ = limits.take(DeviceRateLimits.Key(fleet: "f", device: "d\(i)"), now: Double(i) * 0.001)
        }
        #expect(limits.trackedDevices <= DeviceRateLimits.maximumTrackedDevices)
        // The newest device is still limited: its bucket survived the pruning.
        #expect(
            limits.take(DeviceRateLimits.Key(fleet: "f", device: "d\(count - 1)"), now: Double(count) * 0.001) != .allow
        )
    }

    @Test("a limit needs a positive, finite rate and a burst of at least one")
    func validity() {
        #expect(RateLimit(perSecond: 20, burst: 6000).isValid)
        #expect(!RateLimit(perSecond: 0, burst: 10).isValid)
        #expect(!RateLimit(perSecond: .infinity, burst: 10).isValid)
        #expect(!RateLimit(perSecond: 1, burst: 0.5).isValid)
        #expect(!RateLimit(perSecond: .nan, burst: 1).isValid)
    }
}
