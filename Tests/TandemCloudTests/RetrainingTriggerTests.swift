import TandemCloud
import Testing

/// When a retraining round starts: counts since the last round, and escalation-rate drift per device.
struct RetrainingTriggerTests {
    var trigger: RetrainingTrigger {
        var t = RetrainingTrigger()
        t.minimumNewHardExamples = 500
        t.minimumNewLabels = 50
        t.driftWindowSeconds = 600
        t.minimumDriftWindows = 1000
        t.absoluteDriftBound = 0.05
        t.relativeDriftBound = 0.5
        return t
    }

    /// ``trigger`` with the count rules off, for the rules that come after them.
    var countsOff: RetrainingTrigger {
        var t = trigger
        t.minimumNewHardExamples = 0
        t.minimumNewLabels = 0
        return t
    }

    @Test("hard examples and labels start a round at their thresholds, not below")
    func counts() {
        #expect(trigger.reasons(for: .init(now: 0, newHardExamples: 499, newLabels: 49)).isEmpty)
        #expect(trigger.reasons(for: .init(now: 0, newHardExamples: 500, newLabels: 0)) == [.hardExamples(500)])
        #expect(trigger.reasons(for: .init(now: 0, newHardExamples: 10, newLabels: 50)) == [.labels(50)])
        #expect(
            trigger.reasons(for: .init(now: 0, newHardExamples: 900, newLabels: 70)) == [
                .hardExamples(900), .labels(70),
            ])
        var off = trigger
        off.minimumNewLabels = 0
        #expect(off.reasons(for: .init(now: 0, newHardExamples: 0, newLabels: 10_000)).isEmpty, "0 turns a rule off")
    }

    @Test("a promoted drift round gets one follow-up at its label count; without it due, or with fewer labels, none")
    func followUp() {
        var t = countsOff
        t.followUpLabels = 300
        func reasons(labels: Int, due: Bool) -> [RetrainingTrigger.Reason] {
            t.reasons(for: .init(now: 0, newHardExamples: 5000, newLabels: labels, followUpDue: due))
        }
        #expect(reasons(labels: 300, due: true) == [.followUp(labels: 300)])
        #expect(reasons(labels: 299, due: true).isEmpty)
        #expect(reasons(labels: 10_000, due: false).isEmpty, "only after a promoted drift round")
        t.followUpLabels = 0
        #expect(reasons(labels: 10_000, due: true).isEmpty, "0 turns the rule off")
        #expect(RetrainingTrigger.Reason.followUp(labels: 300).description.contains("300 new labels"))
        #expect(!RetrainingTrigger.Reason.followUp(labels: 1).isDrift && !RetrainingTrigger.Reason.labels(1).isDrift)
        #expect(RetrainingTrigger.Reason.fleetDrift(devices: 2, baseline: 0.1, recent: 0.3, windows: 100).isDrift)
        #expect(RetrainingTrigger.Reason.drift(device: "d", baseline: 0.1, recent: 0.3, windows: 100).isDrift)
        var rules = trigger
        rules.followUpLabels = 300
        #expect(rules.rules.contains("a follow-up of a promoted drift round at 300 new labels"))
    }

    @Test("the schedule starts a round once its time has passed since the last round, and only with new data")
    func schedule() {
        var scheduled = countsOff
        scheduled.scheduleSeconds = 3600
        func reasons(now: Double, examples: Int, labels: Int, last: Double?) -> [RetrainingTrigger.Reason] {
            scheduled.reasons(
                for: .init(now: now, newHardExamples: examples, newLabels: labels, lastRoundStartedAt: last))
        }
        #expect(reasons(now: 4599, examples: 5, labels: 0, last: 1000).isEmpty, "not yet")
        #expect(
            reasons(now: 4600, examples: 5, labels: 0, last: 1000) == [
                .schedule(seconds: 3600, hardExamples: 5, labels: 0)
            ])
        #expect(
            reasons(now: 9000, examples: 0, labels: 1, last: 1000) == [
                .schedule(seconds: 8000, hardExamples: 0, labels: 1)
            ])
        #expect(reasons(now: 9000, examples: 0, labels: 0, last: 1000).isEmpty, "nothing new: no round")
        #expect(reasons(now: 9000, examples: 5, labels: 0, last: nil).isEmpty, "no start known: wait")
        #expect(
            reasons(now: 4600, examples: 5, labels: 0, last: 1000).first?.description
                == "scheduled: 3600 s since the last round, 5 new hard examples and 0 new labels")
        // Alongside the count rules, each reason is reported.
        scheduled.minimumNewLabels = 1
        #expect(reasons(now: 4600, examples: 0, labels: 2, last: 1000).count == 2)
        scheduled.scheduleSeconds = 0
        #expect(reasons(now: 1e9, examples: 0, labels: 2, last: 0) == [.labels(2)], "0 turns the schedule off")
        #expect(scheduled.rules.hasPrefix("1 new labels or drift"), "\(scheduled.rules)")
        scheduled.scheduleSeconds = 60
        scheduled.minimumDriftWindows = 0
        #expect(scheduled.rules.hasPrefix("1 new labels or every 60 s with new data; drift off; audit drift ("))
        scheduled.minimumAudits = 0
        #expect(scheduled.rules == "1 new labels or every 60 s with new data; drift off", "\(scheduled.rules)")
    }

    @Test("audit drift: the production edge version agrees with the cloud on its recent audits less than before")
    func auditDrift() {
        var t = countsOff
        t.minimumAudits = 100
        t.auditAgreementDrop = 0.15
        func reasons(_ baseline: (Int, Int), _ recent: (Int, Int)) -> [RetrainingTrigger.Reason] {
            t.reasons(
                for: .init(
                    now: 0, newHardExamples: 0, newLabels: 0,
                    audits: .init(
                        version: "e1", baselineAnswered: baseline.0, baselineAgreed: baseline.1,
                        recentAnswered: recent.0, recentAgreed: recent.1)))
        }
        #expect(
            reasons((400, 380), (100, 75)) == [.auditDrift(version: "e1", baseline: 0.95, recent: 0.75, audits: 100)])
        #expect(reasons((400, 380), (100, 81)).isEmpty, "a drop of 0.14 is within the bound")
        #expect(reasons((400, 380), (99, 0)).isEmpty, "too few recent audits")
        #expect(reasons((99, 99), (400, 0)).isEmpty, "too few before")
        #expect(reasons((400, 100), (100, 100)).isEmpty, "agreeing more is no drift")
        #expect(reasons((400, 401), (100, 0)).isEmpty, "counts that cannot be are not believed")
        #expect(reasons((400, 380), (100, -5)).isEmpty)
        #expect(t.reasons(for: .init(now: 0, newHardExamples: 0, newLabels: 0)).isEmpty, "no audits known")
        t.minimumAudits = 0
        #expect(reasons((400, 380), (100, 0)).isEmpty, "0 turns the rule off")
        let reason = RetrainingTrigger.Reason.auditDrift(version: "e1", baseline: 0.95, recent: 0.75, audits: 100)
        #expect(
            reason.isDrift
                && reason.description == "edge e1 agrees with the cloud on 75.0 % of 100 recent audits, baseline 95.0 %"
        )
    }

    /// A device that classified `windows` windows per minute over the last `minutes` minutes, escalating `rate`.
    func device(_ id: String, baseline: Double, rate: Double, minutes: Int, windows: Int = 200, now: Double = 10_000)
        -> RetrainingTrigger.Device
    {
        .init(
            id: id, baselineEscalationRate: baseline,
            intervals: (0..<minutes).map {
                .init(
                    endsAt: now - Double($0) * 60, windows: windows,
                    escalations: Int((Double(windows) * rate).rounded()))
            })
    }

    @Test("a device's escalation rate past the bound from its baseline is drift; within it, or on too few windows, not")
    func drift() {
        let now = 10_000.0
        let steady = device("steady", baseline: 0.10, rate: 0.12, minutes: 10)
        let up = device("up", baseline: 0.10, rate: 0.20, minutes: 10)
        let down = device("down", baseline: 0.30, rate: 0.10, minutes: 10)
        let quiet = device("quiet", baseline: 0.10, rate: 0.90, minutes: 4)  // 800 windows < 1,000
        let reasons = trigger.reasons(
            for: .init(now: now, newHardExamples: 0, newLabels: 0, devices: [up, steady, quiet, down]))
        #expect(reasons.count == 2, "\(reasons)")
        guard case .drift(let first, let baseline, let recent, let windows) = reasons.first else {
            Issue.record("expected drift, got \(reasons)")
            return
        }
        #expect(first == "down" && abs(baseline - 0.30) < 1e-12 && abs(recent - 0.10) < 1e-12 && windows == 2000)
        guard case .drift(let second, _, let upRate, _) = reasons.last else { return }
        #expect(second == "up" && abs(upRate - 0.20) < 1e-12)
        #expect(reasons.last?.description.contains("20.0 %") == true, "\(reasons.last?.description ?? "")")
    }

    @Test("the relative bound widens the absolute one for devices with a high baseline")
    func relativeBound() {
        // Baseline 0.4: the bound is max(0.05, 0.5 × 0.4) = 0.2, so 0.55 is within it and 0.65 is not.
        let within = device("a", baseline: 0.4, rate: 0.55, minutes: 10)
        let past = device("b", baseline: 0.4, rate: 0.65, minutes: 10)
        let reasons = trigger.reasons(
            for: .init(now: 10_000, newHardExamples: 0, newLabels: 0, devices: [within, past]))
        #expect(reasons.count == 1)
        if case .drift(let id, _, _, _) = reasons.first { #expect(id == "b") }
    }

    @Test("only intervals inside the drift window count")
    func window() {
        let now = 10_000.0
        // An hour of history at 0.5, then the last 10 minutes back at the 0.1 baseline.
        var history = device("d", baseline: 0.1, rate: 0.5, minutes: 60, now: now - 600)
        history.intervals += device("d", baseline: 0.1, rate: 0.1, minutes: 10, now: now).intervals
        #expect(trigger.reasons(for: .init(now: now, newHardExamples: 0, newLabels: 0, devices: [history])).isEmpty)
        let rate = trigger.recentRate(of: history, now: now)
        #expect(rate?.windows == 2000 && abs((rate?.rate ?? -1) - 0.1) < 1e-12)
        // Ten minutes earlier the window held only the drifted intervals.
        #expect(
            trigger.reasons(for: .init(now: now - 600, newHardExamples: 0, newLabels: 0, devices: [history])).count == 1
        )
    }

    @Test(
        "fleet scope: devices' noisy minutes that cancel out are no drift; a change on every device is, with the weighted baseline"
    )
    func fleetScope() {
        var fleet = trigger
        fleet.minimumNewHardExamples = 0
        fleet.minimumNewLabels = 0
        fleet.minimumDriftWindows = 2000
        fleet.driftScope = .fleet
        // Ten devices at a 10 % baseline, 300 recent windows each: half escalate 2 %, half 18 % just now.
        func device(_ k: Int, recent escalations: Int, windows: Int = 300) -> RetrainingTrigger.Device {
            RetrainingTrigger.Device(
                id: "d\(k)", baselineEscalationRate: 0.10,
                intervals: [.init(endsAt: 990, windows: windows, escalations: escalations)])
        }
        let noisy = (0..<10).map { device($0, recent: $0 % 2 == 0 ? 6 : 54) }
        #expect(fleet.reasons(for: .init(now: 1000, newHardExamples: 0, newLabels: 0, devices: noisy)).isEmpty)
        var perDevice = fleet
        perDevice.driftScope = .device
        perDevice.minimumDriftWindows = 300
        #expect(
            perDevice.reasons(for: .init(now: 1000, newHardExamples: 0, newLabels: 0, devices: noisy)).count == 10,
            "device by device, every easy (2 %) and every hard (18 %) minute looks like drift")

        let drifted = (0..<10).map { device($0, recent: 90) }
        let reasons = fleet.reasons(for: .init(now: 1000, newHardExamples: 0, newLabels: 0, devices: drifted))
        guard reasons.count == 1, case .fleetDrift(let devices, let baseline, let recent, let windows) = reasons[0]
        else {
            Issue.record("expected one fleet drift, got \(reasons)")
            return
        }
        #expect(devices == 10 && abs(baseline - 0.10) < 1e-9 && abs(recent - 0.30) < 1e-9 && windows == 3000)
        // Below the fleet's minimum of windows: no verdict yet.
        let few = (0..<6).map { device($0, recent: 90) }
        #expect(fleet.reasons(for: .init(now: 1000, newHardExamples: 0, newLabels: 0, devices: few)).isEmpty)
        // The baseline is weighted by each device's recent windows: 100 windows at 0 % and 1,900 at 20 % predict
        // 19 %, so 19 % now is no drift.
        let weighted = [
            RetrainingTrigger.Device(
                id: "a", baselineEscalationRate: 0, intervals: [.init(endsAt: 990, windows: 100, escalations: 0)]),
            RetrainingTrigger.Device(
                id: "b", baselineEscalationRate: 0.2, intervals: [.init(endsAt: 990, windows: 1900, escalations: 380)]),
        ]
        #expect(fleet.reasons(for: .init(now: 1000, newHardExamples: 0, newLabels: 0, devices: weighted)).isEmpty)
    }
}

/// The running round's step and lines for `GET /v1/training`.
struct RoundProgressTests {
    @Test("a round's logged lines move its step on and are kept (the last 20); other lines and idle times are ignored")
    func steps() {
        let progress = RoundProgress()
        progress.note("trainer: round: data: 10 windows (0.1 s)")
        #expect(progress.current == nil, "no round runs: nothing is kept")
        progress.start(at: 100, reasons: ["the fleet escalates 30 %"])
        #expect(progress.current?.step == "data" && progress.current?.reasons == ["the fleet escalates 30 %"])
        var steps: [String] = []
        for line in [
            "trainer: round: starting from edge-1 (drift)", "trainer: round: data: 10 windows (0.1 s)",
            "trainer: round: fine-tune: 10 windows (2.0 s)", "trainer: round: compress: 10 windows (1.0 s)",
            "trainer: round: gate: gate passed: … (0.5 s)", "trainer: register: edge-2 signed and registered",
            "trainer: rollout: edge-2 to the canary cohort",
        ] {
            progress.note(line)
            steps.append(progress.current?.step ?? "-")
        }
        #expect(steps == ["data", "fine-tune", "compress", "gate", "register", "rollout", "rollout"])
        progress.note("worker 1: Statistics(received: 5)")
        #expect(
            progress.current?.lines.count == 7 && progress.current?.lines.first == "round: starting from edge-1 (drift)"
        )
        for k in 0..<30 { progress.note("trainer: rollout: step \(k)") }
        #expect(progress.current?.lines.count == 20 && progress.current?.lines.last == "rollout: step 29")
        progress.finish()
        #expect(progress.current == nil)
    }
}
