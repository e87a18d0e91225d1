import ArgumentParser
import TandemFleet

/// How a staged rollout runs — of a model (`tandem rollout start`) or of an agent policy (`tandem policy set`): the
/// canary's share, the steps after it, how long each runs, and the limits that roll it back.
struct StagingOptions: ParsableArguments {
    @Option(help: "Share of the fleet in the canary cohort, 0–100 (default 10, or the first of --steps).")
    var canaryPercent: Double?
    @Option(help: "Seconds the canary runs before it may be promoted (or take its first step).")
    var soakSeconds = 3600.0
    @Option(
        help: ArgumentHelp(
            "Cumulative shares of the fleet on the candidate, stage by stage: the canary's, then each step's "
                + "(10,50,100). Without it the canary is followed by promotion.",
            valueName: "percentages"))
    var steps: String?
    @Option(
        help: "Seconds each step after the canary runs before the next one or promotion (default: --soak-seconds).")
    var stepSeconds: Double?
    @Option(help: "Devices on the candidate that may report rejecting it before the rollout rolls back.")
    var maxRejections = 0
    @Option(help: "Roll back when the canary's escalation rate exceeds the baseline's by more than this fraction.")
    var maxEscalationIncrease = 0.05
    @Option(help: "Windows the canary (and baseline) must classify before rates are compared and before promotion.")
    var minCanaryWindows = 100

    /// The canary's percentage and the steps after it, from --steps and --canary-percent.
    func stages() throws -> (canary: Double, steps: [Double]) {
        guard let steps else { return (canaryPercent ?? 10, []) }
        guard let percentages = RolloutPolicy.percentages(parsing: steps), let first = percentages.first else {
            throw ValidationError("--steps: '\(steps)' is not a comma-separated list of percentages")
        }
        if let canaryPercent, canaryPercent != first {
            throw ValidationError(
                "--steps starts at \(first) %, --canary-percent says \(canaryPercent) %: give one of them")
        }
        return (first, Array(percentages.dropFirst()))
    }

    /// The policy the flags describe.
    func policy() throws -> RolloutPolicy {
        let (canary, steps) = try stages()
        return RolloutPolicy(
            canaryPercent: canary, soakSeconds: soakSeconds,
            maximumEscalationRateIncrease: maxEscalationIncrease, minimumCanaryWindows: minCanaryWindows,
            steps: steps, stepSeconds: stepSeconds, maximumRejections: maxRejections)
    }

    func validate() throws {
        if let problem = try policy().problem { throw ValidationError(problem) }
    }
}
