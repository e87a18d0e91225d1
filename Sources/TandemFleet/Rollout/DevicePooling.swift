/// Pools per-device counts into one fleet figure so that no device can speak for the fleet: each device weighs at
/// most as much as the lower-median device (one with more windows than it is scaled down to it, one with fewer
/// counts in full).
///
/// A device is hostile until proven otherwise, and what it sends within its rate limit — audits, labels for its own
/// escalations — can far outnumber what honest devices send. Pooled this way, one device among `n` moves a pooled
/// ratio by at most its share as a median device (about 2/n), however many windows it sends; summed instead, it
/// would set the ratio alone.
public struct DevicePooling: Sendable {
    /// The lower-median device's count (at least 1): no device weighs more than this many windows.
    public let cap: Int

    /// The pooling of devices with these counts (each device's number of windows).
    public init(counts: some Collection<Int>) {
        let sorted = counts.sorted()
        cap = sorted.isEmpty ? 1 : max(1, sorted[(sorted.count - 1) / 2])
    }

    /// How much each of a device's `count` windows weighs: 1 up to the cap, less beyond it.
    public func weight(count: Int) -> Double {
        count > 0 ? min(1, Double(cap) / Double(count)) : 1
    }

    /// `a + b` with `b` taken as at least 0, saturating at `Int.max` instead of overflowing.
    public static func sum(_ a: Int, _ b: Int) -> Int {
        let (s, overflow) = a.addingReportingOverflow(max(b, 0))
        return overflow ? .max : s
    }

    /// The share `part / whole` of `count`, rounded, never more than `count` (0 when `whole` is not positive).
    public static func portion(_ part: Double, of whole: Double, _ count: Int) -> Int {
        guard whole > 0 else { return 0 }
        let value = (Double(count) * min(part / whole, 1)).rounded()
        return value >= Double(count) ? count : Int(value)
    }
}

extension AccuracyComparison.Tally {
    /// The tally of a cohort from its devices' tallies, pooled by ``DevicePooling``: each device's labelled windows
    /// count up to the lower-median device's number, and its right ones in proportion. The comparison's minimum is
    /// checked against these pooled windows, so a device labelling hundreds of its own escalations moves the
    /// accuracy by about its share of the devices with labels — all of it only when it is the only one — and a second
    /// device's single label beside thirty of the first leaves two pooled windows, too few to decide on, rather than
    /// an accuracy halved by one label.
    public static func pooled(_ devices: some Collection<Self>) -> Self {
        let pooling = DevicePooling(counts: devices.map(\.labelled))
        var labelled = 0
        var weighted = 0.0, correct = 0.0
        for device in devices {
            let weight = pooling.weight(count: device.labelled)
            labelled = DevicePooling.sum(labelled, min(device.labelled, pooling.cap))
            weighted += weight * Double(max(device.labelled, 0))
            correct += weight * Double(min(max(device.correct, 0), max(device.labelled, 0)))
        }
        return Self(correct: DevicePooling.portion(correct, of: weighted, labelled), labelled: labelled)
    }
}
