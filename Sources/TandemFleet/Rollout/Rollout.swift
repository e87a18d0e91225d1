import Foundation
import TandemProtocol

/// The limits a rollout judges its canary and its later steps by, and the steps themselves.
///
/// A rollout moves the candidate to the fleet in stages: the canary (``canaryPercent``, held ``soakSeconds``),
/// then each of ``steps`` (cumulative percentages, each held ``stepSeconds``), then promotion (the rest of the
/// fleet, and production). With no steps — the default, and every state file written before steps existed —
/// the canary is followed by promotion directly.
public struct RolloutPolicy: Codable, Sendable, Equatable {
    /// Share of the fleet in the canary cohort, 0…100 (see ``RolloutCohort``).
    public var canaryPercent: Double
    /// How long the canary runs before it may be promoted (or take its first step), in seconds.
    public var soakSeconds: Double
    /// The largest allowed excess of the candidate's escalation rate over the baseline's, as a fraction of
    /// windows (0.05: five more escalations per hundred windows).
    public var maximumEscalationRateIncrease: Double
    /// Windows the devices on the candidate (and the baseline) must have classified before the escalation rates
    /// are compared and before a step or promotion.
    public var minimumCanaryWindows: Int
    /// The largest allowed drop of label accuracy, candidate against baseline, as a fraction (0.02).
    public var maximumAccuracyDrop: Double
    /// Labelled windows each side (candidate and baseline) needs before their label accuracies are compared
    /// (``AccuracyComparison/init(candidate:baseline:minimumWindows:)``). Default 20.
    public var minimumLabelledWindows: Int
    /// Cumulative shares of the fleet on the candidate after the canary, in order: each above the one before
    /// (the first above ``canaryPercent``) and at most 100. Step k holds the devices whose ``RolloutCohort``
    /// bucket is below `steps[k] × 100`, so each step contains the one before. Empty (the default): promotion
    /// follows the canary.
    public var steps: [Double]
    /// How long each step after the canary runs before the next one (or promotion), in seconds.
    public var stepSeconds: Double
    /// Devices on the candidate that may report `rejected {version}` before the rollout rolls back; 0 (the
    /// default): the first rejection rolls back.
    public var maximumRejections: Int

    /// Creates a policy; the defaults are those of `tandem rollout start`.
    ///
    /// - Parameter stepSeconds: How long each step runs; nil: as long as the canary (`soakSeconds`).
    public init(
        canaryPercent: Double = 10, soakSeconds: Double = 3600, maximumEscalationRateIncrease: Double = 0.05,
        minimumCanaryWindows: Int = 100, maximumAccuracyDrop: Double = 0.02, minimumLabelledWindows: Int = 200,
        steps: [Double] = [], stepSeconds: Double? = nil, maximumRejections: Int = 0
    ) {
        self.canaryPercent = canaryPercent
        self.soakSeconds = soakSeconds
        self.maximumEscalationRateIncrease = maximumEscalationRateIncrease
        self.minimumCanaryWindows = minimumCanaryWindows
        self.maximumAccuracyDrop = maximumAccuracyDrop
        self.minimumLabelledWindows = minimumLabelledWindows
        self.steps = steps
        self.stepSeconds = stepSeconds ?? soakSeconds
        self.maximumRejections = maximumRejections
    }

    /// Percentages written as a comma-separated list (`10,50,100`, blanks around entries allowed), or nil if the
    /// list is empty or an entry is not a number. Range and order are ``problem``'s to judge.
    public static func percentages(parsing text: String) -> [Double]? {
        var out: [Double] = []
        for entry in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard let value = Double(entry.trimmingCharacters(in: .whitespaces)) else { return nil }
            out.append(value)
        }
        return out.isEmpty ? nil : out
    }

    /// The share of the fleet on the candidate at stage `stage`: 0 is the canary, k the k-th step.
    public func percent(atStage stage: Int) -> Double {
        stage > 0 && stage <= steps.count ? steps[stage - 1] : canaryPercent
    }

    /// Why a rollout cannot run with this policy (what ``Rollout/plan(fleet:version:previousVersion:devices:policy:now:)``
    /// throws), or nil if it can.
    public var problem: String? {
        guard (0...100).contains(canaryPercent), soakSeconds >= 0, maximumEscalationRateIncrease >= 0,
            minimumCanaryWindows >= 0
        else {
            return "the canary percentage must be within 0…100 and the soak, bound and window count not negative"
        }
        var below = canaryPercent
        for step in steps {
            guard step > below, step <= 100 else {
                return "each step's percentage must be above the one before (the first above the canary's "
                    + "\(canaryPercent) %) and at most 100: \(steps)"
            }
            below = step
        }
        guard stepSeconds >= 0, maximumRejections >= 0 else {
            return "the step time and the rejection count must not be negative"
        }
        return nil
    }

    private enum CodingKeys: String, CodingKey {
        case canaryPercent, soakSeconds, maximumEscalationRateIncrease, minimumCanaryWindows, maximumAccuracyDrop
        case minimumLabelledWindows, steps, stepSeconds, maximumRejections
    }

    /// Reads a policy; a state file written before `minimumLabelledWindows`, `steps`, `stepSeconds` or
    /// `maximumRejections` existed gets their defaults (no steps: the canary, then promotion; any rejection
    /// rolls back).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            canaryPercent: try c.decode(Double.self, forKey: .canaryPercent),
            soakSeconds: try c.decode(Double.self, forKey: .soakSeconds),
            maximumEscalationRateIncrease: try c.decode(Double.self, forKey: .maximumEscalationRateIncrease),
            minimumCanaryWindows: try c.decode(Int.self, forKey: .minimumCanaryWindows),
            maximumAccuracyDrop: try c.decode(Double.self, forKey: .maximumAccuracyDrop),
            minimumLabelledWindows: try c.decodeIfPresent(Int.self, forKey: .minimumLabelledWindows) ?? 200,
            steps: try c.decodeIfPresent([Double].self, forKey: .steps) ?? [],
            stepSeconds: try c.decodeIfPresent(Double.self, forKey: .stepSeconds),
            maximumRejections: try c.decodeIfPresent(Int.self, forKey: .maximumRejections) ?? 0)
    }
}

/// Label accuracy of the candidate and of the version it replaces, each on the labelled windows it classified.
public struct AccuracyComparison: Sendable, Equatable {
    /// Accuracy of the candidate, 0…1.
    public var candidate: Double
    /// Accuracy of the previous version, 0…1.
    public var baseline: Double
    /// Labelled windows behind the candidate's accuracy (0: not said).
    public var candidateWindows: Int
    /// Labelled windows behind the baseline's accuracy (0: not said).
    public var baselineWindows: Int
    /// Whether both accuracies come from audit escalations alone (an unbiased sample of each version's confident
    /// windows) rather than from every labelled escalation (the windows each version was unsure of).
    public var onAudits: Bool

    /// Creates a comparison.
    public init(
        candidate: Double, baseline: Double, candidateWindows: Int = 0, baselineWindows: Int = 0,
        onAudits: Bool = false
    ) {
        self.candidate = candidate
        self.baseline = baseline
        self.candidateWindows = candidateWindows
        self.baselineWindows = baselineWindows
        self.onAudits = onAudits
    }

    /// Correct and labelled windows of one model version.
    public struct Tally: Sendable, Equatable {
        /// Windows whose prediction was the label.
        public var correct: Int
        /// Windows with a label.
        public var labelled: Int

        /// Creates a tally.
        public init(correct: Int, labelled: Int) {
            self.correct = correct
            self.labelled = labelled
        }
    }

    /// The comparison of two tallies, or nil unless each rests on at least `minimumWindows` labelled windows
    /// (and at least one): fewer would make an accuracy noise.
    public init?(candidate: Tally, baseline: Tally, minimumWindows: Int, onAudits: Bool = false) {
        let minimum = max(minimumWindows, 1)
        guard candidate.labelled >= minimum, baseline.labelled >= minimum else { return nil }
        self.init(
            candidate: Double(candidate.correct) / Double(candidate.labelled),
            baseline: Double(baseline.correct) / Double(baseline.labelled), candidateWindows: candidate.labelled,
            baselineWindows: baseline.labelled, onAudits: onAudits)
    }
}

/// Something the driver must do for a rollout: assign a version to devices (and, on promotion, make it
/// production), then record it in the audit log.
public struct RolloutAction: Sendable, Equatable {
    /// Which transition caused it; the raw value is the audit log's action.
    public enum Kind: String, Sendable, CaseIterable {
        /// planned → canary: the candidate goes to the cohort.
        case start = "rollout-start"
        /// The next step of a phased rollout: the candidate goes to the devices the step's percentage adds.
        case step = "rollout-step"
        /// canary → promoted: the candidate goes to the rest of the fleet and becomes production.
        case promote = "rollout-promote"
        /// canary → rolledBack: the previous version goes back to every device moved to the candidate.
        case rollBack = "rollout-rollback"
    }

    /// The transition.
    public var kind: Kind
    /// The version to assign.
    public var version: String
    /// The devices to assign it to.
    public var devices: [String]
    /// Why.
    public var reason: String
    /// Whether the rollout decided it by itself (rather than an operator).
    public var automatic: Bool

    /// Creates an action.
    public init(kind: Kind, version: String, devices: [String], reason: String, automatic: Bool) {
        self.kind = kind
        self.version = version
        self.devices = devices
        self.reason = reason
        self.automatic = automatic
    }
}

/// A staged rollout of one model version to one fleet, as a pure state machine.
///
/// `planned` → ``start(now:)`` → `canary` → (``observe(_:accuracy:now:)`` after the soak, or
/// ``promote(reason:devices:now:)``) → `promoted`; or from `canary`, automatically or by
/// ``rollBack(reason:now:)``, → `rolledBack`. Transitions return the ``RolloutAction``s a driver
/// carries out (``RolloutController``); nothing here touches the network, the clock or the disk, so every
/// decision can be tested with made-up statuses and times.
///
/// A phased rollout (``RolloutPolicy/steps``) stays in `canary` while it takes its steps: after the canary has
/// soaked, each step assigns the candidate to the devices its larger percentage adds (``RolloutAction/Kind/step``)
/// and they join ``cohort``, so ``cohort`` is always every device moved to the candidate and ``others`` the rest.
/// ``step`` says which stage runs (0: the canary) and ``stepStartedAt`` since when.
///
/// While in `canary`, at every stage, ``observe(_:accuracy:now:)`` rolls back every device of ``cohort`` when
/// * more than ``RolloutPolicy/maximumRejections`` cohort devices report `rejected {version}: …`;
/// * the cohort's escalation rate since each device took the candidate exceeds the baseline's by more than
///   ``RolloutPolicy/maximumEscalationRateIncrease``, once both have ``RolloutPolicy/minimumCanaryWindows``
///   windows. The baseline is the other devices still on the previous version (their rate since start);
///   without enough of those, the cohort's own rate before the update;
/// * given an accuracy comparison, accuracy drops by more than ``RolloutPolicy/maximumAccuracyDrop``;
///
/// and takes the next step — or, after the last one, promotes — once the stage's time has passed
/// (``RolloutPolicy/soakSeconds`` for the canary, ``RolloutPolicy/stepSeconds`` for a step), every cohort device
/// serves the candidate (or is one of the tolerated rejections) and the cohort has classified
/// ``RolloutPolicy/minimumCanaryWindows`` windows on it.
public struct Rollout: Codable, Sendable, Equatable {
    /// Where a rollout stands.
    public enum Phase: String, Codable, Sendable {
        /// Cohort chosen, nothing assigned yet.
        case planned
        /// The cohort runs the candidate; the rest runs the previous version. A phased rollout stays here while it
        /// takes its steps (``Rollout/step``), the cohort growing at each.
        case canary
        /// The whole fleet was assigned the candidate; it is production.
        case promoted
        /// The cohort was assigned the previous version again.
        case rolledBack
    }

    /// Window and escalation counters of a device at a moment.
    public struct Counters: Codable, Sendable, Equatable {
        /// Windows classified.
        public var windows: Int
        /// Windows escalated.
        public var escalations: Int

        /// Counters as given.
        init(windows: Int, escalations: Int) {
            self.windows = windows
            self.escalations = escalations
        }

        /// A status's counters, or nil when it has none or one is outside 0…``DeviceStatus/maximumCount``.
        init?(_ status: DeviceStatus) {
            guard let windows = status.windows, let escalations = status.escalations else { return nil }
            self.init(windows: windows, escalations: escalations)
            guard isPlausible else { return nil }
        }

        /// Both within 0…``DeviceStatus/maximumCount``, as a validated status reports them.
        var isPlausible: Bool {
            let range = 0...DeviceStatus.maximumCount
            return range.contains(windows) && range.contains(escalations)
        }

        /// Adds windows and escalations, saturating.
        mutating func add(_ windows: Int, _ escalations: Int) {
            self.windows = self.windows.addingSaturated(windows)
            self.escalations = self.escalations.addingSaturated(escalations)
        }
    }

    /// What the last observation found, for status displays.
    public struct Observation: Codable, Sendable, Equatable {
        /// Cohort devices serving the candidate.
        public var cohortOnCandidate: Int
        /// Windows the cohort classified on the candidate.
        public var canaryWindows: Int
        /// The cohort's escalation rate on the candidate, if it classified any window.
        public var canaryEscalationRate: Double?
        /// Windows behind the baseline rate.
        public var baselineWindows: Int
        /// The baseline escalation rate, if there is one.
        public var baselineEscalationRate: Double?
        /// What promotion still waits for, if anything.
        public var waitingFor: String?
    }

    /// The fleet.
    public var fleet: String
    /// The candidate version.
    public var version: String
    /// The version the candidate replaces (production when planned); rollback returns to it.
    public var previousVersion: String
    /// The limits.
    public var policy: RolloutPolicy
    /// Where it stands.
    public private(set) var phase: Phase
    /// The devices moved to the candidate so far (the canary's, then those each step added), sorted.
    public private(set) var cohort: [String]
    /// The other known devices, sorted; they get the candidate at a later step or on promotion.
    public private(set) var others: [String]
    /// When it was planned.
    public var plannedAt: Date
    /// When the canary started.
    public private(set) var canaryStartedAt: Date?
    /// When it was promoted or rolled back.
    public private(set) var endedAt: Date?
    /// Why it was promoted or rolled back.
    public private(set) var endReason: String?
    /// Each cohort device's counters when it was first seen serving the candidate, and each other device's
    /// when it was first seen during the canary.
    public private(set) var references: [String: Counters]
    /// What the last observation found.
    public private(set) var lastObservation: Observation?
    /// The stage that runs: 0 is the canary, k the k-th of ``RolloutPolicy/steps`` (at ``currentPercent``).
    public private(set) var step: Int
    /// When the current step began (nil during the canary, which began at ``canaryStartedAt``).
    public private(set) var stepStartedAt: Date?

    /// The share of the fleet the current stage moves to the candidate.
    public var currentPercent: Double { policy.percent(atStage: step) }

    private enum CodingKeys: String, CodingKey {
        case fleet, version, previousVersion, policy, phase, cohort, others, plannedAt, canaryStartedAt, endedAt
        case endReason, references, lastObservation, step, stepStartedAt
    }

    /// Whether it is over (promoted or rolled back).
    public var isFinished: Bool { phase == .promoted || phase == .rolledBack }

    /// Plans a rollout: the cohort is every device of `devices` in ``RolloutCohort`` for the policy's percentage.
    ///
    /// - Throws: ``RegistryError`` (`rolloutState`) if the candidate is the previous version, the percentage
    ///   is outside 0…100, the steps do not rise from it to at most 100, or no known device falls in the cohort.
    public static func plan(
        fleet: String, version: String, previousVersion: String, devices: some Sequence<String>,
        policy: RolloutPolicy, now: Date
    ) throws(RegistryError) -> Rollout {
        guard version != previousVersion else {
            throw RegistryError(.rolloutState, "\(version) is already the production version")
        }
        if let problem = policy.problem { throw RegistryError(.rolloutState, problem) }
        let all = Set(devices)
        let cohort = RolloutCohort.select(all, percent: policy.canaryPercent)
        guard !cohort.isEmpty else {
            throw RegistryError(
                .rolloutState,
                "none of the \(all.count) known devices of fleet \(fleet) falls in the \(policy.canaryPercent) % "
                    + "canary cohort; raise the percentage")
        }
        return Rollout(
            fleet: fleet, version: version, previousVersion: previousVersion, policy: policy, phase: .planned,
            cohort: cohort, others: all.subtracting(cohort).sorted(), plannedAt: now, canaryStartedAt: nil,
            endedAt: nil, endReason: nil, references: [:], lastObservation: nil, step: 0, stepStartedAt: nil)
    }

    /// planned → canary.
    ///
    /// - Returns: The assignment of the candidate to the cohort.
    /// - Throws: ``RegistryError`` (`rolloutState`) unless planned.
    public mutating func start(now: Date) throws(RegistryError) -> [RolloutAction] {
        try expect(.planned, to: "start")
        phase = .canary
        canaryStartedAt = now
        return [
            RolloutAction(
                kind: .start, version: version, devices: cohort,
                reason: "canary \(policy.canaryPercent) % (\(cohort.count) of \(cohort.count + others.count) devices)",
                automatic: false)
        ]
    }

    /// Takes in the fleet's statuses (by device) and, while in canary, decides whether to roll back, take the next
    /// step or promote.
    ///
    /// Counters are the devices' word: a status or a saved reference with a count outside
    /// 0…``DeviceStatus/maximumCount`` is left out (a reference is taken afresh), and every sum saturates, so neither
    /// a status nor a state file saved from one can make a step trap.
    ///
    /// - Returns: The actions of the transition it made, if any.
    public mutating func observe(
        _ statuses: [String: DeviceStatus], accuracy: AccuracyComparison? = nil, now: Date
    ) -> [RolloutAction] {
        guard phase == .canary else { return [] }
        let newcomers = Set(statuses.keys).subtracting(cohort).subtracting(others)
        if !newcomers.isEmpty { others = (others + newcomers).sorted() }

        var rejecting: [(device: String, reason: String)] = []
        for device in cohort {
            if let reason = statuses[device]?.rejectionReason(for: version) { rejecting.append((device, reason)) }
        }
        if let first = rejecting.first, rejecting.count > policy.maximumRejections {
            let allowed =
                policy.maximumRejections == 0
                ? "" : "\(rejecting.count) devices rejected \(version), more than \(policy.maximumRejections); "
            return end(
                .rollBack, "\(allowed)device \(first.device) rejected \(version): \(first.reason)", automatic: true,
                now: now)
        }

        // The cohort's rate on the candidate: counters since each device was first seen serving it.
        var canary = Counters(windows: 0, escalations: 0)
        var before = Counters(windows: 0, escalations: 0)
        var onCandidate = 0
        for device in cohort {
            guard let status = statuses[device], status.modelVersion == version,
                let current = Counters(status)
            else { continue }
            onCandidate += 1
            // An agent that restarted counts from zero again: measure from there.
            if let reference = references[device], reference.isPlausible, reference.windows <= current.windows,
                reference.escalations <= current.escalations
            {
                canary.add(current.windows - reference.windows, current.escalations - reference.escalations)
                before.add(reference.windows, reference.escalations)
            } else {
                references[device] = current
            }
        }
        // The others' rate over the same time: counters since each was first seen during the canary, so a change
        // that reaches the whole fleet meanwhile (drift, a shift in the work) moves both sides alike.
        var baseline = Counters(windows: 0, escalations: 0)
        for device in others {
            guard let status = statuses[device], status.modelVersion == previousVersion,
                let current = Counters(status)
            else { continue }
            if let reference = references[device], reference.isPlausible, reference.windows <= current.windows,
                reference.escalations <= current.escalations
            {
                baseline.add(current.windows - reference.windows, current.escalations - reference.escalations)
            } else {
                references[device] = current
            }
        }
        let minimum = max(1, policy.minimumCanaryWindows)
        if baseline.windows < minimum { baseline = before }
        func rate(_ c: Counters) -> Double? { c.windows == 0 ? nil : Double(c.escalations) / Double(c.windows) }

        var observation = Observation(
            cohortOnCandidate: onCandidate, canaryWindows: canary.windows, canaryEscalationRate: rate(canary),
            baselineWindows: baseline.windows, baselineEscalationRate: rate(baseline), waitingFor: nil)
        defer { lastObservation = observation }

        if canary.windows >= minimum, baseline.windows >= minimum, let canaryRate = rate(canary),
            let baselineRate = rate(baseline),
            canaryRate - baselineRate > policy.maximumEscalationRateIncrease
        {
            return end(
                .rollBack,
                "escalation rate \(Self.percent(canaryRate)) on \(version) over \(canary.windows) windows exceeds "
                    + "the baseline \(Self.percent(baselineRate)) by more than "
                    + "\(Self.percent(policy.maximumEscalationRateIncrease))", automatic: true, now: now)
        }
        if let accuracy, accuracy.baseline - accuracy.candidate > policy.maximumAccuracyDrop {
            let kind = accuracy.onAudits ? "labelled audit windows" : "labelled windows"
            func on(_ windows: Int) -> String { windows > 0 ? " on \(windows) \(kind)" : "" }
            return end(
                .rollBack,
                "label accuracy \(Self.percent(accuracy.candidate)) of \(version)\(on(accuracy.candidateWindows)) is "
                    + "below the baseline \(Self.percent(accuracy.baseline))\(on(accuracy.baselineWindows)) by more "
                    + "than \(Self.percent(policy.maximumAccuracyDrop))",
                automatic: true, now: now)
        }

        let held = now.timeIntervalSince((step == 0 ? canaryStartedAt : stepStartedAt) ?? now)
        let hold = step == 0 ? policy.soakSeconds : policy.stepSeconds
        // A tolerated rejection will not serve the candidate; waiting for it would hold the rollout for good.
        let pending = cohort.count - onCandidate - rejecting.count
        if held < hold {
            observation.waitingFor =
                "\(step == 0 ? "soak" : "step \(step)"): \(Self.seconds(held)) of \(Self.seconds(hold)) s"
        } else if pending > 0 {
            observation.waitingFor = "\(pending) of \(cohort.count) canary devices to serve \(version)"
        } else if canary.windows < policy.minimumCanaryWindows {
            observation.waitingFor = "canary windows: \(canary.windows) of \(policy.minimumCanaryWindows)"
        } else {
            let summary = rate(canary).map { "escalation rate \(Self.percent($0))" } ?? "no windows"
            let soaked = "\(step == 0 ? "soaked" : "held step \(step)") \(Self.seconds(held)) s"
            if step < policy.steps.count {
                return advance(after: "\(soaked) on \(cohort.count) devices, \(summary)", now: now)
            }
            return end(
                .promote, "\(soaked) on \(cohort.count) \(step == 0 ? "canary " : "")devices, \(summary)",
                automatic: true, now: now)
        }
        return []
    }

    /// Moves to the next step: the devices of ``others`` below its percentage go to the candidate and join the
    /// cohort, measured from when each is first seen serving it.
    private mutating func advance(after summary: String, now: Date) -> [RolloutAction] {
        step += 1
        stepStartedAt = now
        let percent = currentPercent
        let moved = others.filter { RolloutCohort.contains($0, percent: percent) }
        others.removeAll { RolloutCohort.contains($0, percent: percent) }
        cohort = (cohort + moved).sorted()
        // Their references were taken on the previous version, as a baseline.
        for device in moved { references[device] = nil }
        return [
            RolloutAction(
                kind: .step, version: version, devices: moved,
                reason: "step \(step) of \(policy.steps.count): \(percent) % (\(cohort.count) of "
                    + "\(cohort.count + others.count) devices) after \(summary)",
                automatic: true)
        ]
    }

    /// canary → promoted, by an operator.
    ///
    /// - Parameters:
    ///   - reason: Why.
    ///   - devices: Devices known now; those outside the cohort are assigned the candidate too.
    /// - Throws: ``RegistryError`` (`rolloutState`) unless in canary.
    public mutating func promote(reason: String, devices: some Sequence<String> = [], now: Date)
        throws(RegistryError) -> [RolloutAction]
    {
        try expect(.canary, to: "promote")
        others = Set(others).union(devices).subtracting(cohort).sorted()
        return end(.promote, reason, automatic: false, now: now)
    }

    /// canary → rolledBack, by an operator.
    ///
    /// - Throws: ``RegistryError`` (`rolloutState`) unless in canary.
    public mutating func rollBack(reason: String, now: Date) throws(RegistryError) -> [RolloutAction] {
        try expect(.canary, to: "roll back")
        return end(.rollBack, reason, automatic: false, now: now)
    }

    private mutating func end(_ kind: RolloutAction.Kind, _ reason: String, automatic: Bool, now: Date)
        -> [RolloutAction]
    {
        phase = kind == .promote ? .promoted : .rolledBack
        endedAt = now
        // A step's abort says at which step it came: every device moved so far goes back.
        let reason = step > 0 && kind == .rollBack ? "step \(step) (\(currentPercent) %): \(reason)" : reason
        endReason = reason
        return [
            kind == .promote
                ? RolloutAction(kind: kind, version: version, devices: others, reason: reason, automatic: automatic)
                : RolloutAction(
                    kind: kind, version: previousVersion, devices: cohort, reason: reason, automatic: automatic)
        ]
    }

    private func expect(_ wanted: Phase, to verb: String) throws(RegistryError) {
        guard phase == wanted else {
            throw RegistryError(
                .rolloutState,
                "cannot \(verb) the rollout of \(version): it is \(phase.rawValue), not \(wanted.rawValue)")
        }
    }

    static func percent(_ fraction: Double) -> String {
        String(format: "%.1f %%", fraction * 100)
    }

    /// Whole seconds for a message; a time no clock gives (from a damaged state file) is shown as it is, never
    /// converted to a trap.
    static func seconds(_ value: Double) -> String {
        value.isFinite && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }

    /// This rollout with each saved reference outside 0…``DeviceStatus/maximumCount`` dropped (taken afresh at the
    /// next observation, as after an agent's restart): what ``read(from:)`` loads, so a state file holding a number
    /// a device once reported cannot stop a restart.
    func droppingImplausibleReferences() -> Rollout {
        var copy = self
        copy.references = references.filter { $0.value.isPlausible }
        return copy
    }
}

extension Rollout {
    /// Reads a rollout; a state file written before phased rollouts is at its canary (step 0). A step outside the
    /// policy's (a damaged file) is taken as the nearest one.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let policy = try c.decode(RolloutPolicy.self, forKey: .policy)
        self.init(
            fleet: try c.decode(String.self, forKey: .fleet), version: try c.decode(String.self, forKey: .version),
            previousVersion: try c.decode(String.self, forKey: .previousVersion), policy: policy,
            phase: try c.decode(Phase.self, forKey: .phase), cohort: try c.decode([String].self, forKey: .cohort),
            others: try c.decode([String].self, forKey: .others),
            plannedAt: try c.decode(Date.self, forKey: .plannedAt),
            canaryStartedAt: try c.decodeIfPresent(Date.self, forKey: .canaryStartedAt),
            endedAt: try c.decodeIfPresent(Date.self, forKey: .endedAt),
            endReason: try c.decodeIfPresent(String.self, forKey: .endReason),
            references: try c.decode([String: Counters].self, forKey: .references),
            lastObservation: try c.decodeIfPresent(Observation.self, forKey: .lastObservation),
            step: min(max(try c.decodeIfPresent(Int.self, forKey: .step) ?? 0, 0), policy.steps.count),
            stepStartedAt: try c.decodeIfPresent(Date.self, forKey: .stepStartedAt))
    }
}
