import Foundation
import TandemCloud
import TandemFleet
import TandemFuzzTargets
import TandemMQTT
import TandemProtocol

extension FuzzTarget {
    /// A device's status message through everything in the cloud that reads statuses: the fleet view
    /// (``FleetMonitor/State``) and its `GET /v1/devices` body, the trainer's escalation history and drift trigger,
    /// and a canary rollout's observation, saved to its state file and read back as a restart would.
    ///
    /// Input: a byte of options (retained or live, which device's topic, whether the device reported before),
    /// then the status bytes. Checks: a valid status re-encodes to itself (when it fits the size limit); the
    /// fleet view, the history and the rollout take it without trapping; the devices body encodes; the rollout's
    /// state file reads back to the same rollout, which can observe again.
    static let status = FuzzTarget(
        name: "status",
        summary:
            "DeviceStatus(validating:) → fleet view, GET /v1/devices, drift history and trigger, rollout + state file"
    ) { bytes in
        var input = FuzzInput(bytes)
        let options = input.byte()
        let payload = Array(input.rest)
        let retain = options & 1 == 1
        let device = StatusFixture.devices[Int(options >> 1) % StatusFixture.devices.count]
        let reportedBefore = options & 0x40 != 0

        let status = try? DeviceStatus(validating: payload)
        if let status {
            let encoded = status.encoded()
            if encoded.count <= DeviceStatus.maximumBytes {
                let again = try? DeviceStatus(validating: encoded)
                FuzzCheck.require(again == status, "a valid status does not encode back to itself")
            }
        }

        // The fleet view, as FleetMonitor keeps it and `GET /v1/devices` shows it.
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        var fleet = FleetMonitor.State()
        if reportedBefore {
            fleet.take(StatusFixture.message(StatusFixture.earlier(device), device: device, retain: true), at: start)
        }
        fleet.take(
            MQTTMessage(topic: DeviceTopics(fleet: "plant", device: device).status, payload: payload, retain: retain),
            at: start + 30)
        fleet.take(StatusFixture.message(.lastWill(device: device), device: device, retain: false), at: start + 40)
        let devices = fleet.orderedDevices
        FuzzCheck.require(status == nil || devices.contains { $0.status.device == device }, "a valid status was lost")
        do {
            _ = try JSONBody.encoded(DeviceList(devices))
        } catch {
            FuzzCheck.require(false, "GET /v1/devices cannot encode the fleet: \(error)")
        }

        // The trainer's drift sampler: successive statuses into the history, then the trigger.
        var history = EscalationHistory(driftWindowSeconds: 60)
        let base = start.timeIntervalSince1970
        history.record(StatusFixture.earlier(device), at: base)
        for (offset, device) in devices.enumerated() {
            history.record(device.status, at: device.lastSeen.map { $0.timeIntervalSince1970 + Double(offset) })
        }
        history.record(StatusFixture.later(device), at: base + 200)
        var trigger = RetrainingTrigger()
        trigger.driftWindowSeconds = 60
        trigger.minimumDriftWindows = 1
        for scope in RetrainingTrigger.DriftScope.allCases {
            trigger.driftScope = scope
            _ = trigger.reasons(
                for: .init(
                    now: base + 230, newHardExamples: 0, newLabels: 0,
                    devices: history.devices(now: base + 230, minimumWindows: 1)))
        }

        // A canary rollout observing the fleet, saved and read back as after a restart.
        StatusFixture.observeRollout(fleet.statuses, device: device, start: start)
        return status == nil ? .refused : .accepted
    }
}

enum StatusFixture {
    static let devices = ["dev-1", "dev-2", "dev-3", "dev-4", "dev-5", "dev-6"]

    /// An honest status sent before the one under test.
    static func earlier(_ device: String) -> DeviceStatus {
        var status = DeviceStatus(device: device, modelVersion: "edge-2", windows: 1000, escalations: 40)
        status.inputErrors = ["vibration": ["nonNumeric": 3]]
        return status
    }

    /// An honest status sent after it.
    static func later(_ device: String) -> DeviceStatus {
        DeviceStatus(device: device, modelVersion: "edge-2", windows: 5000, escalations: 300)
    }

    static func message(_ status: DeviceStatus, device: String, retain: Bool) -> MQTTMessage {
        MQTTMessage(
            topic: DeviceTopics(fleet: "plant", device: device).status, payload: status.encoded(), retain: retain)
    }

    /// Plans and starts a canary of edge-2 over edge-1 across the fleet, observes honest statuses, then `statuses`,
    /// saves the rollout's state file and reads it back, and observes again with the rollout read back.
    static func observeRollout(_ statuses: [String: DeviceStatus], device: String, start: Date) {
        let policy = RolloutPolicy(canaryPercent: 50, soakSeconds: 10, minimumCanaryWindows: 10)
        var rollout: Rollout
        do {
            rollout = try Rollout.plan(
                fleet: "plant", version: "edge-2", previousVersion: "edge-1", devices: devices, policy: policy,
                now: start)
            _ = try rollout.start(now: start)
        } catch {
            FuzzCheck.require(false, "the fixture's rollout cannot start: \(error)")
            return
        }
        var honest = [String: DeviceStatus]()
        for id in devices {
            var status = earlier(id)
            status.modelVersion = rollout.cohort.contains(id) ? "edge-2" : "edge-1"
            honest[id] = status
        }
        _ = rollout.observe(honest, now: start + 5)
        var fuzzed = honest
        fuzzed.merge(statuses) { _, new in new }
        _ = rollout.observe(fuzzed, now: start + 20)
        let contents: [UInt8]
        do {
            contents = try rollout.stateFileContents()
        } catch {
            FuzzCheck.require(false, "the rollout cannot be saved: \(error)")
            return
        }
        guard var restored = try? Rollout(stateFile: contents) else {
            FuzzCheck.require(false, "the rollout's state file does not read back")
            return
        }
        FuzzCheck.require(restored == rollout, "the rollout read back differs from the one saved")
        _ = restored.observe(fuzzed, now: start + 40)
    }
}
