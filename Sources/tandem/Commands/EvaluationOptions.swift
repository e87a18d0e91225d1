import ArgumentParser

/// How often a command that drives a rollout (`tandem rollout start|watch`, `tandem policy set|watch`) looks at the
/// fleet again.
struct EvaluationOptions: ParsableArguments {
    @Option(help: "Seconds between evaluations, 0.1–3600.") var interval = 5.0

    func validate() throws {
        guard interval.isFinite, (0.1...3600).contains(interval) else {
            throw ValidationError("--interval must be within 0.1 and 3,600 seconds, not \(interval)")
        }
    }
}
