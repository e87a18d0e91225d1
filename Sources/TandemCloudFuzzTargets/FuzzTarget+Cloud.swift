import TandemFuzzTargets

extension FuzzTarget {
    /// The targets of the cloud: an escalation through a worker, a status through the fleet view, the trainer and a
    /// rollout, a label through the intake.
    public static let cloud: [FuzzTarget] = [.escalation, .status, .label]

    /// Every target, the cloud's first, in the order `scripts/fuzz` runs them.
    public static var all: [FuzzTarget] { cloud + standalone }
}
