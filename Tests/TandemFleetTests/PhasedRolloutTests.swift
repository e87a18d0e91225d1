import Foundation
import TandemFleet
import TandemProtocol
import Testing

/// Phased rollouts (``RolloutPolicy/steps``): the canary, then growing, nested cohorts, each judged by the same
/// abort criteria, with made-up statuses and times.
///
/// The 20 devices `box-0`…`box-19` have fixed buckets (``RolloutCohort``): below 30 % are box-12, box-15, box-16,
/// box-19 and box-6; 45 % adds box-5 and box-7; 60 % adds box-0, box-1 and box-4.
struct PhasedRolloutTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    let devices = (0..<20).map { "box-\($0)" }

    func policy(steps: [Double] = [45, 60, 100], maximumRejections: Int = 0) -> RolloutPolicy {
        RolloutPolicy(
            canaryPercent: 30, soakSeconds: 600, maximumEscalationRateIncrease: 0.05, minimumCanaryWindows: 100,
            steps: steps, stepSeconds: 300, maximumRejections: maximumRejections)
    }

    func started(_ policy: RolloutPolicy) throws -> Rollout {
        var rollout = try Rollout.plan(
            fleet: "plant", version: "v2", previousVersion: "v1", devices: devices, policy: policy, now: t0)
        _ = try rollout.start(now: t0)
        return rollout
    }

    /// Cohort devices on v2 with `windows` and `escalations` (5 % when healthy), the others on v1 classifying
    /// alongside them at 5 %.
    func statuses(_ rollout: Rollout, windows: Int, escalations: Int? = nil) -> [String: DeviceStatus] {
        var out: [String: DeviceStatus] = [:]
        for device in rollout.cohort {
            out[device] = DeviceStatus(
                device: device, modelVersion: "v2", modelUpdate: .active("v2"), windows: windows,
                escalations: escalations ?? windows / 20)
        }
        for device in rollout.others {
            out[device] = DeviceStatus(
                device: device, modelVersion: "v1", modelUpdate: .active("v1"), windows: 1000 + windows,
                escalations: 50 + windows / 20)
        }
        return out
    }

    /// Drives a healthy rollout through its canary to step 1 (45 %) at `t0 + 700`.
    func atStepOne(_ policy: RolloutPolicy) throws -> Rollout {
        var rollout = try started(policy)
        #expect(rollout.observe(statuses(rollout, windows: 500), now: t0 + 10).isEmpty)
        #expect(rollout.observe(statuses(rollout, windows: 600), now: t0 + 300).isEmpty)
        let actions = rollout.observe(statuses(rollout, windows: 700), now: t0 + 700)
        #expect(actions.map(\.kind) == [.step] && rollout.step == 1, "\(String(describing: rollout.lastObservation))")
        return rollout
    }

    /// Drives a healthy rollout on from step 1 to step 2 (60 %) at `t0 + 1001`.
    func atStepTwo(_ policy: RolloutPolicy) throws -> Rollout {
        var rollout = try atStepOne(policy)
        #expect(rollout.observe(statuses(rollout, windows: 800), now: t0 + 710).isEmpty)
        let actions = rollout.observe(statuses(rollout, windows: 1000), now: t0 + 1001)
        #expect(actions.map(\.kind) == [.step] && rollout.step == 2, "\(String(describing: rollout.lastObservation))")
        return rollout
    }

    @Test("each step waits for its time and its devices, then moves the devices below its percentage; then promotion")
    func stepsAdvanceAfterTheirTime() throws {
        var rollout = try started(policy())
        #expect(rollout.cohort == ["box-12", "box-15", "box-16", "box-19", "box-6"] && rollout.step == 0)
        #expect(rollout.observe(statuses(rollout, windows: 500), now: t0 + 10).isEmpty)
        // Healthy but not soaked: the canary holds.
        #expect(rollout.observe(statuses(rollout, windows: 600), now: t0 + 599).isEmpty)
        #expect(rollout.lastObservation?.waitingFor?.hasPrefix("soak") == true)

        let step1 = rollout.observe(statuses(rollout, windows: 700), now: t0 + 700)
        #expect(
            step1 == [
                RolloutAction(
                    kind: .step, version: "v2", devices: ["box-5", "box-7"], reason: step1.first?.reason ?? "",
                    automatic: true)
            ])
        #expect(step1.first?.reason.hasPrefix("step 1 of 3: 45.0 % (7 of 20 devices)") == true)
        #expect(rollout.phase == .canary && rollout.step == 1 && rollout.stepStartedAt == t0 + 700)
        #expect(rollout.currentPercent == 45)
        #expect(rollout.cohort == RolloutCohort.select(devices, percent: 45))
        #expect(Set(rollout.cohort + rollout.others) == Set(devices) && rollout.others.count == 13)

        // The step survives a save and a restart.
        let reread = try Rollout(stateFile: rollout.stateFileContents())
        #expect(reread == rollout && reread.step == 1 && reread.stepStartedAt == t0 + 700)

        // The moved devices still download: however long it took, no step.
        var downloading = statuses(rollout, windows: 800)
        downloading["box-5"]?.modelVersion = "v1"
        #expect(rollout.observe(downloading, now: t0 + 1100).isEmpty)
        #expect(rollout.lastObservation?.waitingFor == "1 of 7 canary devices to serve v2")
        // All of them on it, but the step's 300 s are not over.
        var fresh = try atStepOne(policy())
        #expect(fresh.observe(statuses(fresh, windows: 800), now: t0 + 710).isEmpty)
        #expect(fresh.observe(statuses(fresh, windows: 900), now: t0 + 999).isEmpty)
        #expect(fresh.lastObservation?.waitingFor?.hasPrefix("step 1: 299 of 300 s") == true)
        #expect(fresh.step == 1)

        let step2 = fresh.observe(statuses(fresh, windows: 1000), now: t0 + 1000)
        #expect(step2.first?.kind == .step && step2.first?.devices == ["box-0", "box-1", "box-4"])
        #expect(fresh.step == 2 && fresh.cohort.count == 10 && fresh.stepStartedAt == t0 + 1000)
        #expect(fresh.observe(statuses(fresh, windows: 1100), now: t0 + 1010).isEmpty)

        let step3 = fresh.observe(statuses(fresh, windows: 1200), now: t0 + 1300)
        #expect(step3.first?.kind == .step && step3.first?.devices.count == 10 && fresh.others.isEmpty)
        #expect(fresh.step == 3 && fresh.currentPercent == 100 && fresh.phase == .canary)
        #expect(fresh.observe(statuses(fresh, windows: 1300), now: t0 + 1310).isEmpty)

        // After the last step: promotion, with nobody left to assign.
        let promotion = fresh.observe(statuses(fresh, windows: 1400), now: t0 + 1600)
        #expect(promotion.map(\.kind) == [.promote] && promotion.first?.devices == [])
        #expect(fresh.phase == .promoted)
    }

    @Test("a device a step moves is measured from its first status on the candidate, not from its baseline days")
    func movedDevicesStartAfresh() throws {
        var rollout = try atStepOne(policy())
        // The agents' counters run on across the swap: 1800 windows, 90 escalated, of which 300 and 15 since the
        // reference taken while they were others.
        var report = statuses(rollout, windows: 800)
        for device in ["box-5", "box-7"] {
            report[device]?.windows = 1800
            report[device]?.escalations = 90
        }
        #expect(rollout.observe(report, now: t0 + 710).isEmpty)
        #expect(rollout.lastObservation?.canaryWindows == 5 * 300, "only the canary's windows since its swap")
        #expect(rollout.lastObservation?.cohortOnCandidate == 7)
        for device in ["box-5", "box-7"] {
            report[device]?.windows = 1900
            report[device]?.escalations = 95
        }
        #expect(rollout.observe(report, now: t0 + 720).isEmpty)
        #expect(rollout.lastObservation?.canaryWindows == 5 * 300 + 2 * 100)
    }

    @Test("each step's cohort contains the one before: the devices whose bucket is below its percentage")
    func cohortsNest() throws {
        let ids = (0..<2000).map { "device-\($0)" }
        let steps = [5.0, 25, 60, 100]
        var rollout = try Rollout.plan(
            fleet: "plant", version: "v2", previousVersion: "v1", devices: ids,
            policy: RolloutPolicy(canaryPercent: 1, soakSeconds: 0, minimumCanaryWindows: 0, steps: steps),
            now: t0)
        _ = try rollout.start(now: t0)
        var before = Set(rollout.cohort)
        var moved = rollout.cohort
        for (k, percent) in steps.enumerated() {
            var report: [String: DeviceStatus] = [:]
            for device in rollout.cohort {
                report[device] = DeviceStatus(
                    device: device, modelVersion: "v2", modelUpdate: .active("v2"), windows: 10, escalations: 0)
            }
            let actions = rollout.observe(report, now: t0 + Double(k + 1))
            let added = try #require(actions.first?.devices)
            #expect(actions.first?.kind == .step && rollout.step == k + 1)
            #expect(rollout.cohort == RolloutCohort.select(ids, percent: percent))
            #expect(before.isSubset(of: Set(rollout.cohort)) && before.isDisjoint(with: added))
            #expect(added.allSatisfy { RolloutCohort.bucket(of: $0) < Int(percent * 100) })
            before = Set(rollout.cohort)
            moved += added
        }
        #expect(Set(moved) == Set(ids) && moved.count == ids.count, "each device is moved exactly once")
        // Rolled back now, every one of them goes back.
        let back = try rollout.rollBack(reason: "by hand", now: t0 + 10)
        #expect(back.first?.version == "v1" && back.first?.devices.count == ids.count)
    }

    @Test("a phased rollout stops at its abort criterion and rolls back: escalation regression at step 2")
    func abortsOnEscalationRegressionAtStepTwo() throws {
        var rollout = try atStepTwo(policy())
        let moved = RolloutCohort.select(devices, percent: 60)
        #expect(rollout.cohort == moved)
        // The three devices step 2 added take the candidate; their first status is their reference.
        #expect(rollout.observe(statuses(rollout, windows: 1100), now: t0 + 1010).isEmpty)
        // Within the bound: 36 of the step-2 devices' 100 windows each escalated, the cohort at 7.0 % against the
        // others' 5.0 %.
        var report = statuses(rollout, windows: 1200)
        for device in ["box-0", "box-1", "box-4"] { report[device]?.escalations = 1100 / 20 + 5 + 31 }
        #expect(rollout.observe(report, now: t0 + 1020).isEmpty && rollout.phase == .canary)
        // The step-2 devices escalate every one of their last 100 windows: the cohort at 11.2 %.
        for device in ["box-0", "box-1", "box-4"] { report[device]?.escalations = 1100 / 20 + 100 }
        let actions = rollout.observe(report, now: t0 + 1030)

        #expect(rollout.phase == .rolledBack && rollout.isFinished)
        #expect(
            actions == [
                RolloutAction(
                    kind: .rollBack, version: "v1", devices: moved, reason: rollout.endReason ?? "", automatic: true)
            ])
        #expect(actions.first?.devices.count == 10, "the canary's five, step 1's two and step 2's three")
        let reason = try #require(rollout.endReason)
        #expect(reason.hasPrefix("step 2 (60.0 %): escalation rate"), "\(reason)")
        // Over: nothing more happens.
        #expect(rollout.observe(statuses(rollout, windows: 5000), now: t0 + 5000).isEmpty)
    }

    @Test("a label accuracy drop at a step rolls back every device moved so far")
    func abortsOnAccuracyDropAtAStep() throws {
        var rollout = try atStepOne(policy())
        let report = statuses(rollout, windows: 800)
        let small = AccuracyComparison(candidate: 0.89, baseline: 0.9)
        #expect(rollout.observe(report, accuracy: small, now: t0 + 710).isEmpty)
        let actions = rollout.observe(
            report, accuracy: AccuracyComparison(candidate: 0.8, baseline: 0.9), now: t0 + 720)
        #expect(rollout.phase == .rolledBack && actions.first?.kind == .rollBack)
        #expect(actions.first?.devices == RolloutCohort.select(devices, percent: 45))
        #expect(rollout.endReason?.hasPrefix("step 1 (45.0 %): label accuracy") == true)
    }

    @Test("a rejection at step 2 aborts; maximumRejections tolerates that many, without holding the steps")
    func rejectionsAtAStep() throws {
        var rollout = try atStepTwo(policy())
        var report = statuses(rollout, windows: 1100)
        report["box-4"]?.modelVersion = "v1"
        report["box-4"]?.modelUpdate = .rejected("v2", reason: "self-test failed")
        let actions = rollout.observe(report, now: t0 + 1010)
        #expect(rollout.phase == .rolledBack)
        #expect(
            actions.first?.kind == .rollBack && actions.first?.devices == RolloutCohort.select(devices, percent: 60))
        #expect(rollout.endReason == "step 2 (60.0 %): device box-4 rejected v2: self-test failed")

        // One rejection allowed: the step is taken all the same, the second rejection aborts.
        var tolerant = try atStepOne(policy(maximumRejections: 1))
        var one = statuses(tolerant, windows: 800)
        one["box-7"]?.modelVersion = "v1"
        one["box-7"]?.modelUpdate = .rejected("v2", reason: "untrusted")
        #expect(tolerant.observe(one, now: t0 + 710).isEmpty && tolerant.phase == .canary)
        one = statuses(tolerant, windows: 1000)
        one["box-7"]?.modelVersion = "v1"
        one["box-7"]?.modelUpdate = .rejected("v2", reason: "untrusted")
        #expect(tolerant.observe(one, now: t0 + 1001).first?.kind == .step && tolerant.step == 2)
        one = statuses(tolerant, windows: 1100)
        for device in ["box-7", "box-0"] {
            one[device]?.modelVersion = "v1"
            one[device]?.modelUpdate = .rejected("v2", reason: "untrusted")
        }
        let abort = tolerant.observe(one, now: t0 + 1010)
        #expect(tolerant.phase == .rolledBack && abort.first?.devices.count == 10)
        #expect(
            tolerant.endReason?.contains("2 devices rejected v2, more than 1") == true, "\(tolerant.endReason ?? "")")
    }

    @Test(
        "steps that do not rise from the canary's percentage to at most 100 are refused",
        arguments: [
            [30.0], [50, 40], [50, 50], [50, 101], [Double.nan],
        ])
    func badStepsAreRefused(steps: [Double]) {
        #expect(throws: RegistryError.self) {
            try Rollout.plan(
                fleet: "plant", version: "v2", previousVersion: "v1", devices: devices, policy: policy(steps: steps),
                now: t0)
        }
        #expect(policy(steps: steps).problem != nil)
        #expect(policy(steps: [31, 100]).problem == nil)
    }

    @Test("step lists parse as comma-separated numbers; anything else is refused")
    func percentageLists() {
        #expect(RolloutPolicy.percentages(parsing: "10,50,100") == [10, 50, 100])
        #expect(RolloutPolicy.percentages(parsing: " 2.5, 25 ") == [2.5, 25])
        for bad in ["", "10,,50", "10,fifty", "10;50", ","] {
            #expect(RolloutPolicy.percentages(parsing: bad) == nil, "\(bad)")
        }
    }

    @Test("a state file written before phased rollouts reads as the canary with no steps and behaves as before")
    func oldStateFile() throws {
        let old = RolloutPolicy(
            canaryPercent: 30, soakSeconds: 600, maximumEscalationRateIncrease: 0.05, minimumCanaryWindows: 100)
        var rollout = try started(old)
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .secondsSince1970
        var object = try #require(try JSONSerialization.jsonObject(with: encoder.encode(rollout)) as? [String: Any])
        var policy = try #require(object["policy"] as? [String: Any])
        // The keys this change added: present when written now, absent from an older file.
        #expect(object["step"] as? Int == 0 && (policy["steps"] as? [Any])?.isEmpty == true)
        #expect(policy["stepSeconds"] != nil && policy["maximumRejections"] as? Int == 0)
        for key in ["steps", "stepSeconds", "maximumRejections"] { policy[key] = nil }
        object["policy"] = policy
        object["step"] = nil
        object["stepStartedAt"] = nil
        var read = try Rollout(stateFile: Array(JSONSerialization.data(withJSONObject: object)))
        #expect(read == rollout)
        #expect(read.step == 0 && read.stepStartedAt == nil && read.policy.steps.isEmpty)
        #expect(read.policy.stepSeconds == 600 && read.policy.maximumRejections == 0)

        // Soaked and healthy: promoted directly, the rest of the fleet assigned, as before.
        #expect(read.observe(statuses(read, windows: 500), now: t0 + 10).isEmpty)
        let actions = read.observe(statuses(read, windows: 700), now: t0 + 700)
        #expect(actions.map(\.kind) == [.promote] && actions.first?.devices == read.others && read.phase == .promoted)
        #expect(read.endReason?.hasPrefix("soaked 700 s on 5 canary devices") == true, "\(read.endReason ?? "")")

        // One rejection rolls it back, as before.
        var report = statuses(rollout, windows: 10)
        report[rollout.cohort[0]]?.modelUpdate = .rejected("v2", reason: "untrusted")
        #expect(rollout.observe(report, now: t0 + 1).first?.kind == .rollBack)
        #expect(rollout.endReason == "device \(rollout.cohort[0]) rejected v2: untrusted")
    }
}
