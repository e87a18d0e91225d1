import Foundation
import TandemFleet
import TandemProtocol
import Testing

/// The cohort selection and the rollout state machine, with made-up statuses and times.
struct RolloutTests {
    @Test("cohort buckets are the first 8 bytes of SHA-256 mod 10,000: fixed values, independent of the process")
    func cohortBucketsAreStable() {
        // Computed independently (Python hashlib) for these ids.
        #expect(RolloutCohort.bucket(of: "box1") == 5687)
        #expect(RolloutCohort.bucket(of: "device-42") == 1872)
        #expect(RolloutCohort.bucket(of: "box-19") == 219)
        #expect(RolloutCohort.contains("box-19", percent: 2.2) && !RolloutCohort.contains("box-19", percent: 2.19))
    }

    @Test(
        "over 10,000 ids each cohort is within 1 point of its percentage, and a larger one contains a smaller",
        arguments: [1.0, 10, 50])
    func cohortSizes(percent: Double) {
        let ids = (0..<10_000).map { "device-\($0)" }
        let cohort = RolloutCohort.select(ids, percent: percent)
        #expect(abs(Double(cohort.count) - percent * 100) <= 100, "\(cohort.count) for \(percent) %")
        #expect(RolloutCohort.select(ids.reversed(), percent: percent) == cohort)
        let larger = Set(RolloutCohort.select(ids, percent: percent + 5))
        #expect(Set(cohort).isSubset(of: larger))
        #expect(
            RolloutCohort.select(ids, percent: 0).isEmpty && RolloutCohort.select(ids, percent: 100).count == 10_000)
    }

    let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    let devices = (0..<20).map { "box-\($0)" }
    let policy = RolloutPolicy(
        canaryPercent: 30, soakSeconds: 600, maximumEscalationRateIncrease: 0.05, minimumCanaryWindows: 100)

    func started() throws -> Rollout {
        var rollout = try Rollout.plan(
            fleet: "plant", version: "v2", previousVersion: "v1", devices: devices, policy: policy, now: t0)
        let actions = try rollout.start(now: t0)
        #expect(actions.count == 1 && actions[0].kind == .start && actions[0].version == "v2")
        #expect(actions[0].devices == rollout.cohort)
        return rollout
    }

    /// Statuses: cohort devices on `version` with `canary` counters, the others on v1 classifying alongside them
    /// (1000 + `windows` windows, 5 % escalated).
    func statuses(
        _ rollout: Rollout, version: String = "v2", windows: Int, escalations: Int, update: ModelUpdateState? = nil
    )
        -> [String: DeviceStatus]
    {
        var out: [String: DeviceStatus] = [:]
        for device in rollout.cohort {
            out[device] = DeviceStatus(
                device: device, modelVersion: version, modelUpdate: update ?? .active(version), windows: windows,
                escalations: escalations)
        }
        for device in rollout.others {
            out[device] = DeviceStatus(
                device: device, modelVersion: "v1", modelUpdate: .active("v1"), windows: 1000 + windows,
                escalations: 50 + windows / 20)
        }
        return out
    }

    @Test("planned → canary → soak → promoted: the rest of the fleet gets the candidate once soaked and measured")
    func promotesAfterSoak() throws {
        var rollout = try started()
        #expect(rollout.cohort == RolloutCohort.select(devices, percent: 30) && !rollout.cohort.isEmpty)
        #expect(Set(rollout.cohort + rollout.others) == Set(devices))
        #expect(rollout.phase == .canary)

        // First sight of the candidate fixes each device's reference counters.
        #expect(rollout.observe(statuses(rollout, windows: 500, escalations: 30), now: t0 + 10).isEmpty)
        #expect(rollout.observe(statuses(rollout, windows: 600, escalations: 35), now: t0 + 300).isEmpty)
        #expect(rollout.lastObservation?.waitingFor?.hasPrefix("soak") == true)
        // Soaked, but a cohort device still downloads.
        var pending = statuses(rollout, windows: 700, escalations: 40)
        pending[rollout.cohort[0]]?.modelVersion = "v1"
        #expect(rollout.observe(pending, now: t0 + 700).isEmpty)
        #expect(rollout.lastObservation?.waitingFor?.contains("canary devices") == true)

        let actions = rollout.observe(statuses(rollout, windows: 700, escalations: 40), now: t0 + 700)
        #expect(rollout.phase == .promoted && rollout.isFinished)
        #expect(
            actions == [
                RolloutAction(
                    kind: .promote, version: "v2", devices: rollout.others, reason: rollout.endReason ?? "",
                    automatic: true)
            ])
        #expect(rollout.lastObservation?.canaryEscalationRate.map { abs($0 - 0.05) < 1e-9 } == true)
        // Finished rollouts ignore further statuses and refuse manual transitions.
        #expect(rollout.observe(statuses(rollout, windows: 9000, escalations: 9000), now: t0 + 800).isEmpty)
        #expect(throws: RegistryError.self) { try rollout.rollBack(reason: "late", now: t0 + 900) }
    }

    @Test("an escalation-rate regression beyond the bound rolls the cohort back to the previous version")
    func rollsBackOnEscalationRegression() throws {
        var rollout = try started()
        #expect(rollout.observe(statuses(rollout, windows: 1000, escalations: 50), now: t0 + 1).isEmpty)
        // Within the bound (9 % against 5 %, bound 5 points): no decision.
        #expect(rollout.observe(statuses(rollout, windows: 1100, escalations: 59), now: t0 + 2).isEmpty)
        #expect(rollout.phase == .canary)
        // 100 more windows with 20 of them escalated: 14.5 % since the swap.
        let actions = rollout.observe(statuses(rollout, windows: 1200, escalations: 79), now: t0 + 3)
        #expect(rollout.phase == .rolledBack)
        #expect(actions.count == 1)
        #expect(actions.first?.kind == .rollBack && actions.first?.version == "v1")
        #expect(actions.first?.devices == rollout.cohort && actions.first?.automatic == true)
        #expect(rollout.endReason?.contains("escalation rate") == true, "\(rollout.endReason ?? "")")
    }

    @Test("too few canary windows (summed over the cohort) are not judged, however bad the rate")
    func fewWindowsAreNotJudged() throws {
        var rollout = try started()
        // Five cohort devices with 15 windows each since the swap: 75 in all, below the 100 required.
        #expect(rollout.cohort.count == 5)
        _ = rollout.observe(statuses(rollout, windows: 10, escalations: 0), now: t0 + 1)
        #expect(rollout.observe(statuses(rollout, windows: 25, escalations: 15), now: t0 + 2).isEmpty)
        #expect(rollout.phase == .canary)
        #expect(rollout.lastObservation?.canaryWindows == 75)
        // Five more windows each: 100 windows, every one escalated since the swap, is judged.
        #expect(rollout.observe(statuses(rollout, windows: 30, escalations: 20), now: t0 + 3).count == 1)
        #expect(rollout.phase == .rolledBack)
    }

    @Test("the baseline is the others over the canary's time: a change reaching the whole fleet is no regression")
    func baselineOverTheSameTime() throws {
        var rollout = try started()
        func fleet(canary: (Int, Int), others: (Int, Int)) -> [String: DeviceStatus] {
            var out = statuses(rollout, windows: canary.0, escalations: canary.1)
            for device in rollout.others {
                out[device] = DeviceStatus(
                    device: device, modelVersion: "v1", modelUpdate: .active("v1"), windows: others.0,
                    escalations: others.1)
            }
            return out
        }
        // Before: every device escalated 5 % of 1000 windows. Then the whole fleet drifts: the others escalate
        // 30 % of their next 200 windows, the canary 28 % of its.
        #expect(rollout.observe(fleet(canary: (1000, 50), others: (1000, 50)), now: t0 + 1).isEmpty)
        #expect(rollout.observe(fleet(canary: (1200, 106), others: (1200, 110)), now: t0 + 2).isEmpty)
        #expect(rollout.phase == .canary, "\(rollout.endReason ?? "")")
        let observation = try #require(rollout.lastObservation)
        #expect(observation.baselineWindows == 200 * rollout.others.count)
        #expect(observation.baselineEscalationRate.map { abs($0 - 0.30) < 1e-9 } == true)
        // The others' lifetime (1200 windows, 9 %) would have made 28 % look like a regression.
        #expect(observation.canaryEscalationRate.map { abs($0 - 0.28) < 1e-9 } == true)
    }

    @Test("a canary device reporting `rejected v2: …` rolls back at once")
    func rollsBackOnRejection() throws {
        var rollout = try started()
        var report = statuses(rollout, version: "v1", windows: 10, escalations: 1)
        report[rollout.cohort[0]]?.modelUpdate = .rejected("v2", reason: "untrusted: signed by key 0123")
        // A rejection of another version is not this rollout's business.
        var other = statuses(rollout, version: "v1", windows: 10, escalations: 1)
        other[rollout.cohort[0]]?.modelUpdate = .rejected("v9", reason: "untrusted")
        #expect(rollout.observe(other, now: t0 + 1).isEmpty)
        let actions = rollout.observe(report, now: t0 + 2)
        #expect(rollout.phase == .rolledBack)
        #expect(actions.first?.version == "v1" && actions.first?.devices == rollout.cohort)
        #expect(rollout.endReason?.contains("untrusted: signed by key 0123") == true)
    }

    @Test("a label accuracy drop beyond the bound rolls back; a small one does not")
    func rollsBackOnAccuracyDrop() throws {
        var rollout = try started()
        let report = statuses(rollout, windows: 10, escalations: 1)
        #expect(
            rollout.observe(report, accuracy: AccuracyComparison(candidate: 0.89, baseline: 0.9), now: t0 + 1).isEmpty)
        let actions = rollout.observe(report, accuracy: AccuracyComparison(candidate: 0.8, baseline: 0.9), now: t0 + 2)
        #expect(rollout.phase == .rolledBack && actions.first?.kind == .rollBack)
    }

    @Test("manual promote and rollback only from canary; a restarted agent's counters start a new reference")
    func manualTransitions() throws {
        var planned = try Rollout.plan(
            fleet: "plant", version: "v2", previousVersion: "v1", devices: devices, policy: policy, now: t0)
        #expect(throws: RegistryError.self) { try planned.promote(reason: "early", now: t0) }
        #expect(throws: RegistryError.self) {
            try Rollout.plan(
                fleet: "plant", version: "v1", previousVersion: "v1", devices: devices, policy: policy, now: t0)
        }
        #expect(throws: RegistryError.self) {
            try Rollout.plan(
                fleet: "plant", version: "v2", previousVersion: "v1", devices: ["box-2"], policy: policy, now: t0)
        }

        var rollout = try started()
        _ = rollout.observe(statuses(rollout, windows: 1000, escalations: 50), now: t0 + 1)
        // Restart: counters fall to 100; measured from there, no false regression, no crash.
        #expect(rollout.observe(statuses(rollout, windows: 100, escalations: 90), now: t0 + 2).isEmpty)
        #expect(rollout.observe(statuses(rollout, windows: 150, escalations: 92), now: t0 + 3).isEmpty)
        #expect(rollout.phase == .canary)
        let actions = try rollout.promote(reason: "looks fine", devices: devices + ["box-new"], now: t0 + 4)
        #expect(rollout.phase == .promoted)
        #expect(actions.first?.devices.contains("box-new") == true && actions.first?.automatic == false)
    }
}
