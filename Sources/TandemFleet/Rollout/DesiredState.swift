import Foundation
import TandemProtocol

/// The version every device of a fleet should run, and which devices to (re-)assign it to now.
///
/// A device's desired version is, in this order: its pin (``DevicePins``); the candidate, while a rollout is in
/// canary and the device is in its cohort; the previous version, while a rollout is in canary and the device is
/// outside the cohort; else the fleet's production version. A device whose status shows another version — new,
/// reprovisioned, restored from a backup, or one that missed a rollout — is due an assignment.
///
/// Assignments are retained, so one per device is enough while the device follows it; re-sending is for a
/// device that lost it (a cleared retained message, a broker restored without its store). ``due(_:now:)`` is
/// therefore rate-limited per device: it names a device at most once per ``minimumIntervalSeconds`` for the
/// same version while its status still shows another one, and each further time for the same version waits twice
/// as long as the one before (up to ``maximumIntervalSeconds``), so a device that cannot take the version (it
/// refuses it, is slow to download it, or claims another version on purpose) is not sent a storm of signed
/// assignments and audit records. The backoff ends when the device's status shows the version. Devices whose last status is
/// `offline` are left until they come back (their retained assignment waits on the broker for them anyway), and
/// so is a device already downloading or verifying the version.
///
/// A pure value: statuses and time come in, nothing touches the network, the clock or the disk.
public struct DesiredState: Sendable {
    /// The fleet's production version, if one was set.
    public var production: String?
    /// The fleet's rollout, if any (it counts only while in canary).
    public var rollout: Rollout?
    /// Pinned devices and their versions.
    public var pins: [String: String]
    /// The shortest time between two assignments of the same version to a device whose status has not moved
    /// to it, in seconds.
    public var minimumIntervalSeconds: Double
    /// The longest wait between two assignments of the same version to a device, in seconds: one hour (or the
    /// minimum interval, if that is longer).
    public static let maximumIntervalSeconds = 3600.0
    private var lastSent: [String: (version: String, at: Date, count: Int)] = [:]

    /// A desired state with nothing in production yet.
    ///
    /// - Parameter minimumIntervalSeconds: Clamped to 1…86,400 (a non-finite value counts as the default 30).
    public init(
        production: String? = nil, rollout: Rollout? = nil, pins: [String: String] = [:],
        minimumIntervalSeconds: Double = 30
    ) {
        self.production = production
        self.rollout = rollout
        self.pins = pins
        self.minimumIntervalSeconds =
            minimumIntervalSeconds.isFinite ? min(max(minimumIntervalSeconds, 1), 86_400) : 30
    }

    /// The version `device` should run, or nil if there is none (no production version and no pin).
    public func version(for device: String) -> String? {
        if let pinned = pins[device] { return pinned }
        if let rollout, rollout.phase == .canary {
            return rollout.cohort.contains(device) ? rollout.version : rollout.previousVersion
        }
        return production
    }

    /// The devices due an assignment now, grouped by the version to assign (devices sorted), and marks them sent
    /// at `now`.
    ///
    /// - Parameter statuses: The fleet's latest statuses, by device (``FleetMonitor/statuses``).
    public mutating func due(_ statuses: [String: DeviceStatus], now: Date) -> [String: [String]] {
        var due: [String: [String]] = [:]
        for (device, status) in statuses where status.state != .offline {
            guard let wanted = version(for: device) else { continue }
            guard status.modelVersion != wanted else {
                lastSent[device] = nil
                continue
            }
            switch status.modelUpdate {
            case .downloading(wanted), .verifying(wanted): continue
            default: break
            }
            if let last = lastSent[device], last.version == wanted,
                now.timeIntervalSince(last.at) < interval(afterSending: last.count)
            {
                continue
            }
            due[wanted, default: []].append(device)
        }
        for (version, devices) in due {
            due[version] = devices.sorted()
            noteSent(version, to: devices, at: now)
        }
        return due
    }

    /// Records that `version` was assigned to `devices` at `now` (by a rollout, a pin or an operator), so
    /// ``due(_:now:)`` does not send it again before the interval has passed.
    public mutating func noteSent(_ version: String, to devices: some Sequence<String>, at now: Date) {
        for device in devices {
            let count = lastSent[device].map { $0.version == version ? $0.count + 1 : 1 } ?? 1
            lastSent[device] = (version, now, count)
        }
    }

    /// The wait after the `count`-th assignment of one version to a device that has not taken it.
    func interval(afterSending count: Int) -> Double {
        min(
            minimumIntervalSeconds * Double(1 << min(max(count - 1, 0), 20)),
            max(Self.maximumIntervalSeconds, minimumIntervalSeconds))
    }
}
