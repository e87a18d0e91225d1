import ArgumentParser
import TandemCloud
import TandemFleet

/// `serve`'s retraining options: with `--trainer` the worker also runs the retraining loop.
struct TrainerOptions: ParsableArguments {
    @Flag(help: "Also run the retraining loop (only one worker trains at a time: they share a lease in the store).")
    var trainer = false
    @Option(help: "The original training data (a directory from `tandem simulate`, UCR/UEA files, a .csv or .ts).")
    var trainingData: String?
    @Option(help: "The edge model's spec (YAML: layers, distillation settings).") var edgeSpec: String?
    @Option(help: "The Ed25519 private key new models are signed with (`tandem keygen`).") var signingKey: String?
    @Option(help: "The fleet new models are rolled out to.") var fleet = "default"
    @Option(help: "Seconds between checks whether a round is due.") var retrainInterval = 30.0
    @Option(help: "New hard examples (escalations other than audits) since the last round that start one (0: never).")
    var retrainHardExamples = 1000
    @Option(help: "New ground-truth labels since the last round that start one (0: never).")
    var retrainLabels = 100
    @Option(
        help:
            "Seconds after the last round started (or the worker) that start one if any example or label is new (0: never)."
    )
    var retrainEvery = 0.0
    @Option(
        help:
            "After a round that drift started is promoted, one more once this many labels arrived since it started (0: none)."
    )
    var retrainFollowUpLabels = 0
    @Option(
        help:
            "Audit drift: answered audits of the production edge version, recent and baseline, the rule needs (0: no audit rule)."
    )
    var retrainAuditMin = RetrainingTrigger().minimumAudits
    @Option(
        help:
            "Audit drift: a drop of the edge's agreement with the cloud on its recent audits larger than this starts a round."
    )
    var retrainAuditDrop = RetrainingTrigger().auditAgreementDrop
    @Option(help: "Drift: seconds of a device's recent escalation rate compared with its baseline (older ones).")
    var retrainDriftWindow = 3600.0
    @Option(help: "Drift: windows both the recent rate and the baseline must rest on (0: no drift rule).")
    var retrainDriftMinWindows = 1000
    @Option(help: "Drift: a recent rate further than this from the baseline starts a round (absolute).")
    var retrainDriftBound = 0.05
    @Option(help: "Drift: …or further than this fraction of the baseline, whichever is larger.")
    var retrainDriftRelative = 0.5
    @Option(
        help:
            "Drift: device (each device's rate against its own baseline) or fleet (all devices' windows together, for a change that reaches many at once)."
    )
    var retrainDriftScope = "device"
    @Option(help: "Seconds the training lease lasts without renewal (renewed every third).") var leaseSeconds = 120.0
    @Option(help: "Most epochs fine-tuning the full model.") var fineTuneEpochs = 10
    @Option(help: "Most distillation epochs for the edge model (default: the edge spec's).") var distillationEpochs:
        Int?
    @Option(
        help: "Time budget of the full model's fine-tuning in a round, seconds (0: none); the best weights are kept.")
    var fineTuneSeconds = 30.0
    @Option(
        help: "Time budget of the edge model's distillation in a round, seconds (0: none); the best weights are kept.")
    var compressSeconds = 30.0
    @Option(help: "Most original training windows a round replays besides the hard examples (0: all).")
    var replayWindows = 2000
    @Option(help: "Most hard examples a round trains on, the newest (0: all).") var hardExampleLimit = 5000
    @Option(help: "Nice value (0–19) of the thread a round trains on.") var trainerNice: Int32 = 10
    @Option(help: "OpenBLAS threads of a worker that trains, serving included (0: OpenBLAS's own count).")
    var trainerBlasThreads = 1
    @Option(
        help: "Labelled escalations a promoted full model waits for before it is compared with the one it replaced.")
    var fullMinLabelledWindows = 50
    @Option(help: "Gate: largest accuracy drop of the candidate against the current edge model.") var gateEpsilon = 0.01
    @Option(
        help:
            "Gate: how much more a candidate ahead on the recent labelled windows may escalate on the original test windows."
    )
    var gateEscalationSlack = 0.03
    @Option(help: "Share of the fleet in the canary cohort, 0–100.") var canaryPercent = 10.0
    @Option(help: "Seconds the canary runs before promotion.") var soakSeconds = 600.0
    @Option(help: "Rollback when the canary's escalation rate exceeds the baseline's by more than this.")
    var maxEscalationIncrease = 0.05
    @Option(help: "Windows the canary must classify before rates are compared and before promotion.")
    var minCanaryWindows = 100
    @Option(help: "Rollback when the canary's label accuracy is below the replaced version's by more than this.")
    var maxAccuracyDrop = 0.02
    @Option(help: "Labelled escalations each version needs since the canary started before accuracies are compared.")
    var minLabelledWindows = 200
    @Option(
        help: ArgumentHelp(
            "Phased rollout: cumulative shares of the fleet on the candidate after the canary, comma-separated "
                + "(50,100; a leading --canary-percent is the canary itself). Empty: promotion follows the canary.",
            valueName: "percentages"))
    var rolloutSteps = ""
    @Option(help: "Seconds each rollout step after the canary runs before the next one (default: as long as the soak).")
    var rolloutStepSeconds: Double?
    @Option(help: "Devices on the candidate that may report rejecting it before the rollout rolls back.")
    var maxRejections = 0
    @Option(help: "Seconds between evaluations of a rollout.") var rolloutInterval = 5.0
    @Flag(help: "Drill: train on shuffled labels, so the candidate is worse and must be stopped.")
    var drillShuffledLabels = false

    func validate() throws {
        guard trainer else { return }
        guard trainingData != nil, edgeSpec != nil, signingKey != nil else {
            throw ValidationError("--trainer needs --training-data, --edge-spec and --signing-key")
        }
        guard retrainInterval > 0, leaseSeconds > 0, rolloutInterval > 0, (0...100).contains(canaryPercent),
            soakSeconds >= 0, minCanaryWindows >= 0, fineTuneEpochs >= 1, maxAccuracyDrop >= 0, minLabelledWindows >= 1
        else {
            throw ValidationError(
                "--retrain-interval, --lease-seconds and --rollout-interval must be positive, --canary-percent within 0–100, --soak-seconds, --min-canary-windows and --max-accuracy-drop not negative, --fine-tune-epochs and --min-labelled-windows ≥ 1"
            )
        }
        guard fineTuneSeconds >= 0, compressSeconds >= 0, replayWindows >= 0, hardExampleLimit >= 0,
            (0...19).contains(trainerNice), trainerBlasThreads >= 0, fullMinLabelledWindows >= 1
        else {
            throw ValidationError(
                "--fine-tune-seconds, --compress-seconds, --replay-windows, --hard-example-limit and --trainer-blas-threads must not be negative, --trainer-nice within 0–19, --full-min-labelled-windows ≥ 1"
            )
        }
        if let problem = try rolloutPolicy().problem { throw ValidationError(problem) }
        guard gateEpsilon >= 0, (0...1).contains(gateEscalationSlack) else {
            throw ValidationError("--gate-epsilon must not be negative, --gate-escalation-slack within 0…1")
        }
        guard RetrainingTrigger.DriftScope(rawValue: retrainDriftScope) != nil else {
            throw ValidationError("--retrain-drift-scope: '\(retrainDriftScope)' is not device or fleet")
        }
        guard retrainDriftWindow > 0, retrainDriftMinWindows >= 0, retrainDriftBound >= 0, retrainDriftRelative >= 0,
            retrainEvery >= 0, retrainFollowUpLabels >= 0
        else {
            throw ValidationError(
                "--retrain-drift-window must be positive; --retrain-drift-min-windows, --retrain-drift-bound, --retrain-drift-relative, --retrain-every and --retrain-follow-up-labels not negative"
            )
        }
        guard retrainAuditMin >= 0, retrainAuditDrop.isFinite, (0...1).contains(retrainAuditDrop) else {
            throw ValidationError("--retrain-audit-min must not be negative, --retrain-audit-drop within 0…1")
        }
    }

    /// The rollout policy the flags describe (checked by ``validate()``).
    func rolloutPolicy() throws -> RolloutPolicy {
        var steps: [Double] = []
        if !rolloutSteps.trimmingCharacters(in: .whitespaces).isEmpty {
            guard let percentages = RolloutPolicy.percentages(parsing: rolloutSteps) else {
                throw ValidationError("--rollout-steps: '\(rolloutSteps)' is not a comma-separated list of percentages")
            }
            steps = percentages.first == canaryPercent ? Array(percentages.dropFirst()) : percentages
        }
        return RolloutPolicy(
            canaryPercent: canaryPercent, soakSeconds: soakSeconds,
            maximumEscalationRateIncrease: maxEscalationIncrease,
            minimumCanaryWindows: minCanaryWindows, maximumAccuracyDrop: maxAccuracyDrop,
            minimumLabelledWindows: minLabelledWindows, steps: steps, stepSeconds: rolloutStepSeconds,
            maximumRejections: maxRejections)
    }

    /// The retraining loop's settings, or nil without `--trainer`.
    func settings() -> CloudWorker.Trainer? {
        guard trainer, let trainingData, let edgeSpec, let signingKey else { return nil }
        var settings = CloudWorker.Trainer(
            trainingDataPath: trainingData, edgeSpecPath: edgeSpec, signingKeyPath: signingKey)
        var configuration = RetrainingService.Configuration()
        configuration.fleet = fleet
        configuration.checkIntervalSeconds = retrainInterval
        configuration.leaseSeconds = leaseSeconds
        configuration.trigger.minimumNewHardExamples = retrainHardExamples
        configuration.trigger.minimumNewLabels = retrainLabels
        configuration.trigger.scheduleSeconds = retrainEvery
        configuration.trigger.followUpLabels = retrainFollowUpLabels
        configuration.trigger.minimumAudits = retrainAuditMin
        configuration.trigger.auditAgreementDrop = retrainAuditDrop
        configuration.trigger.driftWindowSeconds = retrainDriftWindow
        configuration.trigger.minimumDriftWindows = retrainDriftMinWindows
        configuration.trigger.absoluteDriftBound = retrainDriftBound
        configuration.trigger.relativeDriftBound = retrainDriftRelative
        configuration.trigger.driftScope = RetrainingTrigger.DriftScope(rawValue: retrainDriftScope) ?? .device
        configuration.round.fineTuneEpochs = fineTuneEpochs
        configuration.round.distillationEpochs = distillationEpochs
        configuration.round.epsilon = gateEpsilon
        configuration.round.escalationSlack = gateEscalationSlack
        configuration.round.fineTuneSeconds = fineTuneSeconds > 0 ? fineTuneSeconds : nil
        configuration.round.compressSeconds = compressSeconds > 0 ? compressSeconds : nil
        configuration.round.replayWindows = replayWindows > 0 ? replayWindows : nil
        configuration.round.hardExampleLimit = hardExampleLimit > 0 ? hardExampleLimit : nil
        configuration.trainerNice = trainerNice
        configuration.fullMinimumLabelledWindows = fullMinLabelledWindows
        settings.blasThreads = trainerBlasThreads > 0 ? trainerBlasThreads : nil
        configuration.policy = (try? rolloutPolicy()) ?? configuration.policy
        configuration.rolloutStepSeconds = rolloutInterval
        configuration.trainOnShuffledLabels = drillShuffledLabels
        settings.service = configuration
        return settings
    }
}
