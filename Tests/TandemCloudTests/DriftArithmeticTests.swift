import TandemCloud
import TandemProtocol
import Testing

/// The trainer's drift sampler adds up what devices report: no status, validated or not, can make it trap.
struct DriftArithmeticTests {
    func status(_ device: String, _ count: Int) -> DeviceStatus {
        DeviceStatus(device: device, modelVersion: "m1", windows: count, escalations: count)
    }

    @Test("counters beyond what validation allows are ignored, not added up until they overflow")
    func beyondValidationIgnored() {
        var history = EscalationHistory(driftWindowSeconds: 60)
        // Restarts to zero between huge counters, all within one merging bucket: each would add Int.max.
        for (k, count) in [Int.max, 0, Int.max, 0, Int.max, -1, Int.min].enumerated() {
            history.record(status("x", count), at: 1000 + Double(k) * 0.1)
        }
        #expect(history.baseline(of: "x", now: 5000)?.windows == 0)
        #expect(history.devices(now: 5000, minimumWindows: 1).isEmpty)
    }

    @Test("at the largest counts validation allows, restarts add up exactly and the trigger reads them")
    func validatedMaximumAddsUp() {
        let top = DeviceStatus.maximumCount
        var history = EscalationHistory(driftWindowSeconds: 60)
        for k in 0..<200 { history.record(status("y", k.isMultiple(of: 2) ? top : 0), at: 1000 + Double(k) * 0.1) }
        #expect(history.baseline(of: "y", now: 5000)?.windows == 99 * top)
        let devices = history.devices(now: 5000, minimumWindows: 1)
        #expect(devices.map(\.id) == ["y"] && devices.first?.baselineEscalationRate == 1)
    }

    @Test("the trigger sums intervals of any size without trapping, for one device and for the fleet")
    func triggerSaturates() {
        let huge = (0..<4).map {
            RetrainingTrigger.Interval(endsAt: 990 + Double($0), windows: .max, escalations: .max)
        }
        let devices = [
            RetrainingTrigger.Device(id: "a", baselineEscalationRate: 2, intervals: huge),
            RetrainingTrigger.Device(id: "b", baselineEscalationRate: 0, intervals: huge),
        ]
        for scope in RetrainingTrigger.DriftScope.allCases {
            var trigger = RetrainingTrigger()
            trigger.driftWindowSeconds = 60
            trigger.minimumDriftWindows = 1
            trigger.relativeDriftBound = 0.1
            trigger.driftScope = scope
            let reasons = trigger.reasons(
                for: RetrainingTrigger.Snapshot(now: 1000, newHardExamples: 0, newLabels: 0, devices: devices))
            #expect(!reasons.isEmpty, "\(scope)")
            #expect(reasons.allSatisfy { !$0.description.isEmpty })
        }
    }
}
