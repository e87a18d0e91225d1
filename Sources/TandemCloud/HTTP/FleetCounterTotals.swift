import Synchronization
import TandemFleet
import TandemProtocol

/// Fleet-wide window and escalation counters made from the devices' own, which start again at 0 when an agent
/// restarts: what each device's counters grew by since the last look, summed.
///
/// A device seen for the first time sets its starting point and adds nothing (its earlier windows were counted
/// before this worker was watching, or never); a counter that went down means the agent restarted, and its new
/// value is what it grew by. Counters outside 0…``DeviceStatus/maximumCount`` are ignored.
final class FleetCounterTotals: Sendable {
    private struct Key: Hashable {
        var fleet: String
        var device: String
    }
    private let last = Mutex([Key: (windows: Int, escalations: Int)]())

    /// What the fleet's counters grew by since the previous call.
    func growth(of devices: [FleetMonitor.Device]) -> (windows: Int, escalations: Int) {
        last.withLock { last in
            var windows = 0
            var escalations = 0
            let range = 0...DeviceStatus.maximumCount
            for device in devices {
                guard let w = device.status.windows, let e = device.status.escalations, range.contains(w),
                    range.contains(e)
                else { continue }
                let key = Key(fleet: device.fleet, device: device.status.device)
                if let previous = last[key] {
                    windows += w >= previous.windows ? w - previous.windows : w
                    escalations += e >= previous.escalations ? e - previous.escalations : e
                }
                last[key] = (w, e)
            }
            return (windows, escalations)
        }
    }
}
