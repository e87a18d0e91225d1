/// Decides when a retraining round is worth running: enough new hard examples, new ground truth, a device
/// whose escalation rate has moved away from its baseline, or a schedule.
///
/// Pure logic over counts the caller gathers (the sample store for examples and labels, device status
/// messages for escalation rates), so every rule is testable without a store or a broker.
public struct RetrainingTrigger: Sendable, Equatable {
    /// New hard examples (escalations other than audits) since the last round that start one. Default 1,000.
    public var minimumNewHardExamples = 1000
    /// New ground-truth labels since the last round that start one. Default 100.
    public var minimumNewLabels = 100
    /// How far back the recent escalation rate of a device looks, in seconds. Default one hour.
    public var driftWindowSeconds = 3600.0
    /// Windows a device must have classified within the drift window before its rate counts (and, in
    /// ``EscalationHistory``, behind its baseline); fewer would make the rate noise. Default 1,000; 0 turns the
    /// drift rule off.
    public var minimumDriftWindows = 1000
    /// A recent rate further than this from the baseline is drift (absolute, in rate units). Default 0.05.
    public var absoluteDriftBound = 0.05
    /// …or further than this fraction of the baseline, whichever is larger. Default 0.5.
    public var relativeDriftBound = 0.5
    /// Whether drift is judged device by device or over the whole fleet. Default `device`.
    public var driftScope = DriftScope.device
    /// A round is due once this many seconds have passed since the last round started (or the service
    /// started) if at least one new hard example or label arrived since. Default 0: no schedule.
    public var scheduleSeconds = 0.0

    /// After a round that drift started is promoted, one more round once this many labels arrived since it started:
    /// the first round trains on the few labels of the new regime there were, the follow-up on those gathered while
    /// it ran and rolled out (and on the hard examples of its own model). Default 0: no follow-up.
    public var followUpLabels = 0
    /// Answered audit escalations of the production edge version each side of the audit rule needs (recent: within
    /// the drift window; baseline: since the last round started, before that window). Default 100; 0 turns the
    /// audit rule off.
    public var minimumAudits = 100
    /// A drop of the production edge version's agreement with the cloud's verdicts on its audits, recent against
    /// baseline, larger than this is drift (absolute). Default 0.15.
    public var auditAgreementDrop = 0.15
    /// The defaults above.
    public init() {}

    /// What a drift verdict rests on.
    public enum DriftScope: String, Sendable, Equatable, CaseIterable {
        /// Each device's recent rate against its own baseline: finds one re-mounted sensor or one machine that
        /// changed, but a device's rate must rest on `minimumDriftWindows` recent windows of its own.
        case device
        /// The fleet's recent rate (every device's windows together) against the rate its devices' baselines
        /// predict for those windows: finds a change that reaches many devices at once long before any single
        /// device has enough windows, and is not fooled by one device's easy or hard minutes.
        case fleet
    }

    /// Windows classified and escalated by one device over one interval (differences of its status counters).
    public struct Interval: Sendable, Equatable {
        /// Seconds since 1970 at the end of the interval.
        public var endsAt: Double
        /// Windows classified in the interval.
        public var windows: Int
        /// Windows escalated in the interval.
        public var escalations: Int

        /// Creates an interval.
        public init(endsAt: Double, windows: Int, escalations: Int) {
            self.endsAt = endsAt
            self.windows = windows
            self.escalations = escalations
        }
    }

    /// One device's escalation history.
    public struct Device: Sendable, Equatable {
        /// The device id.
        public var id: String
        /// Its escalation rate when the current model was deployed (or its long-run rate).
        public var baselineEscalationRate: Double
        /// Recent intervals, any order.
        public var intervals: [Interval]

        /// Creates a device history.
        public init(id: String, baselineEscalationRate: Double, intervals: [Interval]) {
            self.id = id
            self.baselineEscalationRate = baselineEscalationRate
            self.intervals = intervals
        }
    }

    /// How often the production edge version agreed with the cloud's verdicts on its audit escalations (a random
    /// share of the windows it was sure of: docs/CLOUD.md "Audit escalations"), before and within the drift window.
    public struct AuditAgreement: Sendable, Equatable {
        /// The edge version.
        public var version: String
        /// Answered audits before the drift window (since the last round started).
        public var baselineAnswered: Int
        /// Of them, those the edge's prediction agreed with.
        public var baselineAgreed: Int
        /// Answered audits within the drift window.
        public var recentAnswered: Int
        /// Of them, those the edge's prediction agreed with.
        public var recentAgreed: Int

        /// Creates the counts.
        public init(version: String, baselineAnswered: Int, baselineAgreed: Int, recentAnswered: Int, recentAgreed: Int)
        {
            self.version = version
            self.baselineAnswered = baselineAnswered
            self.baselineAgreed = baselineAgreed
            self.recentAnswered = recentAnswered
            self.recentAgreed = recentAgreed
        }
    }

    /// What the trigger looks at.
    public struct Snapshot: Sendable, Equatable {
        /// Seconds since 1970 now.
        public var now: Double
        /// Escalations other than audits stored since the last round started.
        public var newHardExamples: Int
        /// Labels recorded since the last round started.
        public var newLabels: Int
        /// Devices with their escalation history.
        public var devices: [Device]
        /// Seconds since 1970 when the last round started, or when the service started if none has; nil
        /// leaves the schedule waiting.
        public var lastRoundStartedAt: Double?
        /// Whether the last round was started by drift and promoted, and no round has started since.
        public var followUpDue: Bool
        /// The production edge version's audit agreement, if known.
        public var audits: AuditAgreement?

        /// Creates a snapshot.
        public init(
            now: Double, newHardExamples: Int, newLabels: Int, devices: [Device] = [],
            lastRoundStartedAt: Double? = nil, followUpDue: Bool = false, audits: AuditAgreement? = nil
        ) {
            self.audits = audits
            self.now = now
            self.newHardExamples = newHardExamples
            self.newLabels = newLabels
            self.devices = devices
            self.lastRoundStartedAt = lastRoundStartedAt
            self.followUpDue = followUpDue
        }
    }

    /// Why a round should run.
    public enum Reason: Sendable, Equatable, CustomStringConvertible {
        /// Enough new hard examples.
        case hardExamples(Int)
        /// Enough new labels.
        case labels(Int)
        /// A device's recent escalation rate moved past the bound.
        case drift(device: String, baseline: Double, recent: Double, windows: Int)
        /// The fleet's recent rate moved past the bound (``DriftScope/fleet``).
        case fleetDrift(devices: Int, baseline: Double, recent: Double, windows: Int)
        /// The schedule: this many seconds since the last round started, with new examples or labels.
        case schedule(seconds: Double, hardExamples: Int, labels: Int)
        /// The follow-up of a promoted drift round, with this many labels since it started.
        case followUp(labels: Int)
        /// The production edge version agrees with the cloud's verdicts on its recent audits less than before.
        case auditDrift(version: String, baseline: Double, recent: Double, audits: Int)

        /// Whether the escalation rates or the audits started it.
        public var isDrift: Bool {
            switch self {
            case .drift, .fleetDrift, .auditDrift: true
            default: false
            }
        }

        /// One line for logs.
        public var description: String {
            switch self {
            case .hardExamples(let n): return "\(n) new hard examples"
            case .labels(let n): return "\(n) new labels"
            case .drift(let device, let baseline, let recent, let windows):
                return
                    "device \(device) escalates \(Self.percent(recent)) of \(windows) recent windows, baseline \(Self.percent(baseline))"
            case .fleetDrift(let devices, let baseline, let recent, let windows):
                return
                    "the fleet (\(devices) devices) escalates \(Self.percent(recent)) of \(windows) recent windows, baseline \(Self.percent(baseline))"
            case .schedule(let seconds, let hardExamples, let labels):
                return
                    "scheduled: \(seconds.isFinite && abs(seconds) < 1e15 ? String(Int(seconds)) : String(seconds)) s since the last round, \(hardExamples) new hard examples and \(labels) new labels"
            case .followUp(let labels):
                return "follow-up of the promoted drift round: \(labels) new labels since it started"
            case .auditDrift(let version, let baseline, let recent, let audits):
                return
                    "edge \(version) agrees with the cloud on \(Self.percent(recent)) of \(audits) recent audits, baseline \(Self.percent(baseline))"
            }
        }

        static func percent(_ x: Double) -> String {
            // A rate from device counters is 0…1 when honest; anything else is shown, never converted to a trap.
            guard x.isFinite, abs(x) < 1e12 else { return "\(x * 100) %" }
            let tenths = Int((x * 1000).rounded())
            return "\(tenths / 10).\(abs(tenths % 10)) %"
        }
    }

    /// The device's escalation rate over the drift window ending at `now`, with the windows it rests on;
    /// nil when fewer than `minimumDriftWindows` windows fall in it or the drift rule is off.
    public func recentRate(of device: Device, now: Double) -> (rate: Double, windows: Int)? {
        let recent = recentTotals(of: device, now: now)
        guard minimumDriftWindows > 0, recent.windows >= minimumDriftWindows else { return nil }
        return (Double(recent.escalations) / Double(recent.windows), recent.windows)
    }

    /// The device's windows and escalations over the drift window ending at `now`.
    func recentTotals(of device: Device, now: Double) -> (windows: Int, escalations: Int) {
        var windows = 0, escalations = 0
        for interval in device.intervals where interval.endsAt > now - driftWindowSeconds && interval.endsAt <= now {
            windows = windows.addingSaturated(max(interval.windows, 0))
            escalations = escalations.addingSaturated(max(interval.escalations, 0))
        }
        return (windows, escalations)
    }

    /// The audit rule's verdict on `audits`: nil unless both sides rest on `minimumAudits` answered audits and the
    /// recent agreement is more than `auditAgreementDrop` below the baseline.
    func auditDrift(_ audits: AuditAgreement?) -> Reason? {
        guard minimumAudits > 0, let a = audits, a.baselineAnswered >= minimumAudits, a.recentAnswered >= minimumAudits,
            (0...a.baselineAnswered).contains(a.baselineAgreed), (0...a.recentAnswered).contains(a.recentAgreed)
        else { return nil }
        let baseline = Double(a.baselineAgreed) / Double(a.baselineAnswered)
        let recent = Double(a.recentAgreed) / Double(a.recentAnswered)
        guard baseline - recent > auditAgreementDrop else { return nil }
        return .auditDrift(version: a.version, baseline: baseline, recent: recent, audits: a.recentAnswered)
    }

    /// Whether `rate` is further from `baseline` than the bounds allow.
    func isDrift(_ rate: Double, from baseline: Double) -> Bool {
        abs(rate - baseline) > max(absoluteDriftBound, relativeDriftBound * baseline)
    }

    /// The rules in one line for logs, e.g. `1000 new hard examples, 100 new labels or drift (…)`, or
    /// `…; drift off`.
    public var rules: String {
        var rules = [String]()
        if minimumNewHardExamples > 0 { rules.append("\(minimumNewHardExamples) new hard examples") }
        if minimumNewLabels > 0 { rules.append("\(minimumNewLabels) new labels") }
        if scheduleSeconds > 0 { rules.append("every \(Self.number(scheduleSeconds)) s with new data") }
        if followUpLabels > 0 { rules.append("a follow-up of a promoted drift round at \(followUpLabels) new labels") }
        if minimumDriftWindows > 0 {
            rules.append(
                "drift (\(driftScope == .fleet ? "the fleet's" : "a device's") escalation rate over the last \(Self.number(driftWindowSeconds)) s on at least "
                    + "\(minimumDriftWindows) windows further than max(\(Self.number(absoluteDriftBound)), "
                    + "\(Self.number(relativeDriftBound)) × baseline) from its baseline)")
        }
        let joined =
            rules.isEmpty
            ? "never"
            : rules.count == 1 ? rules[0] : rules.dropLast().joined(separator: ", ") + " or " + rules[rules.count - 1]
        let audits =
            minimumAudits > 0
            ? "; audit drift (the production edge version's agreement with the cloud on its audits over the last "
                + "\(Self.number(driftWindowSeconds)) s, on at least \(minimumAudits), more than "
                + "\(Self.number(auditAgreementDrop)) below before)" : ""
        return (minimumDriftWindows > 0 ? joined : joined + "; drift off") + audits
    }

    static func number(_ x: Double) -> String {
        x == x.rounded() && abs(x) < 1e15 ? String(Int(x)) : String(x)
    }

    /// The reasons to run a round now; empty means wait.
    public func reasons(for snapshot: Snapshot) -> [Reason] {
        var reasons = [Reason]()
        if minimumNewHardExamples > 0 && snapshot.newHardExamples >= minimumNewHardExamples {
            reasons.append(.hardExamples(snapshot.newHardExamples))
        }
        if minimumNewLabels > 0 && snapshot.newLabels >= minimumNewLabels {
            reasons.append(.labels(snapshot.newLabels))
        }
        switch driftScope {
        case .device:
            for device in snapshot.devices.sorted(by: { $0.id < $1.id }) {
                guard let (rate, windows) = recentRate(of: device, now: snapshot.now) else { continue }
                if isDrift(rate, from: device.baselineEscalationRate) {
                    reasons.append(
                        .drift(
                            device: device.id, baseline: device.baselineEscalationRate, recent: rate, windows: windows))
                }
            }
        case .fleet:
            var windows = 0, escalations = 0, expected = 0.0
            for device in snapshot.devices {
                let recent = recentTotals(of: device, now: snapshot.now)
                windows = windows.addingSaturated(recent.windows)
                escalations = escalations.addingSaturated(recent.escalations)
                expected += device.baselineEscalationRate * Double(recent.windows)
            }
            if minimumDriftWindows > 0, windows >= minimumDriftWindows {
                let rate = Double(escalations) / Double(windows), baseline = expected / Double(windows)
                if isDrift(rate, from: baseline) {
                    reasons.append(
                        .fleetDrift(
                            devices: snapshot.devices.count, baseline: baseline, recent: rate, windows: windows))
                }
            }
        }
        if let audits = auditDrift(snapshot.audits) { reasons.append(audits) }
        if followUpLabels > 0 && snapshot.followUpDue && snapshot.newLabels >= followUpLabels {
            reasons.append(.followUp(labels: snapshot.newLabels))
        }
        if scheduleSeconds > 0, let last = snapshot.lastRoundStartedAt, snapshot.now - last >= scheduleSeconds,
            snapshot.newHardExamples + snapshot.newLabels > 0
        {
            reasons.append(
                .schedule(
                    seconds: snapshot.now - last, hardExamples: snapshot.newHardExamples, labels: snapshot.newLabels))
        }
        return reasons
    }
}
