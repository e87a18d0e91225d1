import Foundation
import TandemFleet
import TandemProtocol
import Testing

/// Numbers a device reports reach a rollout through its statuses and the state file saved from them: neither can
/// make a step trap, and a state file holding absurd numbers still loads and resumes.
struct RolloutArithmeticTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    let devices = (0..<20).map { "box-\($0)" }

    func started() throws -> Rollout {
        var rollout = try Rollout.plan(
            fleet: "plant", version: "v2", previousVersion: "v1", devices: devices,
            policy: RolloutPolicy(canaryPercent: 30, soakSeconds: 600, minimumCanaryWindows: 100), now: t0)
        _ = try rollout.start(now: t0)
        return rollout
    }

    /// The cohort on v2 and the others on v1, with these counters (the others' escalations `baselineEscalations`
    /// if given).
    func statuses(_ rollout: Rollout, windows: Int, escalations: Int, baselineEscalations: Int? = nil)
        -> [String: DeviceStatus]
    {
        var out = [String: DeviceStatus]()
        for device in rollout.cohort {
            out[device] = DeviceStatus(device: device, modelVersion: "v2", windows: windows, escalations: escalations)
        }
        for device in rollout.others {
            out[device] = DeviceStatus(
                device: device, modelVersion: "v1", windows: windows, escalations: baselineEscalations ?? escalations)
        }
        return out
    }

    @Test("statuses at the largest counts validation allows are observed exactly; larger or negative ones are left out")
    func extremeStatuses() throws {
        var rollout = try started()
        let top = DeviceStatus.maximumCount
        _ = rollout.observe(statuses(rollout, windows: 0, escalations: 0), now: t0.addingTimeInterval(1))
        let actions = rollout.observe(
            statuses(rollout, windows: top, escalations: top, baselineEscalations: 0), now: t0.addingTimeInterval(2))
        #expect(actions.first?.kind == .rollBack, "every window escalated on the candidate: \(actions)")
        #expect(rollout.lastObservation?.canaryWindows == top * rollout.cohort.count)

        var other = try started()
        _ = other.observe(statuses(other, windows: 10, escalations: 1), now: t0.addingTimeInterval(1))
        for (windows, escalations) in [(Int.max, Int.max), (Int.min, 0), (-1, -1), (top + 1, 0)] {
            #expect(other.observe(statuses(other, windows: windows, escalations: escalations), now: t0) == [])
            #expect(other.lastObservation?.canaryWindows == 0, "\(windows), \(escalations) were left out")
        }
    }

    @Test(
        "a state file with absurd references, times and soak loads, drops the references and observes without trapping")
    func absurdStateFile() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rollout-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var rollout = try started()
        _ = rollout.observe(statuses(rollout, windows: 10, escalations: 1), now: t0.addingTimeInterval(1))
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .secondsSince1970
        var json = try #require(
            try JSONSerialization.jsonObject(with: encoder.encode(rollout)) as? [String: Any])
        var references = [String: Any]()
        for (k, device) in devices.enumerated() {
            references[device] =
                k.isMultiple(of: 2)
                ? ["windows": Int.min + 1, "escalations": Int.max] : ["windows": Int.max, "escalations": -5]
        }
        json["references"] = references
        json["canaryStartedAt"] = 1e300
        var policy = try #require(json["policy"] as? [String: Any])
        policy["soakSeconds"] = 1e300
        json["policy"] = policy
        let url = directory.appendingPathComponent("rollout-plant.json")
        try JSONSerialization.data(withJSONObject: json).write(to: url)

        var loaded = try Rollout.read(from: url)
        #expect(loaded.references.isEmpty, "every implausible reference is dropped")
        #expect(loaded.observe(statuses(loaded, windows: 50, escalations: 5), now: t0.addingTimeInterval(5)) == [])
        #expect(loaded.references.count == devices.count, "taken afresh")
        let actions = loaded.observe(
            statuses(loaded, windows: DeviceStatus.maximumCount, escalations: 5), now: t0.addingTimeInterval(10))
        #expect(actions.isEmpty, "still soaking: \(String(describing: loaded.lastObservation))")
        #expect(loaded.lastObservation?.waitingFor?.hasPrefix("soak:") == true)
    }
}
